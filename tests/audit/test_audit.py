"""The audit trail: a hash-chained, sealed local log; ATNA messages; syslog that loses nothing."""

from __future__ import annotations

import json
import multiprocessing
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from loopback import SyslogCollector
from radproof.audit import Auditor
from radproof.audit.atna import (
    APPLICATION_START,
    DESTINATION_ROLE,
    OBJECT_SECURITY,
    SOURCE_ROLE,
    AuditMessage,
    EventID,
    Outcome,
    Participant,
)
from radproof.audit.chain import AuditLog, verify_log
from radproof.audit.syslog import SyslogOutbox, rfc5424
from radproof.cli import main
from radproof.provenance import Role, init_ca, issue_identity, load_identity
from radproof.provenance.identity import Identity, load_certificate

PW = b"audit test passphrase"
SCHEMA = etree.RelaxNG(etree.parse(str(Path(__file__).with_name("dicom_audit_message.rng"))))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Identity, Identity]:
    root = tmp_path_factory.mktemp("audit-pki")
    init_ca(root / "ca", "Audit CA", PW, key_bits=2048)
    issue_identity(root / "gw", root / "ca", "Gateway", Role.DEVICE, PW, PW, key_bits=2048)
    init_ca(root / "other", "Other CA", PW, key_bits=2048)
    issue_identity(root / "rogue", root / "other", "Gateway", Role.DEVICE, PW, PW, key_bits=2048)
    return root / "ca" / "ca.pem", load_identity(root / "gw", PW), load_identity(root / "rogue", PW)


def _log(path: Path, identity: Identity | None, n: int = 25, seal_every: int = 10) -> None:
    log = AuditLog(path, identity=identity, seal_every=seal_every)
    for i in range(n):
        log.append("110104", instance=f"1.2.3.{i}")
    log.close()


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, records: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_an_untouched_log_verifies_with_its_seals(pki: tuple[Path, Identity, Identity], tmp_path: Path) -> None:
    ca, gw, _ = pki
    _log(tmp_path / "a.jsonl", gw)
    check = verify_log(tmp_path / "a.jsonl", trusted=[load_certificate(ca)])
    assert check.intact and check.records == 28 and check.seals == 3 and check.unsealed == 0
    assert check.signers == {"Gateway"}
    assert main(["audit", "verify", str(tmp_path / "a.jsonl"), "--trust", str(ca)]) == 0
    # Continued later: the chain goes on from the last record.
    _log(tmp_path / "a.jsonl", gw, n=3)
    assert verify_log(tmp_path / "a.jsonl").records == 32


@pytest.mark.parametrize("attack", ["edit", "delete", "reorder", "rewrite", "foreign-seal"])
def test_edits_deletions_reorderings_and_rewrites_are_detected(
    pki: tuple[Path, Identity, Identity], tmp_path: Path, attack: str
) -> None:
    from radproof.audit.chain import record_hash

    ca, gw, rogue = pki
    path = tmp_path / "log.jsonl"
    _log(path, gw)
    records = _lines(path)
    if attack == "edit":
        records[4]["instance"] = "9.9.9"
    elif attack == "delete":
        del records[4]
    elif attack == "reorder":
        records[4], records[5] = records[5], records[4]
    else:
        # Rewrite the chain from record 5 on, every hash recomputed: only the seals can tell.
        records[4]["instance"] = "9.9.9"
        prev = records[3]["hash"]
        for r in records[4:]:
            r["prev"] = prev
            if r["event"] == "seal":
                r["sealed"] = prev
                if attack == "foreign-seal":  # re-signed, but by a key the hospital's CA never vouched for
                    log = AuditLog(tmp_path / "scratch.jsonl", identity=rogue)
                    r["signature"], r["certificate"] = _resign(log, rogue, str(prev))
            r["hash"] = record_hash(r)
            prev = r["hash"]
    _write(path, records)
    check = verify_log(path, trusted=[load_certificate(ca)])
    assert not check.intact and check.problem
    assert main(["audit", "verify", str(path), "--trust", str(ca)]) == 1


def _resign(log: AuditLog, identity: Identity, head: str) -> tuple[str, str]:
    import base64
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding

    from radproof.provenance.codes import MacAlgorithm

    signature = identity.key.sign_digest(hashlib.sha256(bytes.fromhex(head)).digest(), MacAlgorithm.SHA256)
    cert = identity.certificate.public_bytes(Encoding.DER)
    log.close()
    return base64.b64encode(signature).decode(), base64.b64encode(cert).decode()


