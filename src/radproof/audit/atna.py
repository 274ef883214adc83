"""IHE ATNA / DICOM PS3.15 A.5 audit messages: the XML a hospital's audit repository expects.

Only identifiers travel in these messages (AE titles, addresses, Study and SOP Instance UIDs, the
check's outcome); patient names never do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from xml.etree import ElementTree as ET


class EventID(Enum):
    """DICOM audit events (DCM codes, PS3.16 CID 400) radproof sends."""

    APPLICATION_ACTIVITY = ("110100", "Application Activity")
    AUDIT_LOG_USED = ("110101", "Audit Log Used")
    BEGIN_TRANSFERRING = ("110102", "Begin Transferring DICOM Instances")
    INSTANCES_TRANSFERRED = ("110104", "DICOM Instances Transferred")
    EXPORT = ("110106", "Export")
    IMPORT = ("110107", "Import")
    SECURITY_ALERT = ("110113", "Security Alert")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def meaning(self) -> str:
        return self.value[1]


class Outcome(Enum):
    SUCCESS = "0"
    MINOR_FAILURE = "4"
    SERIOUS_FAILURE = "8"
    MAJOR_FAILURE = "12"


# (code, meaning) of the event type codes and roles used below (DCM).
APPLICATION_START = ("110120", "Application Start")
APPLICATION_STOP = ("110121", "Application Stop")
SOURCE_ROLE = ("110153", "Source Role ID")
DESTINATION_ROLE = ("110152", "Destination Role ID")
APPLICATION_ROLE = ("110150", "Application")
#: The Security Alert type for an image whose provenance does not hold (a broken or missing signature,
#: a tampered mark, a detected or declared generation): its security attributes are not what they claim.
OBJECT_SECURITY = ("110134", "Object Security Attributes Changed")


@dataclass(frozen=True)
class Participant:
    user_id: str
    requestor: bool
    role: tuple[str, str] | None = None
    address: str | None = None


@dataclass(frozen=True)
class AuditMessage:
    """One audit message. :meth:`to_xml` gives the DICOM audit message XML."""

    event: EventID
    action: str  # C R U D E
    outcome: Outcome
    participants: tuple[Participant, ...]
    source_id: str
    event_type: tuple[str, str] | None = None
    studies: tuple[str, ...] = ()
    #: (SOP Class UID, SOP Instance UID) of the instances concerned, listed under the first study.
    instances: tuple[tuple[str, str], ...] = ()
    detail: str | None = None
    when: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def to_xml(self) -> bytes:
        root = ET.Element("AuditMessage")
        ident = ET.SubElement(
            root,
            "EventIdentification",
            EventActionCode=self.action,
            EventDateTime=self.when.isoformat(timespec="milliseconds"),
            EventOutcomeIndicator=self.outcome.value,
        )
        _code(ident, "EventID", (self.event.code, self.event.meaning))
        if self.event_type is not None:
            _code(ident, "EventTypeCode", self.event_type)
        if self.detail:
            ET.SubElement(ident, "EventOutcomeDescription").text = self.detail[:1024]
        for p in self.participants:
            attrs = {"UserID": p.user_id, "UserIsRequestor": "true" if p.requestor else "false"}
            if p.address:
                attrs |= {"NetworkAccessPointID": p.address, "NetworkAccessPointTypeCode": "2"}
            node = ET.SubElement(root, "ActiveParticipant", attrs)
            if p.role is not None:
                _code(node, "RoleIDCode", p.role)
        source = ET.SubElement(root, "AuditSourceIdentification", AuditSourceID=self.source_id)
        ET.SubElement(source, "AuditSourceTypeCode", csd_code="4", codeSystemName="DCM", originalText="Application")
        for uid in self.studies:
            node = ET.SubElement(
                root,
                "ParticipantObjectIdentification",
                ParticipantObjectID=uid,
                ParticipantObjectTypeCode="2",
                ParticipantObjectTypeCodeRole="3",
            )
            _code(node, "ParticipantObjectIDTypeCode", ("110180", "Study Instance UID"))
            if uid == self.studies[0]:
                by_class: dict[str, list[str]] = {}
                for sop_class, instance in self.instances:
                    by_class.setdefault(sop_class, []).append(instance)
                for sop_class, uids in by_class.items():
                    group = ET.SubElement(node, "SOPClass", UID=sop_class, NumberOfInstances=str(len(uids)))
                    for instance in uids:
                        ET.SubElement(group, "Instance", UID=instance)
        data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return data.replace(b"csd_code=", b"csd-code=")


def _code(parent: ET.Element, tag: str, code: tuple[str, str]) -> None:
    ET.SubElement(parent, tag, csd_code=code[0], codeSystemName="DCM", originalText=code[1])
