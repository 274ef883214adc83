"""The spool: where a received instance is written, durably, before the sender is told it was stored.

A file is written under a temporary name, flushed and fsync'ed, renamed into place, and then the
folder is fsync'ed too (:func:`radproof.fileio.atomic_write_bytes`), so that after a power cut the
file is either complete under its name or not there at all. Names are derived from the SOP Instance
UID (digits and dots only, checked) and the content hash, never from anything else the sender chose.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from radproof.errors import InputError
from radproof.fileio import atomic_write_bytes, fsync_folder

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")  # PS3.5 9.1: no leading zeros


class SpoolFull(Exception):
    """The spool's size limit or the disk would be exceeded."""


class Spool:
    """A folder of instances waiting to be forwarded or held, with a size limit.

    Parameters
    ----------
    folder
        Created (mode 0700) if missing.
    limit_bytes
        Past this many bytes in the folder, :meth:`store` refuses new instances.
    """

    def __init__(self, folder: Path, limit_bytes: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.limit_bytes = limit_bytes
        self._used = sum(p.stat().st_size for p in self.folder.glob("*.dcm"))

    @property
    def used_bytes(self) -> int:
        return self._used

    def path_for(self, sop_instance_uid: str, sha256: str) -> Path:
        return self.folder / file_name(sop_instance_uid, sha256)

    def store(self, sop_instance_uid: str, sha256: str, data: bytes) -> Path:
        """Write ``data`` durably as the instance's file and return its path.

        Raises
        ------
        SpoolFull
            The size limit or the free disk space would be exceeded (nothing is written).
        OSError
            The write failed (the temporary file is removed; nothing half-written is left behind).
        """
        target = self.path_for(sop_instance_uid, sha256)
        previous = target.stat().st_size if target.exists() else 0
        if self._used - previous + len(data) > self.limit_bytes:
            raise SpoolFull(f"the spool holds {self._used} bytes; its limit is {self.limit_bytes}")
        if shutil.disk_usage(self.folder).free < len(data) + (16 << 20):
            raise SpoolFull("the disk under the spool is (almost) full")
        atomic_write_bytes(target, data, mode=0o600)
        self._used += len(data) - previous
        return target

    def remove(self, path: Path) -> None:
        """Forget a forwarded instance (its file and the bytes it counted)."""
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return
        self._used = max(0, self._used - size)
        fsync_folder(path.parent)

    def move_to(self, path: Path, folder: Path) -> Path:
        """Move an instance's file into ``folder`` (same file system: a rename; else copy, fsync, delete)."""
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = folder / path.name
        size = path.stat().st_size
        try:
            os.replace(path, target)
        except OSError:
            atomic_write_bytes(target, path.read_bytes(), mode=0o600)
            path.unlink()
        fsync_folder(folder)
        fsync_folder(path.parent)
        self._used = max(0, self._used - size)
        return target


def file_name(sop_instance_uid: str, sha256: str) -> str:
    """``UID.<first 16 hex digits of the content hash>.dcm``: two different files sent under one UID
    never overwrite each other, and nothing but a checked UID reaches the file system."""
    uid = sop_instance_uid.strip().rstrip("\0")
    if not _UID.match(uid) or len(uid) > 64:
        raise InputError(f"{uid[:70]!r} is not a valid UID")
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256 hex digest")
    return f"{uid}.{sha256[:16]}.dcm"
