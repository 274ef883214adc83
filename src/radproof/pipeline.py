"""The one-image API: a file, bytes or a pydicom Dataset in, one :class:`~radproof.check.Verdict` out.

>>> import radproof
>>> verdict = radproof.check_file("capture.dcm", trust="ca.pem")
>>> verdict.verdict, verdict.passed, [r.message for r in verdict.reasons]

A :class:`Checker` loads the trust anchors, the watermark key and the detector once and checks as
many images as it is given; ``radproof check``, ``radproof scan``, the gateway and the web app all
check images through it, so one image gets the same verdict whichever door it came through.

Every layer the policy uses runs on the image; a layer that fails on it (an unreadable signature,
a detector error) is recorded in ``verdict.evidence.errors`` and the others still run. Bytes that
are not an image at all raise :class:`~radproof.errors.InputError`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from radproof.check import Evidence, Layer, Policy, Verdict, check, policy_for_profile
from radproof.errors import ConfigError, InputError, RadproofError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from radproof.config import Settings
    from radproof.detect import Detection, Detector
    from radproof.imaging import Radiograph
    from radproof.provenance import TrustStore, VerificationResult
    from radproof.watermark import WatermarkKey, WatermarkReading

__all__ = ["PHI_KEYWORDS", "Checker", "check_bytes", "check_dataset", "check_file"]

#: DICOM attributes that identify a patient; kept on the verdict only when asked (``show_phi``).
PHI_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyDate")

PathLike = str | os.PathLike[str]
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Read:
    """One input as the layers see it: the bytes, the radiograph, and the DICOM header if any."""

    data: bytes
    name: str
    image: Radiograph
    dataset: Dataset | None


class Checker:
    """Checks images with trust anchors, a watermark key and a detector loaded once.

    Parameters
    ----------
    trust
        Who may sign: a :class:`~radproof.provenance.TrustStore`, or a CA certificate file (PEM; the
        CRL beside it is read too). None: signatures are verified but no signer is trusted.
    key
        The site's watermark key (:func:`radproof.watermark.load_key`); None: the watermark layer
        does not run.
    policy
        The verdict rules: a :class:`~radproof.check.Policy` or a profile name (``default``,
        ``pacs``, ``detector-only``, ``legacy``; docs/check.md).
    detector
        A :class:`~radproof.detect.Detector` or a detector folder written by ``radproof adapt``;
        None: the shipped detector.
    show_phi
        Keep the patient identifiers (:data:`PHI_KEYWORDS`) on the verdict (``verdict.patient``).
    max_bytes
        :meth:`check_file` refuses bigger files before reading them (None: the loader's own limit).

    The detector is loaded on the first image that needs it. A Checker may be shared between
    threads: it holds no per-image state.
    """

    def __init__(
        self,
        *,
        trust: TrustStore | PathLike | None = None,
        key: WatermarkKey | None = None,
        policy: Policy | str | None = None,
        detector: Detector | PathLike | None = None,
        show_phi: bool = False,
        max_bytes: int | None = None,
    ) -> None:
        self.policy = _policy(policy)
        self.trust = _trust_store(trust)
        self.key = key
        self.show_phi = show_phi
        self.max_bytes = max_bytes
        self._detector: Detector | None = None
        self._detector_folder: str | None = None
        if detector is None or isinstance(detector, str | os.PathLike):
            self._detector_folder = None if detector is None else os.fspath(detector)
        else:
            self._detector = detector

    @classmethod
    def from_settings(cls, settings: Settings, *, passphrase: bytes | None = None) -> Checker:
        """The checker the configuration describes (``[check]``, ``[trust]``, ``[watermark]``, ``[detector]``).

        Raises
        ------
        KeyFileError, ConfigError
            A certificate, CRL or key cannot be read, or the key needs a passphrase.
        """
        policy = settings.check.policy()
        trust = _trust_from_settings(settings) if settings.trust.ca and policy.use_signature else None
        key = None
        if settings.watermark.key is not None and policy.use_watermark:
            if passphrase is None:
                raise ConfigError(
                    f"the watermark key {settings.watermark.key} needs its passphrase: "
                    "use --passphrase-file FILE or set RADPROOF_PASSPHRASE"
                )
            from radproof.watermark import load_key

            key = load_key(settings.watermark.key, passphrase)
        checker = cls(
            trust=trust,
            key=key,
            policy=policy,
            detector=settings.detector.model,
            show_phi=settings.report.show_phi,
            max_bytes=settings.scan.max_file_bytes,
        )
        if settings.detector.model is not None and policy.use_detector:
            checker.detector()  # fail early on a bad detector folder
        return checker

    # -- the three doors ---------------------------------------------------------------------------

    def check_file(self, path: PathLike) -> Verdict:
        """Check one local file (DICOM, PNG, JPEG or TIFF); the file is only read."""
        from radproof.fileio import read_input_bytes

        return self.check_bytes(read_input_bytes(path, limit=self.max_bytes), name=os.fspath(path))

    def check_bytes(self, data: bytes, *, name: str = "<bytes>") -> Verdict:
        """Check one image held in memory; ``name`` says where it came from (in the verdict and messages)."""
        return self._check(_read(data, name))

    def check_dataset(self, ds: Dataset, *, name: str | None = None) -> Verdict:
        """Check a pydicom Dataset, as a C-STORE handler receives it (``event.dataset`` with its file meta).

        The dataset is encoded once in its own transfer syntax, and that encoding is checked: the
        signatures hash the elements as encoded, and a file with the same bytes gets the same verdict.
        """
        label = name or _dataset_name(ds)
        return self.check_bytes(_encode(ds, label), name=label)

    # -- the layers --------------------------------------------------------------------------------

    def detector(self) -> Detector:
        """The detector this checker uses (loaded on first use, once per process for a folder)."""
        if self._detector is None:
            from radproof.detect.detector import detector_from

            self._detector = detector_from(self._detector_folder)
        return self._detector

    def _check(self, read: _Read) -> Verdict:
        policy = self.policy
        errors: dict[str, str] = {}
        signature = None
        if policy.use_signature and read.dataset is not None:
            signature = _layer(Layer.SIGNATURE, errors, lambda: self._verify(read))
        watermark = None
        if policy.use_watermark and self.key is not None:
            watermark = _layer(Layer.WATERMARK, errors, lambda: self._read_watermark(read))
        detection = None
        if policy.use_detector:
            detection = _layer(Layer.DETECTOR, errors, lambda: self._detect(read))
        evidence = Evidence(
            path=read.name,
            signature=signature,
            watermark=watermark,
            detection=detection,
            declared_synthetic=_declared(detection),
            errors=errors,
            has_header=read.dataset is not None,
        )
        return replace(check(evidence, policy), image=read.image, patient=self._patient(read.dataset))

    def _verify(self, read: _Read) -> VerificationResult:
        from radproof.provenance import verify_dataset

        assert read.dataset is not None
        return verify_dataset(read.dataset, self.trust)

    def _read_watermark(self, read: _Read) -> WatermarkReading:
        from radproof.watermark import read as read_watermark

        assert self.key is not None
        return read_watermark(read.image, self.key)

    def _detect(self, read: _Read) -> Detection:
        return self.detector().detect(read.image, data=read.data, path=read.name)

    def _patient(self, dataset: Dataset | None) -> dict[str, str]:
        if not self.show_phi or dataset is None:
            return {}
        return {k: str(dataset.get(k)) for k in PHI_KEYWORDS if dataset.get(k) not in (None, "")}


# -- module-level recipes ---------------------------------------------------------------------------


def check_file(
    path: PathLike,
    *,
    trust: TrustStore | PathLike | None = None,
    key: WatermarkKey | None = None,
    policy: Policy | str | None = None,
) -> Verdict:
    """Check one file with a one-off :class:`Checker` (for many files, make one Checker and reuse it)."""
    return Checker(trust=trust, key=key, policy=policy).check_file(path)


def check_bytes(
    data: bytes,
    *,
    name: str = "<bytes>",
    trust: TrustStore | PathLike | None = None,
    key: WatermarkKey | None = None,
    policy: Policy | str | None = None,
) -> Verdict:
    """Check one image held in memory with a one-off :class:`Checker`."""
    return Checker(trust=trust, key=key, policy=policy).check_bytes(data, name=name)


def check_dataset(
    ds: Dataset,
    *,
    name: str | None = None,
    trust: TrustStore | PathLike | None = None,
    key: WatermarkKey | None = None,
    policy: Policy | str | None = None,
) -> Verdict:
    """Check a pydicom Dataset with a one-off :class:`Checker`."""
    return Checker(trust=trust, key=key, policy=policy).check_dataset(ds, name=name)


# -- helpers -------------------------------------------------------------------------------------------


def _policy(policy: Policy | str | None) -> Policy:
    if policy is None:
        return Policy()
    if isinstance(policy, Policy):
        return policy
    try:
        return policy_for_profile(policy)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _trust_store(trust: TrustStore | PathLike | None) -> TrustStore | None:
    if trust is None or not isinstance(trust, str | os.PathLike):
        return trust
    from radproof.provenance import TrustStore

    return TrustStore.from_files(Path(trust))


def _trust_from_settings(settings: Settings) -> TrustStore:
    from radproof.provenance import TrustStore

    ocsp = _ocsp_fetch() if settings.trust.ocsp else None
    stores = [
        TrustStore.from_files(
            ca,
            crl=list(settings.trust.crl) or None,
            tsa=list(settings.trust.tsa),
            allow_leaf_anchors=settings.trust.allow_leaf_anchors,
            ocsp=ocsp,
        )
        for ca in settings.trust.ca
    ]
    trust = stores[0]
    if len(stores) > 1:
        trust = replace(
            trust,
            anchors=tuple(a for s in stores for a in s.anchors),
            crls=tuple(c for s in stores for c in s.crls),
            crl_sources=tuple(c for s in stores for c in s.crl_sources),
        )
    return trust


def _ocsp_fetch() -> Callable[[str, bytes], bytes]:
    # The one network call a check may make, chosen here (a shell concern), never inside provenance.
    from radproof.netio import fetch_ocsp

    return fetch_ocsp


def _read(data: bytes, name: str) -> _Read:
    from radproof.imaging import SourceFormat, load_bytes, sniff_format

    if sniff_format(data[:140]) is SourceFormat.DICOM:
        from radproof.imaging import radiograph_from_dataset, read_dataset

        dataset = read_dataset(data, name=name)  # parsed once: decoded here and verified later
        return _Read(data, name, radiograph_from_dataset(dataset, name=name), dataset)
    return _Read(data, name, load_bytes(data, name=name), None)


def _layer(layer: Layer, errors: dict[str, str], run: Callable[[], _T]) -> _T | None:
    """Run one layer; its failure on this image becomes an error entry, not an exception."""
    try:
        return run()
    except RadproofError as exc:
        errors[str(layer)] = str(exc)
    except ImportError:
        what = {
            Layer.SIGNATURE: "signature verification",
            Layer.WATERMARK: "watermark reading",
            Layer.DETECTOR: "the detector",
        }[layer]
        errors[str(layer)] = f"{what} is not available in this installation"
    return None


def _declared(detection: Detection | None) -> str | None:
    """What the header says about generation, from the detector's decisive hints (C2PA, metadata)."""
    if detection is None:
        return None
    from radproof.detect.hints import HintSeverity

    decisive = [h.message for h in detection.hints if h.severity is HintSeverity.DECISIVE]
    return "; ".join(decisive) or None


def _dataset_name(ds: Dataset) -> str:
    uid = ds.get("SOPInstanceUID")
    return f"<dataset {uid}>" if uid else "<dataset>"


def _encode(ds: Dataset, name: str) -> bytes:
    """The dataset as a DICOM file (preamble, file meta, its own transfer syntax)."""
    from pydicom import dcmwrite

    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        raise InputError(f"{name}: the dataset has no file meta with a Transfer Syntax UID (set ds.file_meta)")
    buffer = io.BytesIO()
    try:
        dcmwrite(buffer, ds, enforce_file_format=True)
    except (ValueError, TypeError, AttributeError, OSError) as exc:
        raise InputError(f"{name}: the dataset cannot be encoded: {exc}") from None
    return buffer.getvalue()
