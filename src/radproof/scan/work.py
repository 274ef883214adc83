"""What runs on a worker: read each file of a batch once, hash it, hand it to the per-file function.

Everything here is picklable and importable on a Dask worker: a batch is a list of
:class:`~radproof.scan.discover.ScanItem`, the per-file function is any picklable callable
following :class:`Processor`, and the result is plain data.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from radproof.errors import RadproofError
from radproof.scan.discover import ScanItem


class Processor(Protocol):
    """The per-file function of a scan (must be picklable: a module-level function or class instance).

    Returns the fields to add to the file's record, and named preview images (PNG bytes) that
    the HTML report shows (may be empty). Raise :class:`~radproof.errors.RadproofError` for a file
    that cannot be checked; the scan records the message and goes on.
    """

    def __call__(self, data: bytes, item: ScanItem) -> tuple[dict[str, Any], dict[str, bytes]]: ...


@dataclass
class ItemResult:
    """The record of one file and its preview images."""

    record: dict[str, Any]
    previews: dict[str, bytes] = field(default_factory=dict)


def read_item(item: ScanItem, *, max_bytes: int) -> bytes:
    """The bytes of a file or a DICOMweb instance (never modifies the source)."""
    if item.is_remote:
        from radproof.scan.dicomweb import fetch_instance

        return fetch_instance(item.locator, max_bytes=max_bytes)
    from radproof.fileio import read_input_bytes

    return read_input_bytes(item.locator, limit=max_bytes)


def process_item(item: ScanItem, processor: Processor, *, max_bytes: int) -> ItemResult:
    """Read, hash and process one item; any failure becomes an ``error`` record."""
    start = time.perf_counter()
    cpu_start = time.process_time()
    record: dict[str, Any] = {"path": item.locator, "source": item.source, "sha256": None}
    previews: dict[str, bytes] = {}
    try:
        data = read_item(item, max_bytes=max_bytes)
        record["sha256"] = hashlib.sha256(data).hexdigest()
        record["bytes"] = len(data)
        record["mtime_ns"] = item.mtime_ns
        fields, previews = processor(data, item)
        record.update(fields)
        record["path"] = item.locator
        record["status"] = "ok"
    except RadproofError as exc:
        record.update(status="error", error=str(exc))
    except MemoryError:
        record.update(status="error", error="not enough memory to check this file")
    except Exception as exc:  # a bug or a hostile file must not stop the scan
        record.update(status="error", error=f"internal error ({type(exc).__name__}: {str(exc)[:200]})")
    record["seconds"] = round(time.perf_counter() - start, 4)
    record["cpu_seconds"] = round(time.process_time() - cpu_start, 4)
    return ItemResult(record, previews)


def process_batch(batch: list[ScanItem], processor: Processor, max_bytes: int) -> list[ItemResult]:
    """Process a batch of items in order (the unit of work sent to a process or a Dask worker)."""
    return [process_item(item, processor, max_bytes=max_bytes) for item in batch]


class DigestOnly:
    """A per-file function that only records the format: an archive inventory, and a way to measure
    the scan machinery's own overhead (reading, hashing, scheduling, writing) without the check."""

    def __call__(self, data: bytes, item: ScanItem) -> tuple[dict[str, Any], dict[str, bytes]]:
        from radproof.imaging import sniff_format

        fmt = sniff_format(data[:140])
        return {"format": None if fmt is None else str(fmt)}, {}
