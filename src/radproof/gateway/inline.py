"""The gateway's policy inside the archive itself: a C-STORE filter for Orthanc's Python plugin.

Orthanc calls :meth:`InlineFilter.filter` with each instance it receives over DICOM, before storing
it. The instance is checked and decided exactly as the proxy does (:func:`~radproof.gateway.decision.decide`);
what the policy forwards, Orthanc stores; anything else is refused with a failure status the sender
sees (never a silent discard), and a copy is held in the quarantine with its check report, in the
same journal the proxy uses, so ``radproof gateway quarantine ...`` reviews both alike. An instance
released from the quarantine is let through once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import pydicom

from radproof.config import GatewayAction, Settings
from radproof.errors import RadproofError
from radproof.fileio import atomic_write_bytes
from radproof.gateway.decision import CANNOT_UNDERSTAND, REFUSED, decide, missing_identity
from radproof.gateway.journal import Journal, State
from radproof.gateway.quarantine import write_report
from radproof.gateway.spool import file_name
from radproof.pipeline import Checker

log = logging.getLogger("radproof.gateway")


class InlineFilter:
    """The policy of ``[check]`` and ``[gateway.actions]``, applied to instances as they arrive."""

    def __init__(self, settings: Settings, *, passphrase: bytes | None = None) -> None:
        self.settings = settings
        self.config = settings.gateway
        self.quarantine = Path(self.config.quarantine)
        self.quarantine.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.journal = Journal(self.config.journal_path())
        self.checker = Checker.from_settings(settings, passphrase=passphrase)

    def filter(self, data: bytes, calling_ae: str) -> int:
        """0 to let Orthanc store the instance, else the C-STORE failure status to answer with."""
        try:
            ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), stop_before_pixels=True, force=True)
        except Exception:
            return CANNOT_UNDERSTAND
        if missing_identity(ds):
            return CANNOT_UNDERSTAND
        uid = str(ds.SOPInstanceUID).strip()
        sha = hashlib.sha256(data).hexdigest()
        released = [e for e in self.journal.find(uid) if e.sha256 == sha and e.state is State.RELEASED]
        if released:
            self.journal.move(
                released[0].key, State.FORWARDED, f"stored by the archive after release, from {calling_ae}"
            )
            return 0
        try:
            name = file_name(uid, sha)
        except (RadproofError, ValueError):
            return CANNOT_UNDERSTAND
        try:
            verdict, error = self.checker.check_bytes(data, name=uid), None
        except RadproofError as exc:
            verdict, error = None, str(exc)
        decision = decide(ds, verdict, self.config, error=error)
        if decision.action in (GatewayAction.FORWARD, GatewayAction.FORWARD_AND_ALERT):
            if decision.alert:
                log.warning("ALERT %s from %s: %s (stored)", uid, calling_ae, decision.reason)
            return 0
        # Held: the archive refuses it (the sender keeps its copy), and the quarantine keeps one for review.
        folder = self.quarantine / ("rejected" if decision.action is GatewayAction.REJECT else "")
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = atomic_write_bytes(folder / name, data, mode=0o600)
        write_report(path, uid=uid, sha256=sha, calling_ae=calling_ae, received_at=time.time(),
                     action=str(decision.action), reason=decision.reason,
                     check=dict(verdict.to_dict()) if verdict is not None else None,
                     refused_by_archive=True)  # fmt: skip
        self.journal.received_instance(ds, sha256=sha, calling_ae=calling_ae, path=path, size=len(data))
        state = State.REJECTED if decision.action is GatewayAction.REJECT else State.QUARANTINED
        kind = str(verdict.verdict) if verdict is not None else "error"
        self.journal.move(
            (uid, sha), state, decision.reason, verdict=kind, action=decision.action, reason=decision.reason
        )
        log.warning("ALERT %s from %s: %s -> refused, held", uid, calling_ae, decision.reason)
        return REFUSED
