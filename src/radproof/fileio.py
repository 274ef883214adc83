"""Small file helpers shared by the shells and the core writers."""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from radproof.errors import InputError


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    The bytes go to a temporary file in the same folder, are flushed to disk, the file is renamed
    over the target, and the folder is flushed too: after a crash or a power cut the file is there
    complete, or not at all. ``mode`` sets the permissions (use 0o600 for secrets).
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
    fsync_folder(parent)
    return target


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename or a deletion in it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_input_bytes(path: str | os.PathLike[str], *, limit: int | None = None) -> bytes:
    """Read a user-supplied file, turning OS errors into :class:`InputError`.

    Only regular files are read: a FIFO would block forever and a device (``/dev/zero``) never
    ends. At most ``limit`` bytes are read (and never more than
    :func:`radproof.limits.max_input_bytes`); a bigger file is refused before reading.
    """
    from radproof.limits import max_input_bytes

    cap = max_input_bytes() if limit is None else min(limit, max_input_bytes())
    label = display_path(path)
    fd = _open_regular(path, label)
    with os.fdopen(fd, "rb") as fh:
        try:
            st = os.fstat(fd)
            _refuse_special(st.st_mode, label)
            if st.st_size > cap:
                raise InputError(f"{label} is {st.st_size} bytes, more than the limit of {cap} bytes{_hint(limit)}")
            data = _read_at_most(fh, st.st_size, cap)
        except OSError as exc:
            raise InputError(f"{label}: cannot read ({exc.strerror})") from None
    if len(data) > cap:
        raise InputError(f"{label} grew past the limit of {cap} bytes while it was read{_hint(limit)}")
    return data


def _open_regular(path: str | os.PathLike[str], label: str) -> int:
    """A read-only descriptor of ``path``, refused with a clear :class:`InputError` unless a regular file.

    The caller checks ``fstat`` again on the descriptor: what was opened is what counts.
    """
    try:
        # stat first: opening a device can have effects of its own (a tape rewinds on close).
        _refuse_special(os.stat(path).st_mode, label)
        # O_NONBLOCK: should a FIFO replace the file after the stat, opening it must not wait for a
        # writer; fstat then tells what was really opened.
        return os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{label} is a folder, not a file") from None
    except PermissionError:
        raise InputError(f"{label}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{label}: cannot read ({exc.strerror})") from None


def json_line(obj: dict[str, Any]) -> str:
    """``obj`` as one line of JSON that can always be written as UTF-8.

    Kept readable (``ensure_ascii=False``) unless a value holds a lone surrogate (a file name that
    is not UTF-8): then every non-ASCII character is written as a ``\\u`` escape, which reads back the same.
    """
    text = json.dumps(obj, default=str, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, default=str, ensure_ascii=True)
    return text + "\n"


def _read_at_most(fh: io.BufferedReader, expected: int, cap: int) -> bytes:
    """The file's bytes, reading one byte past ``cap`` at most (a file that grows is caught, not followed)."""
    data = fh.read(min(expected, cap) + 1)
    if expected < len(data) <= cap:  # it grew since fstat: read on, still bounded
        data += fh.read(cap + 1 - len(data))
    return data


def _refuse_special(mode: int, label: str) -> None:
    if stat.S_ISDIR(mode):
        raise InputError(f"{label} is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise InputError(f"{label} is {_kind(mode)}, not a regular file; radproof reads only files")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _hint(limit: int | None) -> str:
    from radproof.limits import PIXEL_BYTES_ENV, max_input_bytes

    if limit is not None and limit < max_input_bytes():
        return ""
    return f" (the largest image plus its header; set {PIXEL_BYTES_ENV} to raise it)"


def sha256_file(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a regular file's content, read a chunk at a time (memory stays small at any size)."""
    import hashlib

    label = display_path(path)
    fd = _open_regular(path, label)
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb", buffering=0) as fh:
        try:
            _refuse_special(os.fstat(fd).st_mode, label)
            buf = bytearray(chunk)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                digest.update(view[:n])
        except OSError as exc:
            raise InputError(f"{label}: cannot read ({exc.strerror})") from None
    return digest.hexdigest()


def display_path(path: str | os.PathLike[str] | bytes) -> str:
    """A path as text that can always be printed: bytes that are not UTF-8 are shown as ``\\xff``.

    Python keeps such bytes of a file name as lone surrogates (``\\udcff``), which cannot be
    written to a UTF-8 stream; this gives them back as the escapes of the original bytes.
    """
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:  # a surrogate no file name can hold: show it escaped
        raw = os.fspath(path).encode("utf-8", "backslashreplace")  # type: ignore[union-attr]
    return raw.decode("utf-8", "backslashreplace")


def source_bytes(source: str | os.PathLike[str] | bytes, name: str | None = None) -> tuple[bytes, str]:
    """The bytes of a path or of bytes already in memory, and the label to use in messages."""
    if isinstance(source, bytes):
        return source, name or "<bytes>"
    return read_input_bytes(source), name or str(source)
