"""The gateway killed with SIGKILL at random moments, 20 times, while a modality keeps sending.

The archive here is a counting C-STORE / C-FIND SCP (pynetdicom), so that a second delivery of one
SOP Instance UID is seen; the sender is a pynetdicom SCU that, like a modality, sends again what was
not acknowledged. At the end, every acknowledged instance is in the archive exactly once or held in
the quarantine, and nothing reached the archive twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # type: ignore[attr-defined]

from radproof.imaging.phantom import simulate
from radproof.provenance import load_identity, sign_dataset

from .conftest import PW, Captures, free_port, gateway_config

KILLS = 20
IMAGES = 40
PACE = 0.2  # seconds between two images sent


class CountingArchive:
    """Stores nothing but the count of each SOP Instance UID it received, and answers C-FIND for them."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.where: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        ae = AE(ae_title="ARCHIVE")
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        self.port = free_port()
        handlers = [(evt.EVT_C_STORE, self._store), (evt.EVT_C_FIND, self._find)]
        self._server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)
        self._ae = ae

    def _store(self, event: object) -> int:
        ds = event.dataset  # type: ignore[attr-defined]
        with self._lock:
            self.received[str(ds.SOPInstanceUID)] += 1
        return 0x0000

    def _find(self, event: object) -> Iterator[tuple[int, Dataset | None]]:
        uid = str(event.identifier.get("SOPInstanceUID", ""))  # type: ignore[attr-defined]
        with self._lock:
            present = self.received[uid] > 0
        if present:
            answer = Dataset()
            answer.QueryRetrieveLevel = "IMAGE"
            answer.SOPInstanceUID = uid
            yield 0xFF00, answer
        yield 0x0000, None

    def close(self) -> None:
        self._server.shutdown()
        self._ae.shutdown()


def _images(captures: Captures, root: Path) -> list[Path]:
    tech = load_identity(captures.ca.parent.parent / "tech", PW)
    paths = []
    for i in range(IMAGES):
        ds = simulate(64, 64, seed=100 + i)
        if i % 5 != 4:  # one in five unsigned: held in the quarantine
            sign_dataset(ds, tech)
        path = root / f"img{i:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


class Modality:
    """Sends until every image was acknowledged; an unacknowledged image is sent again later."""

    def __init__(self, port: int, images: list[Path]) -> None:
        self.port = port
        self.pending = list(images)
        self.acknowledged: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        if not self.pending:
            return
        ae = AE(ae_title="MODALITY1")
        sop_class = pydicom.dcmread(self.pending[0], stop_before_pixels=True).SOPClassUID
        ae.add_requested_context(sop_class, ALL_TRANSFER_SYNTAXES[:2])
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
        while self.pending and not self.stop.is_set():
            assoc = ae.associate("127.0.0.1", self.port, ae_title="RADPROOF")
            if not assoc.is_established:
                time.sleep(0.1)
                continue
            try:
                while self.pending and not self.stop.is_set():
                    path = self.pending[0]
                    status = assoc.send_c_store(path)
                    if not status or int(status.get("Status", -1)) != 0x0000:
                        break
                    self.acknowledged.add(str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID))
                    self.pending.pop(0)
                    time.sleep(PACE)  # a modality's pace: the kills land while images keep coming
            except Exception:  # the gateway died under us: try again
                pass
            finally:
                if assoc.is_established:
                    assoc.release()


def _start(config: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADPROOF_")}
    process = subprocess.Popen(  # the command as a hospital runs it
        [sys.executable, "-m", "radproof", "gateway", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(config.parent / "gateway.log").open("ab"),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        if process.poll() is not None:
            raise RuntimeError((config.parent / "gateway.log").read_text()[-2000:])
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the gateway did not start listening")


def _status(config: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "radproof", "gateway", "status", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture
def archive() -> Iterator[CountingArchive]:
    server = CountingArchive()
    yield server
    server.close()


def test_twenty_kills_lose_nothing_and_send_nothing_twice(
    tmp_path: Path, captures: Captures, archive: CountingArchive
) -> None:
    port = free_port()
    config = gateway_config(
        tmp_path / "gateway.toml",
        captures.ca,
        upstream={"ae_title": "ARCHIVE", "port": archive.port},
        port=port,
        allowed_callers=["MODALITY1"],
        spool="spool",
        quarantine="quarantine",
        retry_seconds=0.2,
        retry_max_seconds=1.0,
    )
    images = _images(captures, tmp_path)
    modality = Modality(port, images)
    sender = threading.Thread(target=modality.run, daemon=True)
    rng = random.Random(7)
    mid_stream = 0
    try:
        for _ in range(KILLS):
            gateway = _start(config, port)
            if not sender.is_alive():
                sender = threading.Thread(target=modality.run, daemon=True)
                sender.start()
            time.sleep(rng.uniform(0.1, 1.2))
            mid_stream += bool(modality.pending)
            gateway.send_signal(signal.SIGKILL)
            gateway.wait()
        gateway = _start(config, port)
        if not sender.is_alive():
            sender = threading.Thread(target=modality.run, daemon=True)
            sender.start()
        sender.join(timeout=120)
        assert not modality.pending, f"{len(modality.pending)} images never acknowledged"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _status(config)["waiting"]:
            time.sleep(0.2)
        status = _status(config)
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=30) == 0
    finally:
        modality.stop.set()
        if gateway.poll() is None:
            gateway.kill()
    assert mid_stream >= KILLS // 2, f"only {mid_stream} kills came while images were still being sent"
    assert status["waiting"] == 0, status
    assert len(modality.acknowledged) == IMAGES
    twice = {uid: n for uid, n in archive.received.items() if n > 1}
    assert not twice, f"sent to the archive more than once: {twice}"
    held = json.loads(json.dumps(status["states"]))
    assert held.get("quarantined", 0) == IMAGES // 5
    forwarded = set(archive.received)
    assert len(forwarded) == IMAGES - IMAGES // 5 == held.get("forwarded", 0)
    quarantined = {p.name.split(".dcm")[0] for p in (tmp_path / "quarantine").glob("*.dcm")}
    assert len(quarantined) == IMAGES // 5
    for uid in modality.acknowledged:
        assert (uid in forwarded) != any(q.startswith(uid + ".") for q in quarantined), uid
