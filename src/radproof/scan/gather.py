"""The gatherer: all the I/O behind one verdict. Load a file once, verify, read the watermark, detect.

:func:`gather` turns a file's bytes into :class:`~radproof.check.Evidence` (plus the loaded
radiograph), and :class:`CheckProcessor` is the per-file function of a scan: gather, check, and
make preview images for the report. ``radproof check`` uses the same two.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radproof.check import Evidence, Policy, Verdict, check
from radproof.config import Settings
from radproof.errors import ConfigError, RadproofError
from radproof.imaging import Radiograph, load_bytes, sniff_format
from radproof.imaging.radiograph import SourceFormat
from radproof.scan.discover import ScanItem

if TYPE_CHECKING:
    from radproof.provenance import TrustStore
    from radproof.watermark import WatermarkKey

#: DICOM attributes that identify a patient; kept only when the report may show them (--show-phi).
PHI_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyDate")


@dataclass(frozen=True)
class Layers:
    """What the layers need, loaded once per process: trust anchors, watermark key, policy."""

    policy: Policy
    trust: TrustStore | None = None
    key: WatermarkKey | None = None
    show_phi: bool = False
    detector: Path | None = None  # detector folder; None = the shipped one (loaded once per process)

    @classmethod
    def from_settings(cls, settings: Settings, *, passphrase: bytes | None = None) -> Layers:
        """Load the trust store and the watermark key named in the settings.

        Raises
        ------
        KeyFileError, ConfigError
            A certificate, CRL or key cannot be read, or the key needs a passphrase.
        """
        policy = settings.check.policy()
        trust = None
        if settings.trust.ca and policy.use_signature:
            from radproof.provenance import TrustStore

            stores = [
                TrustStore.from_files(
                    ca,
                    crl=list(settings.trust.crl) or None,
                    tsa=list(settings.trust.tsa),
                    allow_leaf_anchors=settings.trust.allow_leaf_anchors,
                    ocsp=_ocsp_fetch() if settings.trust.ocsp else None,
                )
                for ca in settings.trust.ca
            ]
            trust = stores[0]
            if len(stores) > 1:
                from dataclasses import replace

                trust = replace(
                    trust,
                    anchors=tuple(a for s in stores for a in s.anchors),
                    crls=tuple(c for s in stores for c in s.crls),
                    crl_sources=tuple(c for s in stores for c in s.crl_sources),
                )
        key = None
        if settings.watermark.key is not None and policy.use_watermark:
            if passphrase is None:
                raise ConfigError(
                    f"the watermark key {settings.watermark.key} needs its passphrase: "
                    "use --passphrase-file FILE or set RADPROOF_PASSPHRASE"
                )
            from radproof.watermark import load_key

            key = load_key(settings.watermark.key, passphrase)
        if settings.detector.model is not None and policy.use_detector:
            from radproof.detect.detector import detector_from

            detector_from(str(settings.detector.model))  # fail early on a bad folder
        return cls(
            policy=policy,
            trust=trust,
            key=key,
            show_phi=settings.report.show_phi,
            detector=settings.detector.model,
        )


def _ocsp_fetch() -> Callable[[str, bytes], bytes]:
    from radproof.netio import fetch_ocsp

    return fetch_ocsp


@dataclass
class Gathered:
    """The evidence on one image, its verdict, the radiograph it was read as, and PHI (if kept)."""

    verdict: Verdict
    image: Radiograph | None
    patient: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        out = self.verdict.to_dict()
        if self.image is not None:
            out["format"] = str(self.image.source_format)
            out["shape"] = list(self.image.shape)
        if self.patient:
            out["patient"] = dict(self.patient)
        return out


def gather(data: bytes, name: str, layers: Layers) -> Gathered:
    """Read one image's bytes through every layer the policy uses, and check it.

    A failure in one layer is recorded in ``Evidence.errors`` and the others still run; a file
    that cannot be read as an image at all raises :class:`~radproof.errors.InputError`.
    """
    policy = layers.policy
    errors: dict[str, str] = {}
    fmt = sniff_format(data[:140])
    dataset = None
    if fmt is SourceFormat.DICOM:
        from radproof.imaging import radiograph_from_dataset, read_dataset

        dataset = read_dataset(data, name=name)  # parsed once: decoded here and verified below
        image = radiograph_from_dataset(dataset, name=name)
    else:
        image = load_bytes(data, name=name)

    signature = None
    if policy.use_signature and dataset is not None:
        try:
            from radproof.provenance import verify_dataset

            signature = verify_dataset(dataset, layers.trust)
        except RadproofError as exc:
            errors["signature"] = str(exc)
        except ImportError:
            errors["signature"] = "signature verification is not available in this installation"

    watermark = None
    if policy.use_watermark and layers.key is not None:
        try:
            from radproof.watermark import read as read_watermark

            watermark = read_watermark(image, layers.key)
        except RadproofError as exc:
            errors["watermark"] = str(exc)
        except ImportError:
            errors["watermark"] = "watermark reading is not available in this installation"

    detection = None
    declared = None
    if policy.use_detector:
        try:
            from radproof.detect import detect
            from radproof.detect.detector import detector_from

            folder = None if layers.detector is None else str(layers.detector)
            detection = detect(image, data=data, detector=detector_from(folder), path=name)
            decisive = [h for h in getattr(detection, "hints", ()) if getattr(h, "severity", None) == "decisive"]
            declared = "; ".join(str(getattr(h, "message", h)) for h in decisive) or None
        except RadproofError as exc:
            errors["detector"] = str(exc)
        except ImportError:
            errors["detector"] = "the detector is not available in this installation"

    evidence = Evidence(
        path=name,
        signature=signature,
        watermark=watermark,
        detection=detection,
        declared_synthetic=declared,
        errors=errors,
        has_header=dataset is not None,
    )
    patient: dict[str, str] = {}
    if layers.show_phi and dataset is not None:
        patient = {k: str(dataset.get(k)) for k in PHI_KEYWORDS if dataset.get(k) not in (None, "")}
    return Gathered(check(evidence, policy), image, patient)


def previews(gathered: Gathered) -> dict[str, bytes]:
    """Thumbnail, detector heatmap and tamper overlay of one image, as PNG bytes (what exists)."""
    from radproof.report import images

    if gathered.image is None:
        return {}
    gray = images.thumbnail(gathered.image)
    out = {"thumb": images.png(gray)}
    ev = gathered.verdict.evidence
    heat = getattr(ev.detection, "heatmap", None) if ev.detection is not None else None
    if heat is not None:
        out["heatmap"] = images.png(images.heatmap_overlay(gray, heat))
    if ev.watermark is not None:
        mask = getattr(ev.watermark, "tamper_map", None)
        if mask is None:
            mask = images.blocks_mask(getattr(ev.watermark, "tampered_blocks", None), gathered.image.shape)
        if mask is not None and bool(getattr(mask, "any", lambda: False)()):
            out["tamper"] = images.png(images.tamper_overlay(gray, mask))
    return out


# Layers are loaded once per worker process, not once per file (certificates, keys, the model).
_CACHE: dict[str, Layers] = {}
_CACHE_LOCK = threading.Lock()


def checks_fingerprint(settings: Settings) -> str:
    """A short digest of everything that decides a check's verdict.

    The radproof version, every setting but the ``[scan]`` section (workers and batch sizes change
    no verdict), the trust anchors and CRLs as they are now, and the detector files in use. A scan
    stamps it on each record, and a resumed scan checks again the files whose record was made with
    another fingerprint: a new detector, trust store or revocation must not leave old verdicts standing.
    """
    from radproof import __version__
    from radproof.detect.detector import detector_folder

    digest = hashlib.sha256(__version__.encode() + b"\0")
    digest.update(settings.model_dump_json(exclude={"scan"}).encode() + b"\0")
    # Trust anchors and revocation lists: a certificate revoked since the last run must not stay authentic.
    trust_files = [*settings.trust.ca, *settings.trust.crl, *settings.trust.tsa]
    trust_files += [Path(ca).parent / "crl.pem" for ca in settings.trust.ca]
    for path in trust_files:
        try:
            digest.update(str(path).encode() + b"\0" + Path(path).read_bytes())
        except OSError:
            digest.update(str(path).encode() + b"\0absent")
    base = detector_folder(settings.detector.model)
    # The calibration (JSON) and the network (ONNX) decide the detector's verdicts.
    for path in sorted([*base.glob("*.json"), *base.glob("*.onnx")]):
        try:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        except OSError:
            digest.update(path.name.encode() + b"\0unreadable")
    return digest.hexdigest()[:16]


class CheckProcessor:
    """The full check as a scan's per-file function (picklable: it carries settings, not loaded keys)."""

    def __init__(self, settings: Settings, *, passphrase: bytes | None = None, previews: bool | None = None) -> None:
        self.settings = settings
        self.passphrase = passphrase
        self.previews = settings.scan.previews if previews is None else previews
        #: Stamped on every record (``checked_with``); see :func:`checks_fingerprint`.
        self.fingerprint = checks_fingerprint(settings)
        # Fail early, in the caller's process, on a bad trust anchor or key.
        self._cache_key = hashlib.sha256(settings.model_dump_json().encode() + b"\0" + (passphrase or b"")).hexdigest()
        self.layers()

    def layers(self) -> Layers:
        with _CACHE_LOCK:
            found = _CACHE.get(self._cache_key)
            if found is None:
                found = Layers.from_settings(self.settings, passphrase=self.passphrase)
                _CACHE[self._cache_key] = found
            return found

    def __call__(self, data: bytes, item: ScanItem) -> tuple[dict[str, Any], dict[str, bytes]]:
        gathered = gather(data, item.locator, self.layers())
        return gathered.record(), (previews(gathered) if self.previews else {})


def check_file(path: str | Path, layers: Layers, *, max_bytes: int | None = None) -> Gathered:
    """Gather and check one local file (what ``radproof check`` does per argument)."""
    from radproof.fileio import read_input_bytes

    return gather(read_input_bytes(path, limit=max_bytes), str(path), layers)
