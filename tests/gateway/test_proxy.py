"""DCMTK storescu -> radproof gateway -> Orthanc, all real, on the loopback."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from radproof.config import Settings, load_settings
from radproof.gateway.journal import State
from radproof.gateway.server import Gateway
from radproof.provenance import TrustStore, verify_file

from .conftest import Captures, Orthanc, free_port, gateway_config, storescu


def settings_for(tmp: Path, orthanc: Orthanc, captures: Captures, **gateway: object) -> Settings:
    return load_settings().with_overrides(
        trust={"ca": [str(captures.ca)]},
        check={"use_watermark": False, "use_detector": False},
        gateway={
            "port": free_port(),
            "allowed_callers": ["MODALITY1"],
            "spool": str(tmp / "spool"),
            "quarantine": str(tmp / "quarantine"),
            "upstream": {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": orthanc.dicom_port},
            "actions": {"tampered": "reject"},
            "retry_seconds": 0.2,
            **gateway,
        },
    )


@pytest.fixture
def running(tmp_path: Path, orthanc: Orthanc, captures: Captures) -> Iterator[Gateway]:
    orthanc.clear()
    gateway = Gateway(settings_for(tmp_path, orthanc, captures))
    gateway.start()
    yield gateway
    gateway.stop()


def wait_for(condition: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_signed_image_reaches_the_archive_unchanged(
    running: Gateway, orthanc: Orthanc, captures: Captures, tmp_path: Path
) -> None:
    done = storescu(running.config.port, captures.signed)
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: captures.signed_uid in orthanc.instance_uids())
    assert wait_for(lambda: running.journal.find(captures.signed_uid)[0].state is State.FORWARDED)
    (entry,) = running.journal.find(captures.signed_uid)
    assert entry.verdict == "authentic" and entry.action == "forward"
    assert not list(running.spool.folder.glob("*.dcm"))  # forwarded: nothing left waiting
    # The archive holds the sender's data set (Orthanc writes its own file meta): the signature verifies there.
    instance = next(iter(orthanc.get("/instances")))  # type: ignore[call-overload]
    with urllib.request.urlopen(f"http://127.0.0.1:{orthanc.http_port}/instances/{instance}/file", timeout=5) as got:
        stored = got.read()
    (tmp_path / "archived.dcm").write_bytes(stored)
    archived = verify_file(tmp_path / "archived.dcm", TrustStore.from_files(captures.ca))
    assert archived.status == "valid" and archived.signatures[0].integrity == "intact"
    sent = pydicom.dcmread(captures.signed)
    assert pydicom.dcmread(tmp_path / "archived.dcm").PixelData == sent.PixelData


def test_unsigned_is_held_and_tampered_is_refused_with_their_reasons(
    running: Gateway, orthanc: Orthanc, captures: Captures
) -> None:
    held = storescu(running.config.port, captures.unsigned)
    assert held.returncode == 0, held.stderr  # accepted: safe in the quarantine
    refused = storescu(running.config.port, captures.tampered)
    assert "0xc000" in (refused.stdout + refused.stderr).lower() or refused.returncode != 0
    quarantine = Path(running.config.quarantine)
    (report_file,) = quarantine.glob("*.json")
    report = json.loads(report_file.read_text())
    assert report["action"] == "quarantine" and report["check"]["verdict"] == "unverified"
    (rejected,) = (quarantine / "rejected").glob("*.json")
    assert json.loads(rejected.read_text())["check"]["verdict"] == "tampered"
    assert (quarantine / "rejected" / rejected.name.replace(".json", ".dcm")).is_file()
    time.sleep(1.0)
    assert orthanc.instance_uids() == set()  # neither reached the archive
    states = sorted(str(e.state) for e in running.journal.in_state(State.QUARANTINED, State.REJECTED))
    assert states == ["quarantined", "rejected"]


def test_a_caller_not_listed_is_turned_away(running: Gateway, captures: Captures) -> None:
    done = storescu(running.config.port, captures.signed, calling="STRANGER")
    assert done.returncode != 0
    assert running.journal.counts() == {}


def test_upstream_down_images_wait_then_flow(tmp_path: Path, orthanc: Orthanc, captures: Captures) -> None:
    orthanc.clear()
    settings = settings_for(tmp_path, orthanc, captures)
    dead = settings.with_overrides(
        gateway={"upstream": {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": free_port()}}
    )
    gateway = Gateway(dead)
    gateway.start()
    try:
        assert storescu(gateway.config.port, captures.signed).returncode == 0
        assert wait_for(lambda: bool(gateway.journal.last_errors()), timeout=10)
        (entry,) = gateway.journal.find(captures.signed_uid)
        assert entry.state in (State.QUEUED, State.FORWARDING) and entry.attempts >= 1
        assert list(gateway.spool.folder.glob("*.dcm"))  # still safe in the spool
    finally:
        gateway.stop()
    # The archive "comes back": a gateway pointed at it (same spool and journal) delivers what waited.
    revived = Gateway(settings)
    revived.start()
    try:
        assert wait_for(lambda: captures.signed_uid in orthanc.instance_uids())
        assert wait_for(lambda: revived.journal.find(captures.signed_uid)[0].state is State.FORWARDED)
    finally:
        revived.stop()


def test_quarantine_review_from_the_command_line(
    tmp_path: Path, orthanc: Orthanc, captures: Captures, capsys: pytest.CaptureFixture[str]
) -> None:
    from radproof.cli import main

    orthanc.clear()
    config = gateway_config(
        tmp_path / "gateway.toml",
        captures.ca,
        upstream={"port": orthanc.dicom_port},
        port=free_port(),
        allowed_callers=["MODALITY1"],
        spool="spool",
        quarantine="quarantine",
    )
    gateway = Gateway(load_settings(config))
    gateway.start()
    try:
        assert storescu(gateway.config.port, captures.unsigned, captures.tampered).returncode == 0
    finally:
        gateway.stop()
    capsys.readouterr()
    assert main(["gateway", "quarantine", "list", "--config", str(config), "--json"]) == 0
    held = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(h["verdict"] for h in held) == ["tampered", "unverified"]
    unsigned = next(h["sop_instance_uid"] for h in held if h["verdict"] == "unverified")
    tampered = next(h["sop_instance_uid"] for h in held if h["verdict"] == "tampered")
    assert main(["gateway", "quarantine", "show", unsigned[:-3], "--config", str(config)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["check"]["verdict"] == "unverified" and shown["history"][0]["state"] == "received"
    # A release needs a reason; with one, the image enters the archive and the review is recorded.
    assert main(["gateway", "quarantine", "release", unsigned, "--config", str(config), "--reason", " "]) == 2
    assert (
        main(
            ["gateway", "quarantine", "release", unsigned, "--config", str(config), "--by", "dr.a", "--reason", "known"]
        )
        == 0
    )
    assert unsigned in orthanc.instance_uids()
    assert main(["gateway", "quarantine", "delete", tampered, "--config", str(config), "--reason", "forged"]) == 0
    capsys.readouterr()
    assert main(["gateway", "status", "--config", str(config), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["states"] == {"forwarded": 1, "deleted": 1} and status["waiting"] == 0
    reports = {json.loads(p.read_text())["check"]["verdict"]: json.loads(p.read_text()) for p in
               (tmp_path / "quarantine").glob("*.json")}  # fmt: skip
    assert reports["unverified"]["review"][0]["by"] == "dr.a: known"
    assert not list((tmp_path / "quarantine").glob("*.dcm"))


def test_the_example_configuration_runs_as_is_against_orthanc(
    tmp_path: Path, orthanc: Orthanc, captures: Captures, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/gateway.toml, copied with a CA (and its CRL) beside it as its comments say.

    Only the ports differ, and the detector is off: the captures here are simulated phantoms, which it
    rightly does not take for real radiographs (the example rejects what it calls synthetic).
    """
    import shutil

    from radproof.provenance import Role, issue_identity, revoke_identity

    from .conftest import PW

    repo = Path(__file__).parents[2]
    (tmp_path / "examples").mkdir()
    example = shutil.copy(repo / "examples" / "gateway.toml", tmp_path / "examples" / "gateway.toml")
    shutil.copytree(captures.ca.parent, tmp_path / "ca")
    issue_identity(tmp_path / "gone", tmp_path / "ca", "Left", Role.TECHNOLOGIST, PW, PW, key_bits=2048)
    revoke_identity(tmp_path / "gone", tmp_path / "ca", PW)  # publishes ca/crl.pem: revocation is checked
    monkeypatch.setenv("RADPROOF_CHECK__USE_DETECTOR", "false")
    monkeypatch.setenv("RADPROOF_GATEWAY__PORT", str(free_port()))
    monkeypatch.setenv("RADPROOF_GATEWAY__UPSTREAM__PORT", str(orthanc.dicom_port))
    orthanc.clear()
    gateway = Gateway(load_settings(example))
    gateway.start()
    try:
        assert storescu(gateway.config.port, captures.signed, captures.unsigned).returncode == 0
        assert wait_for(lambda: captures.signed_uid in orthanc.instance_uids())
        assert len(orthanc.instance_uids()) == 1  # the unsigned capture is held
        assert gateway.journal.counts().get("quarantined") == 1
    finally:
        gateway.stop()
    assert (tmp_path / "radproof-gateway" / "quarantine").is_dir()


