"""A scan's per-file function: check one image through :class:`radproof.pipeline.Checker`, make its previews.

:class:`CheckProcessor` travels to worker processes (it carries settings, not loaded keys) and
builds one :class:`~radproof.pipeline.Checker` per process; :func:`previews` draws the thumbnail,
heatmap and tamper overlay the HTML report shows.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from radproof.check import Verdict
from radproof.config import Settings
from radproof.pipeline import Checker
from radproof.scan.discover import ScanItem


def previews(verdict: Verdict) -> dict[str, bytes]:
    """Thumbnail, detector heatmap and tamper overlay of one checked image, as PNG bytes (what exists)."""
    from radproof.imaging.overlays import heat_overlay, png, tamper_overlay
    from radproof.report.images import thumbnail

    if verdict.image is None:
        return {}
    gray = thumbnail(verdict.image)
    out = {"thumb": png(gray)}
    ev = verdict.evidence
    heat = ev.detection.heatmap if ev.detection is not None else None
    if heat is not None:
        out["heatmap"] = png(heat_overlay(gray, heat))
    if ev.watermark is not None and ev.watermark.tampered_blocks:
        drawn = tamper_overlay(
            gray,
            ev.watermark.tampered_blocks,
            untagged=ev.watermark.unprotected_blocks,
            image_shape=verdict.image.shape,
        )
        out["tamper"] = png(drawn)
    return out


# One checker per worker process, not one per file (certificates, keys, the model).
_CACHE: dict[str, Checker] = {}
_CACHE_LOCK = threading.Lock()


def checks_fingerprint(settings: Settings) -> str:
    """A short digest of everything that decides a check's verdict.

    The radproof version, every setting but the ``[scan]``, ``[gateway]`` and ``[audit]`` sections
    (workers, batch sizes, the gateway's network and audit settings change no verdict), the trust
    anchors and CRLs as they are now, and the detector files in use. A scan stamps it on each record, and a resumed
    scan checks again the files whose record was made with another fingerprint: a new detector,
    trust store or revocation must not leave old verdicts standing.
    """
    from radproof import __version__
    from radproof.detect.detector import detector_folder

    digest = hashlib.sha256(__version__.encode() + b"\0")
    digest.update(settings.model_dump_json(exclude={"scan", "gateway", "audit"}).encode() + b"\0")
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
        self.checker()

    def checker(self) -> Checker:
        """This process's checker for these settings (built on first use)."""
        with _CACHE_LOCK:
            found = _CACHE.get(self._cache_key)
            if found is None:
                found = Checker.from_settings(self.settings, passphrase=self.passphrase)
                _CACHE[self._cache_key] = found
            return found

    def __call__(self, data: bytes, item: ScanItem) -> tuple[dict[str, Any], dict[str, bytes]]:
        verdict = self.checker().check_bytes(data, name=item.locator)
        return dict(verdict.to_dict()), (previews(verdict) if self.previews else {})
