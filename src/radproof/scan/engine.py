"""Scanning many images: discovery, resume, local process pool or Dask cluster, progress, summary.

>>> from radproof.scan import scan_paths
>>> summary = scan_paths(["/archive"], settings, out="results.jsonl", workers=2, report="scan.html")
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from radproof.config import Settings
from radproof.errors import InputError
from radproof.fileio import atomic_write_bytes
from radproof.records import FileRecord
from radproof.scan.discover import ScanItem, Skipped, discover, is_dicomweb
from radproof.scan.results import ResultLog, latest_by_path, read_records
from radproof.scan.work import ItemResult, Processor, process_batch

OnResults = Callable[[list[ItemResult]], None]


@dataclass
class ScanSummary:
    """What a scan did: counts over every image it covered (new and already checked)."""

    out: Path
    found: int = 0
    checked: int = 0
    resumed: int = 0
    #: Of those checked now: images checked before with other settings or another detector.
    rechecked: int = 0
    errors: int = 0
    not_images: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    seconds: float = 0.0
    report: Path | None = None
    records: list[FileRecord] = field(default_factory=list, repr=False)
    #: Damaged lines of the results file that were skipped (their images were checked again).
    warnings: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Images checked per second in this run."""
        return self.checked / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when no image failed its check and none could not be read."""
        return self.failed == 0 and self.errors == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "found": self.found,
            "checked": self.checked,
            "resumed": self.resumed,
            "rechecked": self.rechecked,
            "errors": self.errors,
            "not_images": self.not_images,
            "verdicts": dict(self.verdicts),
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 3),
            "report": None if self.report is None else str(self.report),
            "warnings": list(self.warnings),
        }


def previews_dir(out: str | os.PathLike[str]) -> Path:
    """Where a scan keeps the report's thumbnails and overlays: ``results.previews/`` beside ``results.jsonl``."""
    p = Path(out)
    return p.with_name(p.stem + ".previews")


