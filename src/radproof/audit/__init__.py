"""The audit trail: one writer for the local hash-chained log and the ATNA messages (docs/gateway.md).

:class:`Auditor` records each event twice: a record in the local log (:mod:`~radproof.audit.chain`),
and, when a collector is configured, a DICOM audit message (:mod:`~radproof.audit.atna`) over syslog
(:mod:`~radproof.audit.syslog`) that waits in an outbox while the collector is unreachable.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from radproof.audit.atna import AuditMessage, EventID, Outcome, Participant
from radproof.audit.chain import AuditLog, verify_log
from radproof.audit.syslog import SyslogOutbox, rfc5424
from radproof.provenance.identity import Identity

__all__ = ["AuditLog", "AuditMessage", "Auditor", "EventID", "Outcome", "Participant", "verify_log"]


class Auditor:
    """Writes every audit event to the local log and, if configured, to a syslog collector."""

    def __init__(
        self,
        log_path: Path,
        *,
        identity: Identity | None = None,
        syslog: str | None = None,
        syslog_ca: Path | None = None,
        seal_every: int = 100,
    ) -> None:
        self.log = AuditLog(log_path, identity=identity, seal_every=seal_every)
        self.outbox = (
            SyslogOutbox(syslog, Path(log_path).with_name(Path(log_path).name + ".outbox"), ca_file=syslog_ca)
            if syslog
            else None
        )

    def emit(self, message: AuditMessage) -> dict[str, Any]:
        record = self.log.append(
            message.event.code,
            meaning=message.event.meaning,
            action=message.action,
            outcome=message.outcome.value,
            event_type=list(message.event_type) if message.event_type else None,
            detail=message.detail,
            studies=list(message.studies),
            instances=[list(i) for i in message.instances],
            participants=[asdict(p) for p in message.participants],
            at=message.when.isoformat(timespec="milliseconds"),
        )
        if self.outbox is not None:
            self.outbox.put(rfc5424(message.to_xml()))
        return record

    def close(self) -> None:
        self.log.close()
        if self.outbox is not None:
            self.outbox.close()


def auditor_from_settings(settings: Any, *, default_log: Path) -> Auditor:
    """The :class:`Auditor` the ``[audit]`` section describes (``default_log`` when it names no log).

    Raises
    ------
    ConfigError
        A sealing identity is configured but its passphrase is not available.
    """
    import os

    from radproof.errors import ConfigError
    from radproof.provenance.identity import load_identity

    audit = settings.audit
    identity = None
    if audit.identity is not None:
        if audit.passphrase_file is not None:
            try:
                secret = Path(audit.passphrase_file).read_text(encoding="utf-8").rstrip("\r\n").encode("utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read [audit] passphrase_file: {exc.strerror}") from None
        elif os.environ.get("RADPROOF_AUDIT_PASSPHRASE"):
            secret = os.environ["RADPROOF_AUDIT_PASSPHRASE"].encode("utf-8")
        else:
            raise ConfigError("[audit] identity needs its passphrase: passphrase_file or $RADPROOF_AUDIT_PASSPHRASE")
        identity = load_identity(audit.identity, secret)
    return Auditor(
        Path(audit.log) if audit.log is not None else default_log,
        identity=identity,
        syslog=audit.syslog,
        syslog_ca=audit.syslog_ca,
        seal_every=audit.seal_every,
    )
