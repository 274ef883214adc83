"""The scan's JSON Lines file: one record per image, keyed by content hash, appended as work finishes.

Each line is a JSON object with at least ``path``, ``sha256`` and ``status`` (``ok`` or ``error``).
``ok`` records carry the check verdict (``verdict``, ``passed``, ``reasons``, ``signature``,
``watermark``, ``detector``); ``error`` records carry ``error``, the reason the file could not be
checked. A rerun reads the file first and skips images whose content was already checked, so an
interrupted scan resumes where it stopped. Records carry ``checked_with``, a digest of the settings
and detector that made them; a rerun with another one checks those images again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from radproof.errors import InputError


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The records of a results file, skipping a torn last line (from an interrupted run)."""
    p = Path(path)
    if not p.exists():
        return
    try:
        fh = p.open("r", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read results file {p}: {exc.strerror}") from None
    with fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def latest_by_path(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last record written for each path (a rerun after an error replaces the error)."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        key = str(record.get("path"))
        out[key] = record
    return out


class ResultLog:
    """Appends records to a JSON Lines file, durably, one batch at a time.

    Parameters
    ----------
    path
        The results file; created if missing, appended to otherwise.
    fingerprint
        Digest of what decides the verdicts (see :func:`radproof.scan.gather.checks_fingerprint`):
        stamped on the ``ok`` records written, and records with another one do not count as done.
    """

    def __init__(self, path: str | os.PathLike[str], *, fingerprint: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise InputError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        self.fingerprint = fingerprint
        self.done_hashes: set[str] = set()
        self.done_stats: dict[str, tuple[int | None, int | None, str]] = {}
        #: Paths checked before, but with other settings or another detector (to be checked again).
        self.stale: set[str] = set()
        for record in read_records(self.path):
            self._remember(record)
        self.stale -= set(self.done_stats)
        self._fh: TextIO | None = None

    def _remember(self, record: dict[str, Any]) -> None:
        sha = record.get("sha256")
        if record.get("status") != "ok" or not isinstance(sha, str):
            return
        if self.fingerprint is not None and record.get("checked_with") != self.fingerprint:
            self.stale.add(str(record.get("path")))
            return
        self.done_hashes.add(sha)
        self.done_stats[str(record.get("path"))] = (record.get("bytes"), record.get("mtime_ns"), sha)

    def __enter__(self) -> ResultLog:
        needs_newline = self.path.exists() and self.path.stat().st_size > 0 and not self._ends_with_newline()
        try:
            self._fh = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write results file {self.path}: {exc.strerror}") from None
        if needs_newline:
            self._fh.write("\n")  # the previous run was cut in the middle of a line
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._sync()
            self._fh.close()
            self._fh = None

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def unchanged(self, path: str, size: int | None, mtime_ns: int | None) -> str | None:
        """The content hash of ``path`` if it was checked before and its size and time are the same."""
        known = self.done_stats.get(path)
        if known is None:
            return None
        if path.startswith(("http://", "https://")):
            return known[2]  # a DICOM instance on a server is immutable (same UIDs, same content)
        if size is None or mtime_ns is None:
            return None
        return known[2] if (known[0], known[1]) == (size, mtime_ns) else None

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        """Append records and force them to disk (a crash after this loses nothing written)."""
        if self._fh is None:
            raise RuntimeError("ResultLog must be used as a context manager")
        for record in records:
            if self.fingerprint is not None and record.get("status") == "ok":
                record = {**record, "checked_with": self.fingerprint}
            self._fh.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
            self._remember(record)
        self._sync()

    def _sync(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
