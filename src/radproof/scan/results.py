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
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from radproof.errors import InputError
from radproof.fileio import display_path, json_line, sha256_file
from radproof.records import FileRecord


def read_records(path: str | os.PathLike[str], problems: list[str] | None = None) -> Iterator[FileRecord]:
    """The records of a results file, skipping lines that are not a record.

    A torn last line (an interrupted run), bytes that are not UTF-8 or any other damaged line is
    skipped, and said so in ``problems`` when given: the file it was about is then checked again,
    as no record vouches for it.
    """
    p = Path(path)
    if not p.exists():
        return
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read results file {display_path(p)}: {exc.strerror}") from None
    with fh:
        for number, raw in enumerate(fh, start=1):
            raw = raw.strip()
            if not raw:
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                _note(problems, p, number, "is not UTF-8")
                continue
            except json.JSONDecodeError:
                _note(problems, p, number, "is not complete JSON (cut short?)")
                continue
            if not isinstance(record, dict):
                _note(problems, p, number, "is not a JSON object")
                continue
            try:
                yield FileRecord.from_json(record)
            except ValueError as exc:
                _note(problems, p, number, str(exc))


def _note(problems: list[str] | None, path: Path, number: int, what: str) -> None:
    if problems is not None:
        problems.append(f"{display_path(path)} line {number} {what}; skipped (its image is checked again)")


def latest_by_path(records: Iterable[FileRecord]) -> dict[str, FileRecord]:
    """The last record written for each path (a rerun after an error replaces the error)."""
    return {record.path: record for record in records}


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
            raise InputError(f"cannot write {display_path(self.path)}: its folder does not exist")
        self.fingerprint = fingerprint
        self.done_hashes: set[str] = set()
        self.done_stats: dict[str, tuple[int | None, int | None, str]] = {}
        #: Paths checked before, but with other settings or another detector (to be checked again).
        self.stale: set[str] = set()
        #: Damaged lines found in the results file (skipped; see :func:`read_records`).
        self.warnings: list[str] = []
        for record in read_records(self.path, self.warnings):
            self._remember(record)
        self.stale -= set(self.done_stats)
        self._fh: TextIO | None = None

    def _remember(self, record: FileRecord) -> None:
        sha = record.sha256
        if not record.ok or sha is None:
            return
        if self.fingerprint is not None and record.checked_with != self.fingerprint:
            self.stale.add(record.path)
            return
        self.done_hashes.add(sha)
        self.done_stats[record.path] = (record.size, record.mtime_ns, sha)

    def __enter__(self) -> ResultLog:
        needs_newline = self.path.exists() and self.path.stat().st_size > 0 and not self._ends_with_newline()
        try:
            self._fh = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write results file {display_path(self.path)}: {exc.strerror}") from None
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

    def unchanged(self, path: str, size: int | None, mtime_ns: int | None = None) -> str | None:
        """The content hash of ``path`` if the same content was checked before (with these settings).

        The file is hashed again: a file edited with its size and modification time put back must
        not pass for the one checked (resume trusts content, not metadata; docs/limits.md gives
        the cost). A size that differs tells a change without reading the file.
        """
        known = self.done_stats.get(path)
        if known is None:
            return None
        if path.startswith(("http://", "https://")):
            return known[2]  # a DICOM instance on a server is immutable (same UIDs, same content)
        if size is None or known[0] != size:
            return None
        try:
            digest = sha256_file(path)
        except InputError:
            return None  # let the worker read it and record why it cannot
        return known[2] if digest == known[2] else None

    def write(self, records: Iterable[FileRecord]) -> None:
        """Append records and force them to disk (a crash after this loses nothing written)."""
        if self._fh is None:
            raise RuntimeError("ResultLog must be used as a context manager")
        for record in records:
            if self.fingerprint is not None and record.ok:
                record = replace(record, checked_with=self.fingerprint)
            self._fh.write(json_line(record.to_json()))
            self._remember(record)
        self._sync()

    def _sync(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
