"""What runs on a worker: read each file of a batch once, hash it, hand it to the per-file function.

Everything here is picklable and importable on a Dask worker: a batch is a list of
:class:`~radproof.scan.discover.ScanItem`, the per-file function is any picklable callable
following :class:`Processor`, and the result is plain data.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from radproof.errors import RadproofError
from radproof.records import FileRecord, RecordStatus
from radproof.scan.discover import ScanItem


class Processor(Protocol):
    """The per-file function of a scan (must be picklable: a module-level function or class instance).

    Returns the fields to add to the file's record, and named preview images (PNG bytes) that
    the HTML report shows (may be empty). Raise :class:`~radproof.errors.RadproofError` for a file
    that cannot be checked; the scan records the message and goes on.
    """

    def __call__(self, data: bytes, item: ScanItem) -> tuple[Mapping[str, Any], dict[str, bytes]]: ...


@dataclass
class ItemResult:
    """The record of one file and its preview images."""

    record: FileRecord
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
    identity: dict[str, Any] = {"path": item.locator, "source": item.source}
    previews: dict[str, bytes] = {}
    fields: Mapping[str, Any] = {}
    error = None
    try:
        data = read_item(item, max_bytes=max_bytes)
        identity.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data), mtime_ns=item.mtime_ns)
        fields, previews = processor(data, item)
    except RadproofError as exc:
        error = str(exc)
    except MemoryError:
        error = "not enough memory to check this file"
    except Exception as exc:  # a bug or a hostile file must not stop the scan
        error = f"internal error ({type(exc).__name__}: {str(exc)[:200]})"
    record = FileRecord(
        **identity,
        status=RecordStatus.OK if error is None else RecordStatus.ERROR,
        fields=fields if error is None else {},
        error=error,
        seconds=round(time.perf_counter() - start, 4),
        cpu_seconds=round(time.process_time() - cpu_start, 4),
    )
    return ItemResult(record, previews if error is None else {})


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
