"""Reviewing what the gateway held: list, show, release (forward, as an import), delete.

Every release and deletion names who did it and why; both are recorded in the journal's transitions
with that text, and the file's check report keeps a ``review`` list.
"""

from __future__ import annotations

import getpass
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radproof.audit import auditor_from_settings
from radproof.audit.atna import DESTINATION_ROLE, OBJECT_SECURITY, SOURCE_ROLE, AuditMessage, EventID, Participant
from radproof.audit.atna import Outcome as AuditOutcome
from radproof.config import Settings
from radproof.errors import InputError
from radproof.fileio import atomic_write_bytes
from radproof.gateway.forwarder import Outcome, Upstream
from radproof.gateway.journal import Entry, Journal, State

HELD = (State.QUARANTINED, State.REJECTED)


@dataclass(frozen=True)
class Held:
    """One held instance: its journal entry and its check report."""

    entry: Entry
    report: dict[str, Any]

    @property
    def path(self) -> Path:
        return Path(self.entry.path)


class Quarantine:
    """The held instances of one gateway (its journal and quarantine folder)."""

    def __init__(self, settings: Settings) -> None:
        from radproof.gateway.server import default_audit_log

        self.settings = settings.gateway
        self.journal = Journal(self.settings.journal_path())
        self.audit = auditor_from_settings(settings, default_log=default_audit_log(self.settings))

    def close(self) -> None:
        self.journal.close()
        self.audit.close()

    def _record(self, event: EventID, held: Held, who: str, what: str) -> None:
        user = Participant(who.split(":", 1)[0], True, None)
        me = Participant(self.settings.ae_title, False, SOURCE_ROLE if event is EventID.IMPORT else None)
        upstream = Participant(self.settings.upstream.ae_title, False, DESTINATION_ROLE, self.settings.upstream.host)
        self.audit.emit(
            AuditMessage(
                event,
                "C" if event is EventID.IMPORT else "D",
                AuditOutcome.SUCCESS,
                (user, me, upstream) if event is EventID.IMPORT else (user, me),
                self.settings.ae_title,
                None if event is EventID.IMPORT else OBJECT_SECURITY,
                studies=(held.entry.study_uid,) if held.entry.study_uid else (),
                instances=((held.entry.sop_class_uid, held.entry.sop_instance_uid),),
                detail=f"{what} by {who}",
            )
        )

    def list(self) -> list[Held]:
        return [Held(e, _report(Path(e.path))) for e in self.journal.in_state(*HELD)]

    def get(self, uid_prefix: str) -> Held:
        """The one held instance whose SOP Instance UID is, or starts with, ``uid_prefix``."""
        matches = [h for h in self.list() if h.entry.sop_instance_uid.startswith(uid_prefix.strip())]
        exact = [h for h in matches if h.entry.sop_instance_uid == uid_prefix.strip()]
        if len(exact) == 1:
            return exact[0]
        if not matches:
            raise InputError(f"nothing held matches {uid_prefix!r} (see `radproof gateway quarantine list`)")
        if len(matches) > 1:
            raise InputError(f"{len(matches)} held instances match {uid_prefix!r}; give more of the UID")
        return matches[0]

    def release(self, uid_prefix: str, *, by: str | None, why: str) -> str:
        """Send a held instance to the archive now; return what the archive said.

        Raises
        ------
        InputError
            No reason given, or the archive did not take it (the instance stays held).
        """
        held = self.get(uid_prefix)
        who = _who(by, why)
        # Released before it is sent: an archive that applies this policy itself (the Orthanc plugin)
        # lets a released instance through once.
        self.journal.move(held.entry.key, State.RELEASED, f"released by {who}")
        upstream = Upstream(self.settings)
        try:
            sent = upstream.send(held.path)
        finally:
            upstream.close()
        if sent.outcome is not Outcome.STORED:
            self.journal.move(held.entry.key, held.entry.state, f"release failed: {sent.detail}")
            raise InputError(f"not released: {sent.detail}")
        now = self.journal.get(held.entry.key)
        if now is None or now.state is not State.FORWARDED:  # the plugin may have recorded it already
            self.journal.move(held.entry.key, State.FORWARDED, f"{sent.detail} (import after review)")
        _append_review(held.path, "released", who)
        self._record(EventID.IMPORT, held, who, "released from the quarantine into the archive")
        held.path.unlink(missing_ok=True)  # the archive has it now; the report stays
        return sent.detail

    def delete(self, uid_prefix: str, *, by: str | None, why: str) -> Path:
        """Delete a held instance's file (its report and journal history stay)."""
        held = self.get(uid_prefix)
        who = _who(by, why)
        _append_review(held.path, "deleted", who)
        held.path.unlink(missing_ok=True)
        self.journal.move(held.entry.key, State.DELETED, f"deleted by {who}")
        self._record(EventID.SECURITY_ALERT, held, who, "a held instance was deleted")
        return held.path


def write_report(
    held: Path,
    *,
    uid: str,
    sha256: str,
    calling_ae: str,
    action: str,
    reason: str,
    check: dict[str, Any] | None,
    received_at: float | None = None,
    **extra: Any,
) -> Path:
    """Write the check report that travels beside a held instance (``UID.<hash>.json``)."""
    report: dict[str, Any] = {"sop_instance_uid": uid, "sha256": sha256, "calling_ae": calling_ae}
    if received_at is not None:
        report["received_at"] = received_at
    report |= {"action": action, "reason": reason, "check": check, **extra}
    data = json.dumps(report, indent=1, default=str).encode("utf-8")
    return atomic_write_bytes(held.with_suffix(".json"), data, mode=0o600)


def _who(by: str | None, why: str) -> str:
    if not why or not why.strip():
        raise InputError("say why (--reason): a release or deletion is part of the audit trail")
    name = (by or getpass.getuser()).strip()
    return f"{name}: {why.strip()}"


def _report(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data


def _append_review(path: Path, what: str, who: str) -> None:
    report = _report(path)
    report.setdefault("review", []).append({"at": time.time(), "action": what, "by": who})
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(report, indent=1, default=str).encode("utf-8"), mode=0o600)
