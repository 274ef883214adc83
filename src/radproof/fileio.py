"""Small file helpers shared by the shells and the core writers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from radproof.errors import InputError


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the file is
    renamed over the target. ``mode`` sets the permissions (use 0o600 for secrets).
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {target}: folder {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_input_bytes(path: str | os.PathLike[str], *, limit: int | None = None) -> bytes:
    """Read a user-supplied file, turning OS errors into :class:`InputError`."""
    p = Path(path)
    try:
        if p.is_dir():
            raise InputError(f"{p} is a folder, not a file")
        size = p.stat().st_size
        if limit is not None and size > limit:
            raise InputError(f"{p} is {size} bytes, more than the limit of {limit} bytes")
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except PermissionError:
        raise InputError(f"{p}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None


def source_bytes(source: str | os.PathLike[str] | bytes, name: str | None = None) -> tuple[bytes, str]:
    """The bytes of a path or of bytes already in memory, and the label to use in messages."""
    if isinstance(source, bytes):
        return source, name or "<bytes>"
    return read_input_bytes(source), name or str(source)
