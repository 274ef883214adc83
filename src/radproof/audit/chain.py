"""The local audit log: append-only JSON Lines whose records are hash-chained and sealed by signatures.

Each record carries the SHA-256 of the previous record (``prev``) and its own (``hash``, over its
canonical JSON without that field). Editing, deleting or reordering a record breaks the chain at that
point. Every ``seal_every`` records, and when the log is closed, a ``seal`` record signs the hash of
the chain so far with the writer's identity (RSA, SHA-256): a forger who rewrites the whole chain
from some record on cannot make the seals after it verify. Records written after the last seal can
be cut off without a trace; a verifier reports how many there are.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from radproof.errors import InputError
from radproof.provenance.codes import MacAlgorithm
from radproof.provenance.identity import Identity, subject_name

GENESIS = "0" * 64
SEAL = "seal"


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    """The SHA-256 of a record's canonical JSON, its ``hash`` field left out."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


class AuditLog:
    """Appends records to one file (safe to share between threads and between processes: each append
    takes an exclusive lock on the file and continues the chain from its last record).

    Parameters
    ----------
    path
        Created (mode 0600) if missing; an existing log is continued from its last record.
    identity
        Signs the seals. Without one the log is chained but not sealed (a verifier says so).
    seal_every
        Records between two seals.
    """

    def __init__(self, path: Path, *, identity: Identity | None = None, seal_every: int = 100) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._identity = identity
        self._seal_every = seal_every
        self._lock = threading.Lock()
        self._seq, self._head, self._since_seal = _tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record durably (fsync) and return it; a seal follows every ``seal_every`` records."""
        with self._lock, self._file_lock():
            written = self._write({"event": event, **fields})
            if self._identity is not None and self._since_seal >= self._seal_every:
                self._seal()
            return written

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            if self._identity is not None and self._since_seal:
                with self._file_lock():
                    self._seal()
            os.close(self._fd)
            self._fd = -1

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            # Another process may have appended since: continue from the file's last record.
            self._seq, self._head = _last_record(self.path, self._seq, self._head)
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _write(self, body: dict[str, Any]) -> dict[str, Any]:
        record = {"seq": self._seq + 1, "time": round(time.time(), 3), **body, "prev": self._head}
        record["hash"] = record_hash(record)
        line = _canonical(record) + b"\n"
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)
        self._seq, self._head = record["seq"], record["hash"]
        self._since_seal = 0 if body.get("event") == SEAL else self._since_seal + 1
        return record

    def _seal(self) -> None:
        assert self._identity is not None
        digest = hashlib.sha256(bytes.fromhex(self._head)).digest()
        signature = self._identity.key.sign_digest(digest, MacAlgorithm.SHA256)
        cert = self._identity.certificate.public_bytes(Encoding.DER)
        self._write(
            {
                "event": SEAL,
                "sealed": self._head,
                "signer": subject_name(self._identity.certificate),
                "certificate": base64.b64encode(cert).decode("ascii"),
                "signature": base64.b64encode(signature).decode("ascii"),
            }
        )


def _last_record(path: Path, seq: int, head: str) -> tuple[int, str]:
    """(seq, hash) of the file's last line; the known values when the file ends where they say."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        if end == 0:
            return 0, GENESIS
        back = min(end, 65536)
        fh.seek(end - back)
        tail = fh.read(back).rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        record = json.loads(tail)
        return int(record["seq"]), str(record["hash"])
    except (ValueError, KeyError, TypeError):
        return seq, head


def _tail(path: Path) -> tuple[int, str, int]:
    """(last seq, last hash, records since the last seal) of an existing log, checked on the way."""
    if not path.exists() or path.stat().st_size == 0:
        return 0, GENESIS, 0
    check = verify_log(path)
    if not check.intact:
        raise InputError(f"audit log {path} is broken ({check.problem}); move it aside before writing a new one")
    return check.records, check.head, check.unsealed


@dataclass
class AuditCheck:
    """What :func:`verify_log` found."""

    records: int = 0
    seals: int = 0
    head: str = GENESIS
    unsealed: int = 0  # records after the last seal
    problem: str | None = None
    signers: set[str] = field(default_factory=set)

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify_log(path: Path, *, trusted: list[x509.Certificate] | None = None) -> AuditCheck:
    """Recompute the chain and check every seal. ``trusted``: seals must be by one of these certificates
    (or certificates they issued); without it, a seal proves only that the log is unchanged since."""
    out = AuditCheck()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read audit log {path}: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            problem = _check_line(line, number, out, trusted)
            if problem:
                out.problem = problem
                return out
    return out


def _check_line(line: bytes, number: int, out: AuditCheck, trusted: list[x509.Certificate] | None) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:
        return f"line {number} is not a JSON record"
    if not isinstance(record, dict):
        return f"line {number} is not a JSON record"
    if record.get("seq") != out.records + 1:
        return f"line {number}: record {record.get('seq')} where {out.records + 1} was due (deleted or reordered)"
    if record.get("prev") != out.head:
        return f"line {number}: it does not follow the record before it (a record was changed, removed or moved)"
    if record.get("hash") != record_hash(record):
        return f"line {number}: its content does not match its hash (the record was edited)"
    out.records, out.head = int(record["seq"]), str(record["hash"])
    if record.get("event") != SEAL:
        out.unsealed += 1
        return None
    problem = _check_seal(record, trusted)
    if problem:
        return f"line {number}: {problem}"
    out.seals += 1
    out.unsealed = 0
    out.signers.add(str(record.get("signer")))
    return None


def _check_seal(record: dict[str, Any], trusted: list[x509.Certificate] | None) -> str | None:
    if record.get("sealed") != record.get("prev"):
        return "the seal does not seal the record before it"
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(record["certificate"]))
        signature = base64.b64decode(record["signature"])
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            return "the seal's certificate is not an RSA certificate"
        digest = hashlib.sha256(bytes.fromhex(str(record["sealed"]))).digest()
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

        key.verify(signature, digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    except InvalidSignature:
        return "the seal's signature does not verify (the chain before it was rewritten)"
    except (KeyError, ValueError, TypeError):
        return "the seal is malformed"
    if trusted is not None and not any(_vouches(anchor, cert) for anchor in trusted):
        return f"the seal is by {subject_name(cert)}, whom the given trust anchors do not vouch for"
    return None


def _vouches(anchor: x509.Certificate, cert: x509.Certificate) -> bool:
    if anchor == cert:
        return True
    try:
        cert.verify_directly_issued_by(anchor)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
