"""The gateway under faults: a full spool, a flood of associations, data sets it cannot track."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE

from radproof.gateway.server import Gateway

from .conftest import GATEWAY_AE, Captures, Orthanc, storescu
from .test_proxy import settings_for, wait_for


@pytest.fixture
def small_spool(tmp_path: Path, orthanc: Orthanc, captures: Captures) -> Iterator[Gateway]:
    orthanc.clear()
    size = captures.signed.stat().st_size
    # Room for one image only, and an archive that is not there: the first one waits, the next is turned away.
    settings = settings_for(tmp_path, orthanc, captures, spool_limit_bytes=int(size * 1.5), max_associations=3)
    dead = settings.with_overrides(gateway={"upstream": {"port": 9}})
    gateway = Gateway(dead)
    gateway.start()
    yield gateway
    gateway.stop()


def test_a_full_spool_answers_out_of_resources_and_loses_nothing(small_spool: Gateway, captures: Captures) -> None:
    assert storescu(small_spool.config.port, captures.signed).returncode == 0
    second = storescu(small_spool.config.port, captures.tampered)
    assert second.returncode != 0 or "0xa700" in (second.stdout + second.stderr).lower()
    states = small_spool.journal.counts()
    assert sum(states.values()) == 1  # the second was never accepted: its sender still has it
    assert len(list(small_spool.spool.folder.glob("*.dcm"))) == 1


def _associate(port: int, held: list[object], stop: threading.Event) -> None:
    ae = AE(ae_title="MODALITY1")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title=GATEWAY_AE)
    held.append(assoc)
    stop.wait(5)
    if assoc.is_established:
        assoc.release()


def test_an_association_flood_is_bounded_and_the_gateway_stays_up(small_spool: Gateway, captures: Captures) -> None:
    held: list[object] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_associate, args=(small_spool.config.port, held, stop)) for _ in range(12)]
    for t in threads:
        t.start()
    assert wait_for(lambda: len(held) == 12, timeout=30)
    established = sum(bool(a.is_established) for a in held)  # type: ignore[attr-defined]
    assert 1 <= established <= small_spool.config.max_associations
    stop.set()
    for t in threads:
        t.join()
    time.sleep(0.5)
    assert storescu(small_spool.config.port, captures.signed).returncode == 0  # still serving


@pytest.mark.parametrize(("uid", "says"), [("1.2.x/../../etc", "not a valid UID"), ("1.2.03", "not a valid UID")])
def test_a_data_set_it_cannot_track_is_refused_with_a_status(
    small_spool: Gateway, captures: Captures, uid: str, says: str
) -> None:
    ds = pydicom.dcmread(captures.unsigned)
    ae = AE(ae_title="MODALITY1")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", small_spool.config.port, ae_title=GATEWAY_AE)
    assert assoc.is_established
    try:
        ds.SOPInstanceUID = uid
        status = assoc.send_c_store(ds)
    finally:
        assoc.release()
    assert int(status.Status) == 0xC001 and says in str(status.get("ErrorComment", ""))
    assert small_spool.journal.counts() == {}
    assert not list(small_spool.spool.folder.iterdir()) or all(
        p.suffix != ".dcm" for p in small_spool.spool.folder.iterdir()
    )


def test_a_full_disk_turns_senders_away_without_losing_what_it_acknowledged(
    tmp_path: Path, orthanc: Orthanc, captures: Captures
) -> None:
    import subprocess

    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip()[:80]})")
    try:
        places = {"spool": str(disk / "spool"), "quarantine": str(disk / "quarantine")}
        settings = settings_for(tmp_path, orthanc, captures, journal=str(tmp_path / "journal.sqlite"), **places)
        gateway = Gateway(settings.with_overrides(gateway={"upstream": {"port": 9}}))  # the archive is down
        gateway.start()
        try:
            filler = disk / "filler"
            room = 16 * 1024 * 1024 + 3 * captures.signed.stat().st_size // 2  # the headroom, and one image
            filler.write_bytes(b"\0" * (20 * 1024 * 1024 - room - 64 * 1024))
            first = storescu(gateway.config.port, captures.signed)
            second = storescu(gateway.config.port, captures.unsigned)
            assert first.returncode == 0, first.stderr
            assert second.returncode != 0  # turned away (out of resources): the sender keeps it
            counts = gateway.journal.counts()
            assert sum(counts.values()) == 1 and counts.get("queued", 0) + counts.get("forwarding", 0) == 1
            assert len(list((disk / "spool").glob("*.dcm"))) == 1  # the acknowledged one is safe
        finally:
            gateway.stop()
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_resend_while_the_first_copy_is_being_checked_is_answered_from_it(
    small_spool: Gateway, captures: Captures
) -> None:
    """A sender that timed out sends again: both answers agree, and the instance is filed once."""
    data = captures.tampered.read_bytes()
    answers: list[int] = []

    def send() -> None:
        ds = pydicom.dcmread(captures.tampered)
        answers.append(int(small_spool.receive(ds, data, "MODALITY1").Status))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    uid = str(pydicom.dcmread(captures.tampered, stop_before_pixels=True).SOPInstanceUID)
    (entry,) = small_spool.journal.find(uid)
    assert str(entry.state) == "rejected" and answers == [0xC000] * 4  # tampered: refused, each time
    received = [t for t in small_spool.journal.transitions(entry.key) if t[1] == "received"]
    assert len(received) == 1