def test_every_decision_is_audited_locally_and_to_the_collector(
    tmp_path: Path, orthanc: Orthanc, captures: Captures
) -> None:
    from lxml import etree

    from loopback import SyslogCollector
    from radproof.audit.chain import verify_log
    from radproof.provenance import Role, issue_identity
    from radproof.provenance.identity import load_certificate

    from .conftest import PW

    orthanc.clear()
    issue_identity(tmp_path / "gw-id", captures.ca.parent, "Gateway 1", Role.DEVICE, PW, PW, key_bits=2048)
    (tmp_path / "pw").write_text(PW.decode())
    collector = SyslogCollector()
    try:
        settings = settings_for(tmp_path, orthanc, captures).with_overrides(
            audit={
                "syslog": f"tcp://127.0.0.1:{collector.port}",
                "identity": str(tmp_path / "gw-id"),
                "passphrase_file": str(tmp_path / "pw"),
            }
        )
        gateway = Gateway(settings)
        gateway.start()
        try:
            assert storescu(gateway.config.port, captures.signed, captures.unsigned).returncode == 0
            assert wait_for(lambda: gateway.journal.counts().get("forwarded") == 1)
        finally:
            gateway.stop()
        events = [r["event"] for r in map(json.loads, (tmp_path / "spool" / "audit.jsonl").read_text().splitlines())]
        assert events[0] == "110100" and events[-2] == "110100" and events[-1] == "seal"
        assert events.count("110104") == 1 and events.count("110113") == 1
        check = verify_log(tmp_path / "spool" / "audit.jsonl", trusted=[load_certificate(captures.ca)])
        assert check.intact and check.seals == 1 and check.signers == {"Gateway 1"}
        assert wait_for(lambda: len(collector.messages) == 5)
        schema = etree.RelaxNG(etree.parse(str(Path(__file__).parents[1] / "audit" / "dicom_audit_message.rng")))
        codes = []
        for message in collector.messages:
            document = etree.fromstring(message.split(b"\xef\xbb\xbf", 1)[1])
            assert schema.validate(document), schema.error_log
            codes.append(document.find("EventIdentification/EventID").get("csd-code"))
        assert sorted(codes) == ["110100", "110100", "110102", "110104", "110113"]
        alert = next(m for m in collector.messages if b'csd-code="110113"' in m)
        assert b"unverified" in alert and b"PHANTOM^SIMULATED" not in alert  # the reason, never the patient name
    finally:
        collector.close()


