"""Sending instances on to the archive: one C-STORE SCU, associations reused, retries with backoff.

Files are sent as they were received (pynetdicom reads the dataset bytes from the spool file), so
signatures and pixel data reach the archive byte for byte.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # type: ignore[attr-defined]

from radproof.config import GatewaySettings
from radproof.gateway.tls import client_context

log = logging.getLogger("radproof.gateway")

# Upstream statuses that mean "stored" (PS3.4 B.2.3: success and the warnings).
_STORED = {0x0000, 0xB000, 0xB006, 0xB007}
# Out of resources: the archive may take it later.
_TRY_LATER = range(0xA700, 0xA800)


class Outcome(StrEnum):
    STORED = "stored"  # the archive confirmed it
    REFUSED = "refused"  # the archive refused it for good (a failure status other than resources)
    UNREACHABLE = "unreachable"  # no association, a timeout, or out of resources: try again later


@dataclass(frozen=True)
class Sent:
    outcome: Outcome
    detail: str


class Upstream:
    """The archive, as an SCU sees it. Not thread-safe: one forwarder thread owns it."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._tls = client_context(settings.upstream.tls)
        self._assoc: Association | None = None
        self._contexts: set[tuple[str, str]] = set()

    def close(self) -> None:
        if self._assoc is not None and self._assoc.is_established:
            self._assoc.release()
        self._assoc = None

    def send(self, path: Path) -> Sent:
        """C-STORE the instance in ``path``, reusing the open association when it fits."""
        try:
            sop_class, syntax = _identity(path)
        except (OSError, ValueError) as exc:
            return Sent(Outcome.REFUSED, f"the spool file cannot be read ({exc})")
        assoc = self._association_for(sop_class, syntax)
        if assoc is None:
            return Sent(Outcome.UNREACHABLE, f"no association with {self._where()}")
        try:
            status = assoc.send_c_store(path)
        except Exception as exc:  # pynetdicom raises for encoding problems and lost connections alike
            self.close()
            return Sent(Outcome.UNREACHABLE, f"C-STORE to {self._where()} failed ({type(exc).__name__})")
        if not status or "Status" not in status:
            self.close()
            return Sent(Outcome.UNREACHABLE, f"{self._where()} did not answer the C-STORE")
        code = int(status.Status)
        if code in _STORED:
            return Sent(Outcome.STORED, f"stored upstream (status 0x{code:04X})")
        if code in _TRY_LATER:
            return Sent(Outcome.UNREACHABLE, f"{self._where()} is out of resources (0x{code:04X})")
        comment = str(status.get("ErrorComment", "") or "")[:120]
        return Sent(Outcome.REFUSED, f"{self._where()} refused it (0x{code:04X}{': ' + comment if comment else ''})")

    def has_instance(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> bool | None:
        """Whether the archive holds the instance (C-FIND at image level), or None when it cannot say."""
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = self._associate(ae)
        if not assoc.is_established:
            return None
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = series_uid
        query.SOPInstanceUID = sop_instance_uid
        found = False
        try:
            for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
                if not status or "Status" not in status:
                    return None
                code = int(status.Status)
                if code in (0xFF00, 0xFF01) and identifier is not None:
                    found = found or str(identifier.get("SOPInstanceUID", "")) == sop_instance_uid
                elif code != 0x0000:
                    return None
        finally:
            assoc.release()
        return found

    def _association_for(self, sop_class: str, syntax: str) -> Association | None:
        wanted = (sop_class, syntax)
        if self._assoc is not None and self._assoc.is_established and wanted in self._contexts:
            return self._assoc
        self.close()
        if wanted not in self._contexts:
            if len(self._contexts) >= 120:
                self._contexts.clear()  # a fresh start rather than more than 128 contexts
            self._contexts.add(wanted)
        ae = self._ae()
        for abstract, transfer in sorted(self._contexts):
            ae.add_requested_context(abstract, transfer)
        assoc = self._associate(ae)
        if not assoc.is_established:
            return None
        self._assoc = assoc
        return assoc

    def _associate(self, ae: AE) -> Association:
        u = self._settings.upstream
        tls_args = (self._tls, u.host) if self._tls is not None else None
        return ae.associate(u.host, u.port, ae_title=u.ae_title, tls_args=tls_args)

    def _ae(self) -> AE:
        s = self._settings
        ae = AE(ae_title=s.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = s.timeout_seconds
        ae.maximum_pdu_size = s.max_pdu_bytes
        return ae

    def _where(self) -> str:
        u = self._settings.upstream
        return f"{u.ae_title}@{u.host}:{u.port}"


def _identity(path: Path) -> tuple[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    sop_class = str(ds.file_meta.get("MediaStorageSOPClassUID") or ds.get("SOPClassUID") or "")
    syntax = str(ds.file_meta.get("TransferSyntaxUID") or "")
    if not sop_class or not syntax:
        raise ValueError("no SOP Class or Transfer Syntax UID")
    return sop_class, syntax


class Backoff:
    """Waits that double from ``first`` up to ``most`` seconds after each failure; reset on success."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, most
        self.current = first

    def failed(self) -> float:
        wait = self.current
        self.current = min(self.most, self.current * 2)
        return wait

    def succeeded(self) -> None:
        self.current = self.first


class ForwarderThread(threading.Thread):
    """Runs ``step`` until stopped, sleeping ``idle`` seconds whenever it had nothing to do."""

    def __init__(self, step: Callable[[], bool], *, idle: float = 0.2) -> None:
        super().__init__(name="radproof-forwarder", daemon=True)
        self._step = step
        self._idle = idle
        self._stop_event = threading.Event()
        self.error: str | None = None

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                busy = self._step()
            except Exception as exc:  # a bug must not stop forwarding for good; it is logged
                log.exception("forwarder step failed")
                self.error = f"{type(exc).__name__}: {exc}"
                busy = False
            if not busy:
                self._stop_event.wait(self._idle)


def status_dataset(code: int, comment: str | None = None) -> Any:
    """A C-STORE response status with an Error Comment (at most 64 characters, no patient data)."""
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = comment[:64]
    return ds