def default_batch_size(n_items: int, workers: int) -> int:
    """Enough tasks to balance the load (about 4 per worker), few enough to keep overhead small."""
    return max(1, min(64, n_items // max(1, 4 * workers)))


def scan_paths(
    targets: Sequence[str | os.PathLike[str]],
    settings: Settings,
    *,
    out: str | os.PathLike[str],
    workers: int | None = None,
    scheduler: str | None = None,
    batch_size: int | None = None,
    processor: Processor | None = None,
    passphrase: bytes | None = None,
    report: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> ScanSummary:
    """Check every image under ``targets`` (folders, files, or ``dicomweb+http://`` servers).

    Parameters
    ----------
    targets
        Folders (walked recursively, DICOMDIR aware), single files, or DICOMweb base URLs prefixed
        with ``dicomweb+``.
    settings
        The configuration (``[scan]``, ``[check]``, ``[trust]``, ``[watermark]``, ``[report]``).
    out
        JSON Lines results file; appended to, and read first so that finished images are skipped.
    workers
        Local worker processes (default: ``settings.scan.workers``, 0 = one per CPU core).
    scheduler
        A Dask scheduler address (``tcp://HOST:PORT``) to run the batches on instead.
    processor
        The per-file function (default: the full check, :class:`radproof.scan.gather.CheckProcessor`).
    passphrase
        Opens the watermark key named in the settings.
    report
        Also write the HTML report here at the end.
    progress
        Show a progress bar with rate and ETA on standard error.
    """
    start = time.perf_counter()
    out_path = Path(out)
    if processor is None:
        from radproof.scan.gather import CheckProcessor

        processor = CheckProcessor(settings, passphrase=passphrase)
    n_workers = workers if workers is not None else settings.scan.workers
    n_workers = n_workers or (os.cpu_count() or 1)
    scheduler = scheduler if scheduler is not None else settings.scan.scheduler
    summary = ScanSummary(out=out_path)
    preview_folder = previews_dir(out_path)
    keep_previews = settings.scan.previews

    with ResultLog(out_path, fingerprint=getattr(processor, "fingerprint", None)) as log:
        summary.warnings = list(log.warnings)
        todo: list[ScanItem] = []
        covered: list[str] = []
        for entry in _all_items(targets):
            if isinstance(entry, Skipped):
                summary.not_images += 1
                continue
            summary.found += 1
            covered.append(entry.locator)
            if log.unchanged(entry.locator, entry.size) is not None:  # hashes the file: content, not metadata
                summary.resumed += 1
            else:
                summary.rechecked += entry.locator in log.stale
                todo.append(entry)

        size = batch_size or settings.scan.batch_size or default_batch_size(len(todo), n_workers)
        batches = [todo[i : i + size] for i in range(0, len(todo), size)]
        bar = _Progress(len(todo)) if progress and todo else None

        def on_results(results: list[ItemResult]) -> None:
            if keep_previews:
                _save_previews(results, preview_folder)
            log.write([r.record for r in results])
            summary.checked += len(results)
            if bar is not None:
                bar.advance(len(results))

        try:
            if scheduler:
                run_dask(batches, processor, scheduler, settings.scan.max_file_bytes, on_results)
            else:
                run_local(batches, processor, n_workers, settings.scan.max_file_bytes, on_results)
        finally:
            if bar is not None:
                bar.stop()

    latest = latest_by_path(read_records(out_path))
    records = [latest[p] for p in covered if p in latest]
    counts: Counter[str] = Counter()
    for record in records:
        if record.ok:
            counts[str(record.verdict or "checked")] += 1
            if record.passed is False:
                summary.failed += 1
        else:
            summary.errors += 1
    summary.verdicts = dict(counts)
    summary.records = records
    summary.seconds = time.perf_counter() - start
    if report is not None:
        from radproof.report import write_report

        summary.report = write_report(
            records,
            report,
            show_phi=settings.report.show_phi,
            previews=preview_folder,
            max_details=settings.report.max_details,
        )
    return summary


def _all_items(targets: Sequence[str | os.PathLike[str]]) -> Iterator[ScanItem | Skipped]:
    folders: list[str | os.PathLike[str]] = []
    for target in targets:
        if is_dicomweb(os.fspath(target)):
            from radproof.scan.dicomweb import list_instances

            yield from list_instances(os.fspath(target))
        else:
            folders.append(target)
    if folders:
        yield from discover(folders)


def _save_previews(results: Iterable[ItemResult], folder: Path) -> None:
    for result in results:
        sha = result.record.sha256
        if not result.previews or sha is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in result.previews.items():
            atomic_write_bytes(folder / f"{sha}.{name}.png", data)


# --------------------------------------------------------------------------------------------------
# Runners


#: Worker pools kept for the life of the process (one per size), so that repeated scans (the demo,
#: a service, a benchmark) do not pay the start-up of new processes and the loading of keys and
#: models each time. :func:`shutdown_pools` ends them; they also end at exit.
_POOLS: dict[int, ProcessPoolExecutor] = {}
_PRELOAD = ["radproof.scan.gather", "radproof.provenance", "radproof.watermark", "radproof.detect"]


def _pool(workers: int) -> ProcessPoolExecutor:
    pool = _POOLS.get(workers)
    if pool is None:
        import atexit
        import multiprocessing

        # forkserver: children are forked from a clean server process that has imported the
        # heavy modules once (safe with threads in this process, fast to start).
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        _start_forkserver_single_threaded()
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        if not _POOLS:
            atexit.register(shutdown_pools)
        _POOLS[workers] = pool
    return pool


#: The environment every scan worker should start with (local pool workers get it; give Dask
#: workers the same through ``distributed.nanny.pre-spawn-environ``, see docs/check.md).
#: One thread per process for the numeric libraries: the parallelism is the processes, and N
#: processes x N BLAS/OpenMP threads oversubscribe the cores. Large fixed malloc thresholds: with
#: glibc's defaults (and far more with Dask's MALLOC_TRIM_THRESHOLD_=65536) every multi-megabyte
#: image buffer is mapped and unmapped afresh, a page fault per page each time; measured in
#: benchmarks/scan.py.
WORKER_ENVIRONMENT: dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "MALLOC_MMAP_THRESHOLD_": str(256 * 1024**2),
    "MALLOC_TRIM_THRESHOLD_": str(512 * 1024**2),
}


def _start_forkserver_single_threaded() -> None:
    """Start the fork server (parent of every worker) with :data:`WORKER_ENVIRONMENT`.

    The variables are set only while the server starts; this process's own environment is restored.
    A fork server that already runs is left as it is.
    """
    from multiprocessing import forkserver

    saved = {k: os.environ.get(k) for k in WORKER_ENVIRONMENT}
    os.environ.update({k: v for k, v in WORKER_ENVIRONMENT.items() if k not in os.environ})
    try:
        forkserver.ensure_running()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def shutdown_pools() -> None:
    """End the worker processes kept between scans."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown(wait=True, cancel_futures=True)


def run_local(
    batches: list[list[ScanItem]], processor: Processor, workers: int, max_bytes: int, on_results: OnResults
) -> None:
    """Run batches on a pool of ``workers`` processes; results come back as each batch finishes.

    A worker that dies (a crash in a decoder, the out-of-memory killer) breaks the pool. The pool is
    rebuilt and the batches that were in flight run again one at a time; a batch that crashes on
    its own is split into single files, and a file that crashes on its own is recorded as an error.
    """
    pending = list(reversed(batches))
    suspects: list[list[ScanItem]] = []
    while pending or suspects:
        pool = _pool(workers)
        if suspects:
            batch = suspects.pop()
            try:
                on_results(pool.submit(process_batch, batch, processor, max_bytes).result())
            except BrokenProcessPool:
                _drop_pool(workers, pool)
                if len(batch) > 1:
                    suspects.extend([item] for item in reversed(batch))
                else:
                    on_results([_crashed(batch[0], "the worker process crashed while checking it")])
            continue
        running: dict[Future[list[ItemResult]], list[ScanItem]] = {}
        try:
            broken = False
            try:
                _fill(pool, pending, running, processor, max_bytes, 2 * workers)
            except BrokenProcessPool:
                broken = True
            while running and not broken:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    batch = running.pop(fut)
                    try:
                        results = fut.result()
                    except BrokenProcessPool:
                        suspects.append(batch)
                        broken = True
                        continue
                    on_results(results)
                if not broken:
                    try:
                        _fill(pool, pending, running, processor, max_bytes, 2 * workers)
                    except BrokenProcessPool:
                        broken = True
            if broken:
                # Every batch in flight may have been the one that crashed: rerun them one by one.
                suspects.extend(running.values())
                running.clear()
                _drop_pool(workers, pool)
        except BaseException:
            for fut in running:
                fut.cancel()
            raise


def _drop_pool(workers: int, pool: ProcessPoolExecutor) -> None:
    _POOLS.pop(workers, None)
    pool.shutdown(wait=False, cancel_futures=True)


def _fill(
    pool: ProcessPoolExecutor,
    pending: list[list[ScanItem]],
    running: dict[Future[list[ItemResult]], list[ScanItem]],
    processor: Processor,
    max_bytes: int,
    limit: int,
) -> None:
    """Keep up to ``limit`` batches in flight (bounded memory, however long the list)."""
    while pending and len(running) < limit:
        future = pool.submit(process_batch, pending[-1], processor, max_bytes)  # raises if the pool broke
        running[future] = pending.pop()


def run_dask(
    batches: list[list[ScanItem]],
    processor: Processor,
    scheduler: str,
    max_bytes: int,
    on_results: OnResults,
    *,
    max_attempts: int = 3,
) -> None:
    """Run batches on a Dask distributed cluster, streaming results back as they finish.

    Each batch is one task (``pure=False``, so identical batches are never merged). A batch whose
    task fails because a worker was lost is submitted again, up to ``max_attempts`` times.
    """
    if not batches:
        return
    try:
        import distributed
    except ImportError:
        raise InputError("--scheduler needs Dask: pip install 'radproof[dask]'") from None
    dist: Any = distributed  # untyped library
    try:
        client: Any = dist.Client(scheduler, timeout="20s", set_as_default=False)
    except OSError as exc:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        pending = list(reversed(batches))
        batch_of: dict[Any, list[ScanItem]] = {}
        attempts: dict[Any, int] = {}

        def submit(batch: list[ScanItem], tries: int = 0) -> Any:
            fut = client.submit(process_batch, batch, processor, max_bytes, pure=False)
            batch_of[fut.key] = batch
            attempts[fut.key] = tries
            return fut

        initial = [submit(pending.pop()) for _ in range(min(len(pending), 2 * n_workers + 2))]
        stream: Any = dist.as_completed(initial, loop=client.loop)
        for fut in stream:
            batch = batch_of.pop(fut.key)
            tries = attempts.pop(fut.key)
            try:
                results = fut.result()
            except Exception as exc:  # worker lost, killed, or a transient comm error
                if tries + 1 < max_attempts:
                    stream.add(submit(batch, tries + 1))
                else:
                    reason = f"the cluster could not run this batch ({type(exc).__name__})"
                    on_results([_crashed(item, reason) for item in batch])
                continue
            finally:
                fut.release()
            on_results(results)
            if pending:
                stream.add(submit(pending.pop()))
    finally:
        client.close()


def _crashed(item: ScanItem, reason: str) -> ItemResult:
    return ItemResult(replace(FileRecord.failed(item.locator, reason), source=item.source))


class _Progress:
    """A rich progress bar on standard error: count, rate and ETA."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("checking"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task("scan", total=total, rate="")
        self._start = time.perf_counter()
        self._done = 0
        self._progress.start()

    def advance(self, n: int) -> None:
        self._done += n
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        self._progress.update(self._task, advance=n, rate=f"{self._done / elapsed:.1f} img/s")

    def stop(self) -> None:
        self._progress.stop()