def test_the_gateway_signs_what_it_verified_and_both_signatures_hold_in_the_archive(
    tmp_path: Path, orthanc: Orthanc, captures: Captures
) -> None:
    import subprocess

    from radproof.check import Policy
    from radproof.pipeline import Checker
    from radproof.provenance import Role, issue_identity

    from .conftest import PW

    orthanc.clear()
    issue_identity(tmp_path / "gw-id", captures.ca.parent, "Gateway 1", Role.DEVICE, PW, PW, key_bits=2048)
    (tmp_path / "pw").write_text(PW.decode())
    settings = settings_for(
        tmp_path, orthanc, captures, identity=str(tmp_path / "gw-id"), identity_passphrase_file=str(tmp_path / "pw")
    )
    gateway = Gateway(settings)
    gateway.start()
    try:
        assert storescu(gateway.config.port, captures.signed).returncode == 0
        assert wait_for(lambda: captures.signed_uid in orthanc.instance_uids())
    finally:
        gateway.stop()
    instance = next(iter(orthanc.get("/instances")))  # type: ignore[call-overload]
    with urllib.request.urlopen(f"http://127.0.0.1:{orthanc.http_port}/instances/{instance}/file", timeout=5) as got:
        (tmp_path / "archived.dcm").write_bytes(got.read())
    result = verify_file(tmp_path / "archived.dcm", TrustStore.from_files(captures.ca))
    assert result.status == "valid" and [s.role for s in result.signatures] == ["technologist", "device"]
    assert [s.purpose for s in result.signatures] == ["source", "approval"]
    assert not result.unsigned_elements  # the gateway's signature covers the block it added
    archived = pydicom.dcmread(tmp_path / "archived.dcm")
    block = archived.private_block(0x0069, "RADPROOF GATEWAY")
    assert block[0x01].value == "authentic" and block[0x05].value == "RADPROOF"
    dcmsign = subprocess.run(
        ["dcmsign", "--verify", "+cf", str(captures.ca), str(tmp_path / "archived.dcm")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dcmsign.returncode == 0, dcmsign.stdout + dcmsign.stderr
    assert (dcmsign.stdout + dcmsign.stderr).count("Signature Verification : OK") == 2
    checker = Checker(trust=captures.ca, policy=Policy(use_watermark=False, use_detector=False))
    assert checker.check_file(tmp_path / "archived.dcm").verdict == "authentic"
