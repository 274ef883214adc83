"""One record per checked file: what ``radproof check --json``, a scan's results file and the report share.

A :class:`FileRecord` is the file's identity (path, content hash, size), what the check found
(the :class:`~radproof.check.Verdict`'s fields, :class:`~radproof.check.VerdictRecord`), and how
the check went (``ok`` or ``error`` with the reason, seconds). It reads as a mapping of its JSON
fields too (``record["verdict"]``), so code that reads JSON Lines and code that holds records
are one and the same. The fields are documented in docs/check.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from radproof.check import Verdict, VerdictKind

__all__ = ["FileRecord", "RecordStatus"]

_T = TypeVar("_T")


class RecordStatus(StrEnum):
    """Whether the file could be checked."""

    OK = "ok"
    ERROR = "error"


# JSON keys the record holds as attributes; every other key belongs to ``fields``.
_OWN = ("path", "source", "sha256", "bytes", "mtime_ns", "status", "error", "seconds", "cpu_seconds", "checked_with")


@dataclass(frozen=True)
class FileRecord(Mapping[str, Any]):
    """One checked (or uncheckable) file.

    Attributes
    ----------
    path
        Where the file is: a local path or a DICOMweb URL.
    status
        ``ok`` (``fields`` holds what the check found) or ``error`` (``error`` says why not).
    fields
        The per-file function's findings; for a check, :meth:`Verdict.to_dict` (verdict, passed,
        reasons, signature, watermark, detector, format, shape...).
    source, sha256, size, mtime_ns
        The scan target it was found under, its content hash, size in bytes (None: never read)
        and modification time.
    seconds, cpu_seconds
        Time spent on the file (wall, CPU of the worker).
    checked_with
        Digest of the settings and detector that made the verdict (a resumed scan checks again
        records made with another one).
    """

    path: str
    status: RecordStatus
    fields: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    source: str | None = None
    sha256: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    seconds: float | None = None
    cpu_seconds: float | None = None
    checked_with: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RecordStatus(self.status))
        # The record's own fields are attributes; a verdict's path is the record's path.
        object.__setattr__(self, "fields", {k: v for k, v in self.fields.items() if k not in _OWN})
        if self.status is RecordStatus.ERROR and not self.error:
            raise ValueError("an error record needs the error's message")

    @classmethod
    def of(cls, verdict: Verdict) -> FileRecord:
        """The record of one image checked by :class:`radproof.pipeline.Checker`."""
        return cls(path=str(verdict.path), status=RecordStatus.OK, fields=dict(verdict.to_dict()))

    @classmethod
    def failed(cls, path: str, error: str) -> FileRecord:
        """The record of a file that could not be checked."""
        return cls(path=path, status=RecordStatus.ERROR, error=error)

    # -- what the check found ------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        return self.status is RecordStatus.OK

    @property
    def verdict(self) -> VerdictKind | None:
        """The verdict, or None for an error record (or a processor that gives none)."""
        value = self.fields.get("verdict") if self.ok else None
        return VerdictKind(value) if isinstance(value, str) else None

    @property
    def passed(self) -> bool | None:
        value = self.fields.get("passed") if self.ok else None
        return value if isinstance(value, bool) else None

    # -- JSON ------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this record (the results file's line, in its field order)."""
        out: dict[str, Any] = {"path": self.path, "source": self.source, "sha256": self.sha256}
        if self.size is not None:  # read: size and modification time known (or null for a URL)
            out["bytes"] = self.size
            out["mtime_ns"] = self.mtime_ns
        out.update(self.fields)
        out["status"] = str(self.status)
        if self.error is not None:
            out["error"] = self.error
        if self.seconds is not None:
            out["seconds"] = self.seconds
            out["cpu_seconds"] = self.cpu_seconds
        if self.checked_with is not None:
            out["checked_with"] = self.checked_with
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileRecord:
        """A record from its JSON object.

        Raises
        ------
        ValueError
            The object is not a record: no path, an unknown status, or fields of the wrong type.
        """
        path, status = data.get("path"), data.get("status", "ok")
        if not isinstance(path, str) or status not in tuple(RecordStatus):
            raise ValueError("not a radproof record (a path and a status of ok or error are needed)")
        return cls(
            path=path,
            status=RecordStatus(status),
            fields=data,
            error=_typed(data, "error", str),
            source=_typed(data, "source", str),
            sha256=_typed(data, "sha256", str),
            size=_typed(data, "bytes", int),
            mtime_ns=_typed(data, "mtime_ns", int),
            seconds=_number(data, "seconds"),
            cpu_seconds=_number(data, "cpu_seconds"),
            checked_with=_typed(data, "checked_with", str),
        )

    # -- read as a mapping of the JSON fields ----------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())


def _typed(data: Mapping[str, Any], key: str, kind: type[_T]) -> _T | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"not a radproof record ({key} is not {kind.__name__})")
    return value


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"not a radproof record ({key} is not a number)")
    return float(value)