def test_verifying_the_configured_log_is_itself_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RADPROOF_AUDIT__LOG", str(tmp_path / "audit.jsonl"))
    _log(tmp_path / "audit.jsonl", None, n=3)
    assert main(["audit", "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 3
    last = _lines(tmp_path / "audit.jsonl")[-1]
    assert last["event"] == "110101" and "intact" in str(last["detail"])
    assert verify_log(tmp_path / "audit.jsonl").records == 4


def test_records_after_the_last_seal_are_counted(pki: tuple[Path, Identity, Identity], tmp_path: Path) -> None:
    _, gw, _ = pki
    path = tmp_path / "log.jsonl"
    log = AuditLog(path, identity=gw, seal_every=10)
    for i in range(13):
        log.append("110104", n=i)
    assert verify_log(path).unsealed == 3  # a seal after the 10th append, then 3 more appends
    log.close()
    assert verify_log(path).unsealed == 0  # closing seals


def _writer(path: str, tag: str) -> None:
    log = AuditLog(Path(path))
    for i in range(30):
        log.append("110104", writer=tag, n=i)
    log.close()


def test_two_processes_writing_one_log_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    AuditLog(path).close()
    procs = [multiprocessing.get_context("fork").Process(target=_writer, args=(str(path), t)) for t in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    check = verify_log(path)
    assert check.intact and check.records == 60


def _message(event: EventID = EventID.INSTANCES_TRANSFERRED) -> AuditMessage:
    return AuditMessage(
        event,
        "C",
        Outcome.SUCCESS,
        (Participant("RADPROOF", True, SOURCE_ROLE, "127.0.0.1"), Participant("ORTHANC", False, DESTINATION_ROLE)),
        "RADPROOF",
        OBJECT_SECURITY if event is EventID.SECURITY_ALERT else APPLICATION_START,
        studies=("1.2.3",),
        instances=(("1.2.840.10008.5.1.4.1.1.1.1", "1.2.3.4.5"),),
        detail="verdict authentic",
    )


@pytest.mark.parametrize("event", list(EventID))
def test_audit_messages_validate_against_the_dicom_audit_schema(event: EventID) -> None:
    document = etree.fromstring(_message(event).to_xml())
    assert SCHEMA.validate(document), SCHEMA.error_log
    assert document.find("EventIdentification/EventID").get("csd-code") == event.code


def test_the_schema_refuses_what_it_should() -> None:
    bad = etree.fromstring(_message().to_xml())
    bad.find("EventIdentification").set("EventOutcomeIndicator", "3")
    assert not SCHEMA.validate(bad)
    missing = etree.fromstring(_message().to_xml())
    missing.remove(missing.find("AuditSourceIdentification"))
    assert not SCHEMA.validate(missing)


@pytest.fixture
def collector() -> Iterator[SyslogCollector]:
    c = SyslogCollector()
    yield c
    c.close()


def _wait(condition: object, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_messages_reach_the_collector_as_rfc5424_with_valid_xml(collector: SyslogCollector, tmp_path: Path) -> None:
    auditor = Auditor(tmp_path / "audit.jsonl", syslog=f"tcp://127.0.0.1:{collector.port}")
    auditor.emit(_message())
    auditor.emit(_message(EventID.SECURITY_ALERT))
    assert _wait(lambda: len(collector.messages) == 2)
    auditor.close()
    first = collector.messages[0]
    assert first.startswith(b"<165>1 ") and b" IHE+RFC-3881 - \xef\xbb\xbf<?xml" in first
    xml = first.split(b"\xef\xbb\xbf", 1)[1]
    assert SCHEMA.validate(etree.fromstring(xml))
    assert verify_log(tmp_path / "audit.jsonl").records == 2


def test_an_unreachable_collector_loses_nothing(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    outbox = SyslogOutbox(f"tcp://127.0.0.1:{port}", tmp_path / "outbox", retry_seconds=0.1)
    for i in range(5):
        outbox.put(rfc5424(f"<m n='{i}'/>".encode()))
    time.sleep(0.5)
    assert outbox.waiting() == 5  # kept on disk while nobody listens
    outbox.close(flush_seconds=0.2)
    # A restart with the collector back sends what waited, in order.
    collector = SyslogCollector(port)
    try:
        again = SyslogOutbox(f"tcp://127.0.0.1:{port}", tmp_path / "outbox", retry_seconds=0.1)
        assert _wait(lambda: len(collector.messages) == 5)
        again.close()
        assert [m.rsplit(b"'", 2)[1] for m in collector.messages] == [str(i).encode() for i in range(5)]
        assert again.waiting() == 0
    finally:
        collector.close()
