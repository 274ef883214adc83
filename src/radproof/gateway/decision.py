"""What the gateway does with one received instance: a pure function of what it knows.

The network code only calls :func:`decide`; everything that decides an image's fate is here, where
a test can reach it without a socket.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from radproof.check import Verdict
from radproof.config import GatewayAction, GatewaySettings

#: C-STORE status for an image the policy refuses (PS3.4 B.2.3 "Cannot understand" range: the sender
#: keeps its copy and shows the failure); the Error Comment says why.
REFUSED = 0xC000
#: The spool is full or the disk cannot take the image: the sender should try again later.
OUT_OF_RESOURCES = 0xA700
#: The data set cannot be stored by anyone (no SOP Instance UID, no SOP Class UID).
CANNOT_UNDERSTAND = 0xC001


@dataclass(frozen=True)
class Decision:
    """The action for one instance, why, and whether a person must be told."""

    action: GatewayAction
    reason: str

    @property
    def alert(self) -> bool:
        """Everything but a plain forward raises a security alert."""
        return self.action is not GatewayAction.FORWARD

    @property
    def accepted(self) -> bool:
        """The sender is told the image was stored (forwarded, or held in the quarantine)."""
        return self.action is not GatewayAction.REJECT


def decide(
    dataset: Dataset, verdict: Verdict | None, settings: GatewaySettings, *, error: str | None = None
) -> Decision:
    """The action for ``dataset`` whose check gave ``verdict`` (None with ``error``: the check failed).

    The verdict decides through ``[gateway.actions]``; an image the check could not judge takes the
    ``error`` action (quarantine unless configured otherwise), never a silent forward.
    """
    if verdict is None:
        action = settings.actions.for_verdict(None)
        return Decision(action, f"the check failed: {error or 'no verdict'}")
    action = settings.actions.for_verdict(verdict.verdict)
    codes = ", ".join(str(r.code) for r in verdict.reasons[:3])
    return Decision(action, f"verdict {verdict.verdict}" + (f" ({codes})" if codes else ""))


def missing_identity(dataset: Dataset) -> str | None:
    """Why the instance cannot be stored or tracked at all (None: it can)."""
    for keyword in ("SOPClassUID", "SOPInstanceUID"):
        value = dataset.get(keyword)
        if not value or not str(value).strip():
            return f"the data set has no {keyword}"
    return None
