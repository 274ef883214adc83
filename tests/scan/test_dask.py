"""The same scan on a Dask cluster: a LocalCluster, and a scheduler with two workers as separate processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scan_helpers import SizeProcessor

from radproof.config import load_settings
from radproof.scan import read_records, scan_paths

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
DASK = Path(sys.executable).with_name("dask")
TESTS = str(Path(__file__).parent)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_local_cluster_gives_the_same_records_as_the_local_pool(archive: Path, tmp_path: Path) -> None:
    from distributed import LocalCluster

    local = scan_paths([archive], load_settings(), out=tmp_path / "local.jsonl", workers=1, processor=SizeProcessor())
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = scan_paths(
            [archive],
            load_settings(),
            out=tmp_path / "dask.jsonl",
            scheduler=cluster.scheduler_address,
            batch_size=1,
            processor=SizeProcessor(),
        )
    assert remote.checked == local.checked == 5
    assert remote.verdicts == local.verdicts and remote.errors == local.errors == 1

    def key(path: Path) -> set[tuple[str, str | None, str]]:
        return {(r["path"], r["sha256"], r["status"]) for r in read_records(path)}

    assert key(tmp_path / "dask.jsonl") == key(tmp_path / "local.jsonl")


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")])}
    log = (tmp_path / "dask.log").open("wb")
    scheduler = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0", "--no-show"],
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    workers = [
        subprocess.Popen(
            [
                str(DASK),
                "worker",
                address,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--no-dashboard",
                "--name",
                f"w{i}",
                "--local-directory",
                str(tmp_path / f"w{i}"),
            ],
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        for i in range(2)
    ]
    procs = [scheduler, *workers]
    try:
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=30)
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address, workers
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        log.close()


@pytest.mark.slow
def test_scheduler_and_workers_as_processes_survive_a_lost_worker(
    archive: Path, tmp_path: Path, cluster: tuple[str, list[subprocess.Popen[bytes]]]
) -> None:
    address, workers = cluster
    import threading

    def kill_one() -> None:
        time.sleep(1.0)
        os.killpg(workers[0].pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_one)
    killer.start()
    out = tmp_path / "results.jsonl"
    summary = scan_paths(
        [archive], load_settings(), out=out, scheduler=address, batch_size=1, processor=SizeProcessor(delay=0.6)
    )
    killer.join()
    assert workers[0].poll() is not None  # the worker really died during the scan
    assert summary.checked == 5 and summary.errors == 1  # only the bad file
    records = list(read_records(out))
    assert sorted(r["status"] for r in records) == ["error", "ok", "ok", "ok", "ok"]
