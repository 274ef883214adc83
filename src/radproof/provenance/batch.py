"""Verifying many files at once, in input order, on every available core.

Verification is mostly Python (parsing, the signed stream, the rules), so threads wait on one another;
forked worker processes inherit the loaded modules and the trust store and start in milliseconds.
Where ``fork`` is not available, or for a handful of files, the files are verified in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from radproof.errors import InputError, RadproofError
from radproof.provenance.trust import TrustStore
from radproof.provenance.verifier import VerificationResult, verify_file

#: Below this many files per worker, forking costs more than it saves.
MIN_FILES_PER_WORKER = 4
MAX_WORKERS = 8

# The trust store the forked workers inherit (set in the parent just before the fork).
_TRUST: TrustStore | None = None


def verify_files(
    paths: Sequence[str | Path], trust: TrustStore | None, *, workers: int | None = None
) -> Iterator[VerificationResult | RadproofError]:
    """Verify each file (see :func:`~radproof.provenance.verify_file`); yield results in input order.

    A file that cannot be verified (unreadable, not DICOM) yields the :class:`RadproofError` saying why,
    and the others go on. ``workers``: processes to use (default: one per available core, at most 8).
    """
    count = _workers(len(paths)) if workers is None else max(1, workers)
    if count == 1 or "fork" not in multiprocessing.get_all_start_methods():
        for path in paths:
            yield _one(path, trust)
        return
    global _TRUST
    _TRUST = trust
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(count) as pool:
            chunk = max(1, len(paths) // (count * 4))
            for outcome in pool.imap(_in_worker, [str(p) for p in paths], chunksize=chunk):
                yield outcome if isinstance(outcome, VerificationResult) else InputError(outcome)
    finally:
        _TRUST = None


def _one(path: str | Path, trust: TrustStore | None) -> VerificationResult | RadproofError:
    try:
        return verify_file(path, trust)
    except RadproofError as exc:
        return exc


def _in_worker(path: str) -> VerificationResult | str:
    outcome = _one(path, _TRUST)
    return outcome if isinstance(outcome, VerificationResult) else str(outcome)


def _workers(files: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS, files // MIN_FILES_PER_WORKER))
