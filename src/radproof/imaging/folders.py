"""Finding the images under files and folders (recursive, DICOMDIR aware), recognised by content.

Used by ``radproof scan`` (:mod:`radproof.scan`, which adds DICOMweb servers), by ``radproof detect``
and by site adaptation; it reads names and first bytes only, never a whole image.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from radproof.errors import InputError
from radproof.fileio import display_path

#: Prefixes that name a DICOMweb server instead of a folder (listed by radproof.scan.dicomweb).
DICOMWEB_PREFIXES = ("dicomweb+http://", "dicomweb+https://")

_IMAGE_SUFFIXES = {".dcm", ".dicom", ".dic", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
_SKIP_SUFFIXES = {".txt", ".md", ".csv", ".json", ".jsonl", ".html", ".xml", ".pdf", ".zip", ".gz", ".py"}


@dataclass(frozen=True)
class ScanItem:
    """One image to check.

    Attributes
    ----------
    locator
        A file path, or a WADO-RS instance URL (for DICOMweb sources).
    source
        The folder or server the item was found under (for per-source statistics).
    size, mtime_ns
        File size and modification time when found (files only). A rerun skips a file only when its
        content hashes to a checked one; a size that differs tells a change without reading it.
    """

    locator: str
    source: str
    size: int | None = None
    mtime_ns: int | None = None

    @property
    def is_remote(self) -> bool:
        return self.locator.startswith(("http://", "https://"))


@dataclass(frozen=True)
class Skipped:
    """A file that is not an image (kept out of the scan, counted in the summary)."""

    path: str
    reason: str


def is_dicomweb(target: str) -> bool:
    return target.startswith(DICOMWEB_PREFIXES)


def discover(targets: Iterable[str | os.PathLike[str]]) -> Iterator[ScanItem | Skipped]:
    """Every image under the given folders or files, in a stable order.

    Folders are walked recursively (hidden entries skipped, symbolic links to folders not followed).
    Files are recognised by their first bytes, not their names, so DICOM files without an
    extension (as on CDs) are found. A DICOMDIR is read for the files it references, which are
    checked even when their content does not start like a DICOM file; the DICOMDIR itself is an
    index, not an image.

    Raises
    ------
    InputError
        A target does not exist.
    """
    seen: set[str] = set()
    for target in targets:
        text = os.fspath(target)
        if is_dicomweb(text):
            raise InputError(f"{text}: DICOMweb sources are listed by radproof.scan.dicomweb, not discover()")
        root = Path(text)
        if root.is_file():
            yield from _one(root, str(root.parent), seen, referenced=True)
        elif root.is_dir():
            yield from _walk(root, seen)
        elif root.exists():
            raise InputError(f"{display_path(root)} is not a regular file or a folder (a FIFO or a device?)")
        else:
            raise InputError(f"{display_path(root)}: no such file or folder")


def image_paths(targets: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The images :func:`discover` finds under local files and folders, as paths (non-images left out)."""
    return [Path(item.locator) for item in discover(targets) if isinstance(item, ScanItem)]


def _walk(root: Path, seen: set[str]) -> Iterator[ScanItem | Skipped]:
    source = str(root)
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        names = sorted(f for f in files if not f.startswith("."))
        dicomdir = next((n for n in names if n.upper() == "DICOMDIR"), None)
        referenced: list[Path] = []
        if dicomdir is not None:
            refs, problem = _dicomdir_references(here / dicomdir)
            if problem:
                yield Skipped(str(here / dicomdir), problem)
            referenced = refs
        for path in referenced:
            yield from _one(path, source, seen, referenced=True)
        for name in names:
            if dicomdir is not None and name == dicomdir:
                continue
            yield from _one(here / name, source, seen, referenced=False)


def _one(path: Path, source: str, seen: set[str], *, referenced: bool) -> Iterator[ScanItem | Skipped]:
    key = os.path.normpath(os.path.abspath(path))
    if key in seen:
        return
    seen.add(key)
    try:
        st = path.stat()
        if not path.is_file():
            return
    except OSError as exc:
        yield Skipped(str(path), f"cannot read ({exc.strerror})")
        return
    if not referenced and path.suffix.lower() in _SKIP_SUFFIXES:
        yield Skipped(str(path), "not an image file")
        return
    if not referenced and path.suffix.lower() not in _IMAGE_SUFFIXES and not _looks_like_image(path):
        yield Skipped(str(path), "not a DICOM, PNG, JPEG or TIFF file")
        return
    yield ScanItem(locator=str(path), source=source, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _looks_like_image(path: Path) -> bool:
    from radproof.imaging import sniff_format

    try:
        with path.open("rb") as fh:
            head = fh.read(140)
    except OSError:
        return True  # let the worker report the error
    return sniff_format(head) is not None


def _dicomdir_references(path: Path) -> tuple[list[Path], str | None]:
    """The files a DICOMDIR points to, and a problem to report (or None)."""
    import warnings

    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
        records = ds.DirectoryRecordSequence
    except Exception as exc:
        return [], f"DICOMDIR cannot be read ({str(exc)[:120]}); files found by walking the folder"
    out: list[Path] = []
    missing = 0
    base = path.parent
    for record in records:
        ref = record.get("ReferencedFileID")
        if not ref:
            continue
        parts = [str(ref)] if isinstance(ref, str) else [str(p) for p in ref]
        if any(p in ("..", "") or "/" in p or "\\" in p for p in parts):
            continue  # a path that leaves the DICOMDIR's folder is not followed
        target = base.joinpath(*parts)
        if not target.is_file():
            target = _case_insensitive(base, parts) or target
        if target.is_file():
            out.append(target)
        else:
            missing += 1
    problem = f"DICOMDIR references {missing} file(s) that do not exist" if missing else None
    return out, problem


def _case_insensitive(base: Path, parts: list[str]) -> Path | None:
    here = base
    for part in parts:
        try:
            match = next((c for c in here.iterdir() if c.name.upper() == part.upper()), None)
        except OSError:
            return None
        if match is None:
            return None
        here = match
    return here
