"""The gateway's C-STORE SCP: spool, check, decide, then forward or hold.

Order of work for each C-STORE, and why:

1. the instance's identity is checked (a SOP Instance UID to track it by), and its bytes, exactly
   as received, are written to the spool and fsync'ed, and the journal says ``received``;
2. it is checked through the one-image pipeline and :func:`~radproof.gateway.decision.decide` picks
   the action; a quarantined or rejected instance is moved to the quarantine with its check report;
3. only then is the sender answered: success for forward and quarantine (both are safe on disk),
   a failure status for reject. A crash before the answer leaves the sender with its copy.

Forwarding runs in its own thread from the journal, so a slow or absent archive never holds up
a sender; instances wait in the spool, and the spool's size limit turns senders away (0xA700)
before the disk fills.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from radproof.audit import Auditor, auditor_from_settings
from radproof.audit.atna import (
    APPLICATION_ROLE,
    APPLICATION_START,
    APPLICATION_STOP,
    DESTINATION_ROLE,
    OBJECT_SECURITY,
    SOURCE_ROLE,
    AuditMessage,
    EventID,
    Participant,
)
from radproof.audit.atna import (
    Outcome as AuditOutcome,
)
from radproof.check import Verdict
from radproof.config import GatewayAction, GatewaySettings, Settings
from radproof.errors import ConfigError, InputError, RadproofError
from radproof.fileio import atomic_write_bytes
from radproof.gateway.countersign import countersign
from radproof.gateway.decision import (
    CANNOT_UNDERSTAND,
    OUT_OF_RESOURCES,
    REFUSED,
    Decision,
    decide,
    missing_identity,
)
from radproof.gateway.forwarder import Backoff, ForwarderThread, Outcome, Upstream, status_dataset
from radproof.gateway.journal import Entry, Journal, State
from radproof.gateway.quarantine import write_report
from radproof.gateway.spool import Spool, SpoolFull
from radproof.gateway.tls import server_context
from radproof.pipeline import Checker
from radproof.provenance.identity import Identity

log = logging.getLogger("radproof.gateway")


class Gateway:
    """The proxy: build it from settings, :meth:`start`, and :meth:`stop` on shutdown."""

    def __init__(self, settings: Settings, *, checker: Checker | None = None, passphrase: bytes | None = None) -> None:
        self.settings = settings
        self.config = settings.gateway
        self.spool = Spool(self.config.spool, self.config.spool_limit_bytes)
        self.quarantine = Path(self.config.quarantine)
        self.quarantine.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.journal = Journal(self.config.journal_path())
        self.checker = checker if checker is not None else Checker.from_settings(settings, passphrase=passphrase)
        self.audit: Auditor = auditor_from_settings(settings, default_log=default_audit_log(self.config))
        self._identity = _gateway_identity(self.config)
        self._upstream = Upstream(self.config)
        self._backoff = Backoff(self.config.retry_seconds, self.config.retry_max_seconds)
        self._forwarders: list[tuple[ForwarderThread, Upstream]] = []
        self._server: Any = None
        self._ae: AE | None = None
        self._lock = threading.Lock()
        self._in_flight: set[tuple[str, str]] = set()

    # -- running --------------------------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        """Recover unfinished work, start forwarding and listening; return the address listened on."""
        self.recover()
        for _ in range(self.config.forward_associations):
            upstream = Upstream(self.config)
            thread = ForwarderThread(functools.partial(self.forward_one, upstream))
            thread.start()
            self._forwarders.append((thread, upstream))
        c = self.config
        ae = AE(ae_title=c.ae_title)
        ae.maximum_associations = c.max_associations
        ae.maximum_pdu_size = c.max_pdu_bytes
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = c.timeout_seconds
        ae.require_calling_aet = list(c.allowed_callers)
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        handlers: list[Any] = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, self._on_echo)]
        self._ae = ae
        tls = server_context(c.tls)
        self._server = ae.start_server((c.host, c.port), block=False, evt_handlers=handlers, ssl_context=tls)
        host, port = self._server.server_address[:2]
        self._activity(APPLICATION_START)
        log.info("gateway %s listening on %s:%s, forwarding to %s", c.ae_title, host, port, self._upstream_name())
        return str(host), int(port)

    def stop(self) -> None:
        """Stop accepting, let the associations in progress finish their current instance, stop forwarding."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._ae is not None:
            self._ae.shutdown()
            self._ae = None
        for thread, _ in self._forwarders:
            thread.stop()
        for thread, upstream in self._forwarders:
            thread.join(timeout=self.config.timeout_seconds)
            upstream.close()
        self._forwarders = []
        self._upstream.close()
        self.journal.close()
        self._activity(APPLICATION_STOP)
        self.audit.close()
        log.info("gateway %s stopped", self.config.ae_title)

    # -- receiving ------------------------------------------------------------------------------

    def _on_echo(self, event: Any) -> int:
        return 0x0000 if self._peer_allowed(event) else REFUSED

    def _on_store(self, event: Any) -> Any:
        if not self._peer_allowed(event):
            return status_dataset(REFUSED, "radproof: this address may not store here")
        ds: Dataset = event.dataset
        ds.file_meta = event.file_meta
        calling = str(event.assoc.requestor.ae_title).strip()
        data = bytes(event.encoded_dataset(include_meta=True))
        return self.receive(ds, data, calling)

    def receive(self, ds: Dataset, data: bytes, calling_ae: str) -> Any:
        """Spool, check, decide and file one instance; return the C-STORE status to answer with."""
        problem = missing_identity(ds)
        if problem:
            log.warning("refused an instance from %s: %s", calling_ae, problem)
            return status_dataset(CANNOT_UNDERSTAND, f"radproof: {problem}")
        uid = str(ds.SOPInstanceUID).strip()
        sha = hashlib.sha256(data).hexdigest()
        key = (uid, sha)
        if self._wait_for(key):
            return self._answer_resend(key, calling_ae)
        with self._lock:  # one arrival of given bytes at a time: a resend must not race the first copy
            earlier = self.journal.find(uid)
            same = next((e for e in earlier if e.sha256 == sha and e.state is not State.DELETED), None)
            if same is not None and (same.state is not State.RECEIVED or key in self._in_flight):
                return self._answer_resend(key, calling_ae)
            try:
                path = self.spool.store(uid, sha, data)
            except InputError as exc:
                return status_dataset(CANNOT_UNDERSTAND, f"radproof: {exc}")
            except SpoolFull as exc:
                log.error("ALERT spool full, %s from %s turned away: %s", uid, calling_ae, exc)
                return status_dataset(OUT_OF_RESOURCES, "radproof: the gateway's spool is full; try later")
            except OSError as exc:
                log.error("ALERT cannot spool %s from %s: %s", uid, calling_ae, exc.strerror)
                return status_dataset(OUT_OF_RESOURCES, "radproof: the gateway cannot write its spool")
            self._in_flight.add(key)
            self.journal.received_instance(ds, sha256=sha, calling_ae=calling_ae, path=path, size=len(data))
        try:
            verdict, error = self._check(data, uid)
            decision = decide(ds, verdict, self.config, error=error)
            if any(e.sha256 != sha and e.state is State.FORWARDED for e in earlier) and decision.accepted:
                # The archive already holds other bytes under this UID: never overwrite it silently.
                reason = f"{decision.reason}; the archive holds other bytes as {uid}"
                decision = Decision(GatewayAction.QUARANTINE, reason)
            self._file(key, path, decision, verdict, calling_ae, ds)
        finally:
            with self._lock:
                self._in_flight.discard(key)
        if not decision.accepted:
            return status_dataset(REFUSED, f"radproof: refused ({decision.reason})")
        return status_dataset(0x0000)

    def _wait_for(self, key: tuple[str, str]) -> bool:
        """True when these bytes were already being filed by another association; waits until they are."""
        deadline = time.monotonic() + self.config.timeout_seconds
        waited = False
        while True:
            with self._lock:
                busy = key in self._in_flight
            if not busy or time.monotonic() > deadline:
                return waited
            waited = True
            time.sleep(0.05)

    def _answer_resend(self, key: tuple[str, str], calling_ae: str) -> Any:
        """A resend of bytes already here: answered from what became of the first copy."""
        entry = self.journal.get(key)
        state = entry.state if entry is not None else None
        log.info("%s from %s again: already %s here, byte for byte", key[0], calling_ae, state)
        if entry is None or state is State.RECEIVED:
            return status_dataset(OUT_OF_RESOURCES, "radproof: the first copy is still being checked; try later")
        if state is State.REJECTED:
            return status_dataset(REFUSED, f"radproof: refused ({entry.reason})")
        return status_dataset(0x0000)

    def _check(self, data: bytes, uid: str) -> tuple[Verdict | None, str | None]:
        try:
            return self.checker.check_bytes(data, name=uid), None
        except RadproofError as exc:
            return None, str(exc)

    def _file(
        self, key: tuple[str, str], path: Path, decision: Decision, verdict: Verdict | None, calling: str, ds: Dataset
    ) -> None:
        """Put a decided instance where its action says, then journal it."""
        kind = str(verdict.verdict) if verdict is not None else "error"
        who = f" patient {ds.get('PatientName', '')!s}" if self.config.log_patient_names else ""
        line = f"{key[0]} from {calling}{who}: {decision.reason} -> {decision.action}"
        if decision.alert:
            self._alert(key, calling, ds, f"{decision.action}: {decision.reason}")
        if decision.action in (GatewayAction.FORWARD, GatewayAction.FORWARD_AND_ALERT):
            if decision.alert:
                log.warning("ALERT %s", line)
            else:
                log.info("%s", line)
            if self._identity is not None and verdict is not None:
                signed = countersign(path.read_bytes(), self._identity, verdict, ae_title=self.config.ae_title,
                                     profile=self.settings.check.profile)  # fmt: skip
                atomic_write_bytes(path, signed, mode=0o600)
            self.journal.move(key, State.QUEUED, decision.reason, verdict=kind, action=decision.action,
                              reason=decision.reason)  # fmt: skip
            return
        held = self.quarantine / ("rejected" if decision.action is GatewayAction.REJECT else "")
        moved = self.spool.move_to(path, held)
        write_report(moved, uid=key[0], sha256=key[1], calling_ae=calling, received_at=time.time(),
                     action=str(decision.action), reason=decision.reason,
                     check=dict(verdict.to_dict()) if verdict is not None else None)  # fmt: skip
        log.warning("ALERT %s", line)
        state = State.REJECTED if decision.action is GatewayAction.REJECT else State.QUARANTINED
        self.journal.move(key, state, decision.reason, path=moved, verdict=kind, action=decision.action,
                          reason=decision.reason)  # fmt: skip

    def _peer_allowed(self, event: Any) -> bool:
        allowed = self.config.allowed_addresses
        return not allowed or str(event.assoc.requestor.address) in allowed

    # -- forwarding -----------------------------------------------------------------------------

    def forward_one(self, upstream: Upstream | None = None) -> bool:
        """Forward the oldest due instance through ``upstream`` (one per forwarder thread); True when
        there was one."""
        entry = self.journal.claim_next(time.time(), f"to {self._upstream_name()}")
        if entry is None:
            return False
        self._begin(entry)
        sent = (upstream or self._upstream).send(Path(entry.path))
        if sent.outcome is Outcome.STORED:
            self.journal.move(entry.key, State.FORWARDED, sent.detail)
            self.spool.remove(Path(entry.path))
            self._backoff.succeeded()
            self._transferred(entry)
            log.info("%s forwarded: %s", entry.sop_instance_uid, sent.detail)
        elif sent.outcome is Outcome.UNREACHABLE:
            wait = self._backoff.failed()
            self.journal.move(entry.key, State.QUEUED, None, error=sent.detail, retry_at=time.time() + wait)
            log.warning("%s waits %.0f s: %s", entry.sop_instance_uid, wait, sent.detail)
        else:
            self._hold(entry, f"the archive refused it: {sent.detail}")
        return True

    def recover(self) -> None:
        """Finish what a crash interrupted (called by :meth:`start`)."""
        for entry in self.journal.in_state(State.FORWARDING):
            known = self._upstream.has_instance(entry.study_uid, entry.series_uid, entry.sop_instance_uid)
            if known:
                self.journal.move(entry.key, State.FORWARDED, "found in the archive after a restart")
                self.spool.remove(Path(entry.path))
            elif known is None:
                # The archive cannot say: sending could duplicate it, not sending could lose it. Hold it.
                self._hold(entry, "interrupted while forwarding and the archive cannot say whether it arrived")
            else:
                self.journal.move(entry.key, State.QUEUED, "not in the archive after a restart; sent again")
        for entry in self.journal.in_state(State.RECEIVED):
            self._recover_received(entry)
        for entry in self.journal.in_state(State.FORWARDED):
            if Path(entry.path).parent == self.spool.folder and Path(entry.path).exists():
                self.spool.remove(Path(entry.path))  # sent, but the crash came before the clean-up
        waiting = {Path(e.path).name for e in self.journal.in_state(State.QUEUED, State.FORWARDING)}
        for orphan in self.spool.folder.glob("*.dcm"):
            if orphan.name not in waiting:
                # Written but never journalled: the sender was not answered and still has it.
                log.info("removing %s: spooled before a crash, never acknowledged", orphan.name)
                self.spool.remove(orphan)

    def _recover_received(self, entry: Entry) -> None:
        """An instance spooled but not yet decided when the gateway stopped: finish its filing."""
        path = Path(entry.path)
        if not path.is_file():
            # Moved to the quarantine before the crash, and the journal not yet told.
            for folder, state in ((self.quarantine, State.QUARANTINED), (self.quarantine / "rejected", State.REJECTED)):
                if (folder / path.name).is_file():
                    self.journal.move(entry.key, state, "filed before a restart", path=folder / path.name)
                    return
            return  # never fully written: the sender was not answered and still has it
        import pydicom

        data = path.read_bytes()
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        verdict, error = self._check(data, entry.sop_instance_uid)
        self._file(entry.key, path, decide(ds, verdict, self.config, error=error), verdict, entry.calling_ae, ds)

    def _hold(self, entry: Entry, reason: str) -> None:
        path = Path(entry.path)
        moved = self.spool.move_to(path, self.quarantine) if path.is_file() else path
        write_report(moved, uid=entry.sop_instance_uid, sha256=entry.sha256, calling_ae=entry.calling_ae,
                     action=str(GatewayAction.QUARANTINE), reason=reason, check=None)  # fmt: skip
        self.journal.move(entry.key, State.QUARANTINED, reason, path=moved, action=GatewayAction.QUARANTINE,
                          reason=reason)  # fmt: skip
        self._alert(entry.key, entry.calling_ae, None, f"quarantine: {reason}", entry=entry)
        log.warning("ALERT %s held: %s", entry.sop_instance_uid, reason)

    def _upstream_name(self) -> str:
        u = self.config.upstream
        return f"{u.ae_title}@{u.host}:{u.port}"

    # -- audit ----------------------------------------------------------------------------------

    def _me(self, *, requestor: bool, role: tuple[str, str]) -> Participant:
        return Participant(self.config.ae_title, requestor, role, self.config.host)

    def _activity(self, kind: tuple[str, str]) -> None:
        self.audit.emit(
            AuditMessage(EventID.APPLICATION_ACTIVITY, "E", AuditOutcome.SUCCESS,
                         (self._me(requestor=False, role=APPLICATION_ROLE),), self.config.ae_title, kind)
        )  # fmt: skip

    def _transferred(self, entry: Entry) -> None:
        u = self.config.upstream
        self.audit.emit(
            AuditMessage(
                EventID.INSTANCES_TRANSFERRED,
                "C",
                AuditOutcome.SUCCESS,
                (self._me(requestor=True, role=SOURCE_ROLE), Participant(u.ae_title, False, DESTINATION_ROLE, u.host)),
                self.config.ae_title,
                studies=(entry.study_uid,) if entry.study_uid else (),
                instances=((entry.sop_class_uid, entry.sop_instance_uid),),
                detail=f"verdict {entry.verdict}",
            )
        )

    def _begin(self, entry: Entry) -> None:
        u = self.config.upstream
        self.audit.emit(
            AuditMessage(
                EventID.BEGIN_TRANSFERRING,
                "E",
                AuditOutcome.SUCCESS,
                (self._me(requestor=True, role=SOURCE_ROLE), Participant(u.ae_title, False, DESTINATION_ROLE, u.host)),
                self.config.ae_title,
                studies=(entry.study_uid,) if entry.study_uid else (),
                instances=((entry.sop_class_uid, entry.sop_instance_uid),),
            )
        )

    def _alert(
        self, key: tuple[str, str], calling: str, ds: Dataset | None, what: str, *, entry: Entry | None = None
    ) -> None:
        study = str(ds.get("StudyInstanceUID", "")) if ds is not None else (entry.study_uid if entry else "")
        sop_class = str(ds.get("SOPClassUID", "")) if ds is not None else (entry.sop_class_uid if entry else "")
        self.audit.emit(
            AuditMessage(
                EventID.SECURITY_ALERT,
                "E",
                AuditOutcome.MINOR_FAILURE,
                (Participant(calling, True, SOURCE_ROLE), self._me(requestor=False, role=DESTINATION_ROLE)),
                self.config.ae_title,
                OBJECT_SECURITY,
                studies=(study,) if study else (),
                instances=((sop_class, key[0]),),
                detail=what,
            )
        )


def _gateway_identity(config: GatewaySettings) -> Identity | None:
    """The device identity that signs forwarded instances, or None when none is configured."""
    if config.identity is None:
        return None
    import os

    from radproof.provenance.identity import load_identity

    if config.identity_passphrase_file is not None:
        try:
            secret = config.identity_passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read [gateway] identity_passphrase_file: {exc.strerror}") from None
    elif os.environ.get("RADPROOF_GATEWAY_PASSPHRASE"):
        secret = os.environ["RADPROOF_GATEWAY_PASSPHRASE"]
    else:
        raise ConfigError(
            "[gateway] identity needs its passphrase: identity_passphrase_file or $RADPROOF_GATEWAY_PASSPHRASE"
        )
    return load_identity(config.identity, secret.encode("utf-8"))


def default_audit_log(config: GatewaySettings) -> Path:
    """``audit.jsonl`` beside the journal, unless ``[audit] log`` says otherwise."""
    return config.journal_path().parent / "audit.jsonl"
