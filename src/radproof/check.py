"""One verdict per image from all the evidence: signatures, watermark and detector.

This module is pure: :func:`check` takes the results of the three layers (any of which may be
absent) and a :class:`Policy`, and returns a :class:`Verdict`. It reads no file and prints nothing;
the gatherer in :mod:`radproof.scan.gather` does the I/O. The rules are documented in docs/check.md.

>>> verdict = check(Evidence(path="x.dcm", detection=my_detection), Policy())
>>> verdict.verdict, verdict.passed, [r.message for r in verdict.reasons]

The evidence types are structural (:class:`SignatureEvidence`, :class:`WatermarkEvidence`,
:class:`DetectorEvidence`): ``radproof.provenance.VerificationResult``,
``radproof.watermark.WatermarkReading`` and ``radproof.detect.Detection`` satisfy them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, Required, TypedDict, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from radproof.detect.fusion import DetectorVerdict
    from radproof.detect.hints import HintSeverity
    from radproof.imaging.boxes import PixelBox
    from radproof.imaging.radiograph import Radiograph
    from radproof.provenance.codes import Role
    from radproof.provenance.verifier import SignatureStatus

__all__ = [
    "DetectorEvidence",
    "Evidence",
    "Layer",
    "Policy",
    "Reason",
    "ReasonCode",
    "SignatureEvidence",
    "SignatureInfo",
    "Verdict",
    "VerdictKind",
    "VerdictRecord",
    "WatermarkEvidence",
    "check",
    "policy_for_profile",
]


# --------------------------------------------------------------------------------------------------
# Vocabularies


class VerdictKind(StrEnum):
    """The five verdicts, from best to worst news (see docs/check.md)."""

    AUTHENTIC = "authentic"  # trusted valid signature (or intact mark), detector does not disagree
    UNVERIFIED = "unverified"  # no provenance, detector not conclusive
    SUSPECT = "suspect"  # conflicting or weak evidence; a person should look
    SYNTHETIC = "synthetic"  # declared or detected as generated
    TAMPERED = "tampered"  # signature invalid or fragile watermark broken


class Layer(StrEnum):
    """The three layers of evidence."""

    SIGNATURE = "signature"
    WATERMARK = "watermark"
    DETECTOR = "detector"


class ReasonCode(StrEnum):
    """Stable identifiers of the reasons behind a verdict (for machines; the message is for people)."""

    SIGNATURE_INVALID = "signature-invalid"
    SIGNATURE_TRUSTED = "signature-trusted"
    SIGNATURE_UNTRUSTED = "signature-untrusted"
    SIGNATURE_PARTIAL = "signature-partial"  # valid, but the pixel data or a protected attribute is not covered
    SIGNATURE_UNTRUSTED_INVALID = "untrusted-invalid-signature"  # a stranger's signature does not match
    SIGNATURE_FORGED = "signature-forged"  # not made with the key of the certificate it carries
    SIGNATURE_UNVERIFIABLE = "signature-unverifiable"  # malformed or unsupported: cannot be checked
    SIGNATURE_SUPERSEDED = "signature-superseded"  # a trusted signature no longer matches; another one covers all
    SIGNATURE_WEAK = "signature-weak-algorithm"  # legacy cryptography, refused by the policy
    SIGNATURE_LEGACY = "signature-legacy-accepted"  # legacy cryptography, allowed by a legacy policy
    SIGNATURE_ITEM = "signature-item"  # an item-level signature (inside a sequence), reported as found
    REVOCATION_UNCHECKED = "revocation-unchecked"  # no current CRL: revocation of the signer not checked
    UNSIGNED_ELEMENTS = "unsigned-elements"  # elements that no trusted signature covers
    UNSIGNED = "unsigned"
    SIGNATURE_REQUIRED = "signature-required"
    WATERMARK_TAMPERED = "watermark-tampered"
    WATERMARK_INTACT = "watermark-intact"
    WATERMARK_ROBUST_ONLY = "watermark-robust-only"
    WATERMARK_MISMATCH = "watermark-mismatch"
    WATERMARK_WEAK = "watermark-weak"
    WATERMARK_ABSENT = "watermark-absent"
    WATERMARK_FRAGILE_MISSING = "watermark-fragile-missing"  # the mark says it had a fragile layer; it is gone
    WATERMARK_HEADER_CHANGED = "watermark-header-changed"  # header attributes bound into the mark changed
    WATERMARK_COPIED = "watermark-copied"  # the robust mark does not belong to these pixels
    WATERMARK_REQUIRED = "watermark-required"
    DETECTOR_SYNTHETIC = "detector-synthetic"
    DETECTOR_REAL = "detector-real"
    DETECTOR_UNCERTAIN = "detector-uncertain"
    DECLARED_SYNTHETIC = "declared-synthetic"
    CONFLICT = "conflict"
    LAYER_ERROR = "layer-error"
    NO_EVIDENCE = "no-evidence"


# --------------------------------------------------------------------------------------------------
# What the layers hand in (structural types: the layers' own result classes satisfy them)


@runtime_checkable
class SignatureInfo(Protocol):
    """One DICOM digital signature as the verifier reports it (:class:`radproof.provenance.SignatureReport`)."""

    @property
    def signer(self) -> str | None: ...
    @property
    def role(self) -> Role | None: ...
    @property
    def datetime(self) -> str | None: ...
    @property
    def timestamp(self) -> str | None: ...
    @property
    def valid(self) -> bool: ...
    @property
    def trusted(self) -> bool: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def integrity(self) -> str: ...
    @property
    def trust_reason(self) -> str | None: ...
    @property
    def location(self) -> str | None: ...
    @property
    def elements_signed(self) -> Sequence[int]: ...
    @property
    def weaknesses(self) -> Sequence[str]: ...
    @property
    def revocation(self) -> str | None: ...


@runtime_checkable
class SignatureEvidence(Protocol):
    """Result of verifying the signatures of one file (``status``: valid | invalid | unsigned)."""

    @property
    def status(self) -> SignatureStatus: ...
    @property
    def signatures(self) -> Sequence[SignatureInfo]: ...
    @property
    def unsigned_elements(self) -> Sequence[int]: ...
    @property
    def present_elements(self) -> Sequence[int]: ...
    @property
    def unsignable_elements(self) -> Sequence[int]: ...
    def to_dict(self) -> Mapping[str, object]: ...


@runtime_checkable
class WatermarkEvidence(Protocol):
    """Result of reading the watermark of one image (:class:`radproof.watermark.WatermarkReading`)."""

    @property
    def found(self) -> bool: ...
    @property
    def confidence(self) -> float: ...
    @property
    def payload(self) -> str | None: ...
    @property
    def tampered_blocks(self) -> Sequence[PixelBox] | None: ...
    @property
    def unprotected_blocks(self) -> Sequence[PixelBox]: ...
    @property
    def fragile_found(self) -> bool: ...
    @property
    def fragile_expected(self) -> bool: ...
    @property
    def binding_ok(self) -> bool | None: ...
    @property
    def header_bound(self) -> bool | None: ...
    @property
    def content_match(self) -> bool | None: ...
    def to_dict(self) -> Mapping[str, object]: ...


@runtime_checkable
class HintInfo(Protocol):
    """A statement found in the file's metadata (:class:`radproof.detect.Hint`)."""

    @property
    def severity(self) -> HintSeverity: ...
    @property
    def message(self) -> str: ...


@runtime_checkable
class DetectorEvidence(Protocol):
    """Result of the synthetic-image detector (:class:`radproof.detect.Detection`; ``verdict``: real |
    synthetic | uncertain; ``evidence``: the cues, each with a ``name`` and a ``weight``)."""

    @property
    def synthetic_probability(self) -> float: ...
    @property
    def verdict(self) -> DetectorVerdict: ...
    @property
    def evidence(self) -> Sequence[Mapping[str, object]]: ...
    @property
    def hints(self) -> Sequence[HintInfo]: ...
    @property
    def heatmap(self) -> npt.NDArray[np.float32] | None:
        """Where the evidence sits, 0..1, over the whole frame (None for unusable inputs)."""

    def to_dict(self) -> Mapping[str, object]: ...


@dataclass(frozen=True)
class Evidence:
    """Everything known about one image. Any layer may be missing (not run) or have failed.

    Attributes
    ----------
    path
        Where the image came from (file path or URL), for the report only.
    signature, watermark, detection
        The layers' results; None when the layer was not run or failed.
    declared_synthetic
        A provenance statement that the image was generated (for example a C2PA
        ``trainedAlgorithmicMedia`` assertion or a generator's name in the header), else None.
    errors
        Layer name -> message, for layers that were asked for but could not run on this image.
    has_header
        The image came with a DICOM header (patient, geometry, display attributes) that provenance must
        vouch for as well as the pixels.
    """

    path: str | None = None
    signature: SignatureEvidence | None = None
    watermark: WatermarkEvidence | None = None
    detection: DetectorEvidence | None = None
    declared_synthetic: str | None = None
    errors: Mapping[str, str] = field(default_factory=dict)
    has_header: bool = False


# --------------------------------------------------------------------------------------------------
# Policy


_FAIL_DEFAULT = frozenset({VerdictKind.TAMPERED, VerdictKind.SYNTHETIC})


@dataclass(frozen=True)
class Policy:
    """The rules' knobs. Build one from the configuration file (``[check]``) or :func:`policy_for_profile`.

    Attributes
    ----------
    use_signature, use_watermark, use_detector
        Which layers count. A layer switched off is ignored even when its result is present.
    require_trusted_signature
        Without a valid signature from a trusted signer covering the pixels, the verdict is at best
        ``suspect`` (a PACS entrance).
    require_watermark
        Without an intact watermark, the verdict is at best ``suspect``.
    require_revocation_check
        The authenticating signature's chain must have been checked against a current CRL; a missing or
        stale CRL gives ``suspect`` (the pacs profile).
    allow_legacy_algorithms
        Signatures with legacy cryptography (MD5, SHA-1 or RIPEMD-160 MACs, RSA under 2048 bits, DSA,
        SHA-1-signed certificates) may authenticate; every reason then says so (the legacy profile).
    protected_add, protected_remove
        Tags added to, or removed from, the protected attributes that the authenticating signature must
        cover (:data:`radproof.provenance.protected.REQUIRED_TAGS`; overlays always stay protected).
    watermark_authenticates
        An intact fragile watermark alone (no signature) is enough for ``authentic``, provided it binds the
        DICOM header too. Off by default: a watermark proves pixels, not who made them.
    detector_alone_authenticates
        A detector that says ``real`` is enough for ``authentic`` without any provenance.
    detector_must_agree
        ``authentic`` needs the detector to say ``real``; ``uncertain`` gives ``suspect``.
    signature_outweighs_detector
        A trusted valid signature wins over a detector that says ``synthetic`` (``authentic`` with
        a note) instead of giving ``suspect``.
    synthetic_threshold, real_threshold
        Override the detector's own verdict: probability >= synthetic_threshold is synthetic,
        <= real_threshold is real, between is uncertain. None keeps the detector's verdict.
    min_watermark_confidence
        A watermark found with lower confidence is weak evidence (``suspect`` reason).
    fail_on
        Verdicts that count as failed (exit status 1).
    """

    use_signature: bool = True
    use_watermark: bool = True
    use_detector: bool = True
    require_trusted_signature: bool = False
    require_watermark: bool = False
    require_revocation_check: bool = False
    allow_legacy_algorithms: bool = False
    protected_add: frozenset[int] = frozenset()
    protected_remove: frozenset[int] = frozenset()
    watermark_authenticates: bool = False
    detector_alone_authenticates: bool = False
    detector_must_agree: bool = False
    signature_outweighs_detector: bool = False
    synthetic_threshold: float | None = None
    real_threshold: float | None = None
    min_watermark_confidence: float = 0.5
    fail_on: frozenset[VerdictKind] = _FAIL_DEFAULT

    def __post_init__(self) -> None:
        for name in ("synthetic_threshold", "real_threshold", "min_watermark_confidence"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if (
            self.synthetic_threshold is not None
            and self.real_threshold is not None
            and self.real_threshold >= self.synthetic_threshold
        ):
            raise ValueError("real_threshold must be below synthetic_threshold")
        if not (self.use_signature or self.use_watermark or self.use_detector):
            raise ValueError("at least one layer (signature, watermark, detector) must be used")
        object.__setattr__(self, "fail_on", frozenset(VerdictKind(v) for v in self.fail_on))
        for name in ("protected_add", "protected_remove"):
            tags = frozenset(int(t) for t in getattr(self, name))
            if any(not 0 <= t <= 0xFFFFFFFF for t in tags):
                raise ValueError(f"{name} holds a value that is not a DICOM tag")
            object.__setattr__(self, name, tags)

    def protected_tags(self) -> frozenset[int]:
        """The protected attributes of this policy (overlay and curve groups come on top)."""
        from radproof.provenance.protected import REQUIRED_TAGS

        return (REQUIRED_TAGS | self.protected_add) - self.protected_remove


#: Named presets of the policy; the configuration's ``profile`` picks one, other keys override it.
PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    # A PACS entrance: only images signed at capture by a trusted identity get in.
    "pacs": {
        "require_trusted_signature": True,
        "require_revocation_check": True,
        "fail_on": frozenset(
            {VerdictKind.TAMPERED, VerdictKind.SYNTHETIC, VerdictKind.SUSPECT, VerdictKind.UNVERIFIED}
        ),
    },
    # Images from outside the hospital: no provenance is expected, only the detector counts.
    "detector-only": {"use_signature": False, "use_watermark": False},
    # Old archives signed with SHA-1 or short keys: accepted, and every verdict says so.
    "legacy": {"allow_legacy_algorithms": True},
}


def policy_for_profile(profile: str = "default", **overrides: Any) -> Policy:
    """The policy of a named profile (``default``, ``pacs``, ``detector-only``, ``legacy``) with overrides."""
    try:
        base = PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown check profile {profile!r}; choose one of {', '.join(PROFILES)}") from None
    return Policy(**{**base, **{k: v for k, v in overrides.items() if v is not None}})


# --------------------------------------------------------------------------------------------------
# The verdict


@dataclass(frozen=True)
class Reason:
    """One sentence of the explanation, with a stable code and the layer it comes from."""

    code: ReasonCode
    message: str
    layer: Layer | None = None

    def __post_init__(self) -> None:
        # Codes are a contract (JSON, docs/check.md): an unknown one is a bug, caught where it is made.
        object.__setattr__(self, "code", ReasonCode(self.code))
        if self.layer is not None:
            object.__setattr__(self, "layer", Layer(self.layer))

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": str(self.code),
            "layer": None if self.layer is None else str(self.layer),
            "message": self.message,
        }


@dataclass(frozen=True)
class Verdict:
    """The verdict on one image, the reasons in the order they matter, and the evidence behind it."""

    path: str | None
    verdict: VerdictKind
    reasons: tuple[Reason, ...]
    passed: bool
    evidence: Evidence = field(repr=False, compare=False)
    #: The radiograph as the layers read it (set by :class:`radproof.pipeline.Checker`; None from :func:`check`).
    image: Radiograph | None = field(default=None, repr=False, compare=False)
    #: Patient identifiers, kept only when the checker was asked to (``show_phi``).
    patient: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", VerdictKind(self.verdict))

    def to_dict(self) -> VerdictRecord:
        """The JSON Lines record (fields documented in docs/check.md)."""
        ev = self.evidence
        out: VerdictRecord = {
            "path": self.path,
            "verdict": str(self.verdict),
            "passed": self.passed,
            "reasons": [r.message for r in self.reasons],
            "reason_codes": [str(r.code) for r in self.reasons],
            "signature": _block(ev.signature),
            "watermark": _block(ev.watermark),
            "detector": _block(ev.detection),
            "declared_synthetic": ev.declared_synthetic,
            "errors": dict(ev.errors),
        }
        if self.image is not None:
            out["format"] = str(self.image.source_format)
            out["shape"] = list(self.image.shape)
        if self.patient:
            out["patient"] = dict(self.patient)
        return out


class VerdictRecord(TypedDict, total=False):
    """The fields of one checked image in JSON (``radproof check --json``, a scan's results file)."""

    path: Required[str | None]
    verdict: Required[str]
    passed: Required[bool]
    reasons: Required[list[str]]
    reason_codes: Required[list[str]]
    signature: Required[dict[str, Any] | None]
    watermark: Required[dict[str, Any] | None]
    detector: Required[dict[str, Any] | None]
    declared_synthetic: Required[str | None]
    errors: Required[dict[str, str]]
    format: str
    shape: list[int]
    patient: dict[str, str]


def _block(result: SignatureEvidence | WatermarkEvidence | DetectorEvidence | None) -> dict[str, Any] | None:
    if result is None:
        return None
    data = dict(result.to_dict())
    data.pop("path", None)  # already at the top level
    return data


# --------------------------------------------------------------------------------------------------
# The rules


class _Sig(StrEnum):
    NONE = "none"  # not checked
    UNSIGNED = "unsigned"
    ALTERED = "altered"  # a trusted signer's signed content changed: tampering
    DOUBTFUL = "doubtful"  # signatures that prove nothing, or something odd: at best suspect
    INCOMPLETE = "incomplete"  # trusted, valid, but short of what authentic needs
    UNTRUSTED = "untrusted"  # intact, signer not trusted
    TRUSTED = "trusted"  # one valid trusted signature covers everything that matters


class _Mark(StrEnum):
    NONE = "none"
    ABSENT = "absent"
    TAMPERED = "tampered"
    WEAK = "weak"
    COPIED = "copied"  # the robust mark does not belong to these pixels
    ROBUST_ONLY = "robust only"  # origin shown, integrity not (no fragile layer)
    INTACT = "intact"  # fragile layer verifies in every block


class _Det(StrEnum):
    NONE = "none"
    REAL = "real"
    SYNTHETIC = "synthetic"
    UNCERTAIN = "uncertain"


def check(evidence: Evidence, policy: Policy | None = None) -> Verdict:
    """Combine the evidence on one image into a :class:`Verdict` (rules in docs/check.md).

    In order: a trusted party's signed or marked content changed gives ``tampered``; a generation
    statement, or the detector without trusted provenance against it, gives ``synthetic``; unmet
    policy requirements, conflicts and weak or doubtful evidence give ``suspect``; one valid trusted
    signature covering the pixels and every protected attribute, with no disagreement, gives
    ``authentic``; anything else is ``unverified``. Nothing that anyone can add to a file (a
    signature, a certificate, a watermark estimated from another image) moves a verdict from failing
    to passing: such evidence can only lower a verdict, never raise it.
    """
    policy = policy or Policy()
    reasons: list[Reason] = []

    sig = _signature_state(evidence, policy, reasons)
    mark = _watermark_state(evidence, policy, reasons)
    det, p_synth = _detector_state(evidence, policy, reasons)
    signature_error = False
    for layer, message in evidence.errors.items():
        if _layer_used(layer, policy):
            reasons.append(Reason(ReasonCode.LAYER_ERROR, f"{layer} could not be checked: {message}", _layer(layer)))
            signature_error = signature_error or layer == Layer.SIGNATURE

    strong_signature = sig is _Sig.TRUSTED and not signature_error
    strong_mark = mark is _Mark.INTACT and policy.watermark_authenticates and _mark_binds_header(evidence)
    kind = _decide(evidence, policy, reasons, sig, mark, det, p_synth, strong_signature, strong_mark, signature_error)
    reasons.sort(key=lambda r: _PRIORITY.get(r.code, 50))
    return Verdict(
        path=evidence.path,
        verdict=kind,
        reasons=tuple(reasons),
        passed=kind not in policy.fail_on,
        evidence=evidence,
    )


def _decide(
    evidence: Evidence,
    policy: Policy,
    reasons: list[Reason],
    sig: _Sig,
    mark: _Mark,
    det: _Det,
    p_synth: float | None,
    strong_signature: bool,
    strong_mark: bool,
    signature_error: bool,
) -> VerdictKind:
    strong = strong_signature or strong_mark
    # 1. A trusted party's content changed: nothing else matters.
    if sig is _Sig.ALTERED or mark is _Mark.TAMPERED:
        return VerdictKind.TAMPERED

    # 2. Declared or detected as generated. Only trusted provenance can stand against the detector:
    #    a robust mark alone can be copied from another image, an untrusted signature made by anyone.
    if evidence.declared_synthetic:
        reasons.append(
            Reason(
                ReasonCode.DECLARED_SYNTHETIC, f"provenance declares a generated image: {evidence.declared_synthetic}"
            )
        )
        return VerdictKind.SYNTHETIC
    if det is _Det.SYNTHETIC:
        if not strong:
            return VerdictKind.SYNTHETIC
        if strong_signature and policy.signature_outweighs_detector:
            reasons.append(
                Reason(
                    ReasonCode.CONFLICT,
                    "the detector's synthetic score is overruled by the trusted signature (policy)",
                )
            )
        else:
            reasons.append(
                Reason(
                    ReasonCode.CONFLICT,
                    "conflict: cryptographic provenance is intact but the detector says synthetic"
                    f"{_prob(p_synth)}; have a person review the image and its origin",
                )
            )
            return VerdictKind.SUSPECT

    # 3. Policy requirements.
    unmet = False
    if policy.use_signature and policy.require_trusted_signature and not strong_signature:
        reasons.append(
            Reason(
                ReasonCode.SIGNATURE_REQUIRED,
                "policy requires one valid signature from a trusted signer covering the pixels and every "
                "protected attribute; " + _missing_signature_text(sig, signature_error),
                Layer.SIGNATURE,
            )
        )
        unmet = True
    if policy.use_watermark and policy.require_watermark and mark is not _Mark.INTACT:
        reasons.append(
            Reason(
                ReasonCode.WATERMARK_REQUIRED,
                "policy requires an intact watermark; watermark is "
                + (mark.value if mark is not _Mark.NONE else "not checked"),
                Layer.WATERMARK,
            )
        )
        unmet = True
    if unmet:
        return VerdictKind.SUSPECT

    # 4. Doubtful, weak or half-made provenance is at best suspect, whatever else holds.
    weak = (
        signature_error or sig in (_Sig.DOUBTFUL, _Sig.INCOMPLETE, _Sig.UNTRUSTED) or mark in (_Mark.WEAK, _Mark.COPIED)
    )
    if weak:
        return VerdictKind.SUSPECT
    if strong:
        if policy.use_detector and policy.detector_must_agree and det is not _Det.REAL:
            reasons.append(
                Reason(
                    ReasonCode.CONFLICT,
                    "policy requires the detector to agree, and it "
                    + ("did not run" if det is _Det.NONE else f"is {det.value}{_prob(p_synth)}"),
                    Layer.DETECTOR,
                )
            )
            return VerdictKind.SUSPECT
        return VerdictKind.AUTHENTIC

    # 5. No provenance that proves anything: the detector alone.
    if det is _Det.REAL and policy.detector_alone_authenticates:
        return VerdictKind.AUTHENTIC
    if sig in (_Sig.NONE, _Sig.UNSIGNED) and mark in (_Mark.NONE, _Mark.ABSENT) and det is _Det.NONE:
        reasons.append(Reason(ReasonCode.NO_EVIDENCE, "no provenance and no detector result for this image"))
    return VerdictKind.UNVERIFIED


# --- signatures ------------------------------------------------------------------------------------


def _signature_state(evidence: Evidence, policy: Policy, reasons: list[Reason]) -> _Sig:
    """Judge every signature on its own, then the object: which one, if any, vouches for all of it."""
    result = evidence.signature
    if not policy.use_signature or result is None:
        return _Sig.NONE
    signatures = list(result.signatures)
    if result.status == "unsigned" or not signatures:
        reasons.append(Reason(ReasonCode.UNSIGNED, "not signed", Layer.SIGNATURE))
        return _Sig.UNSIGNED

    present = tuple(int(t) for t in result.present_elements)
    sorted_ = _SortedSignatures()
    for s in signatures:
        sorted_.add(s, present, policy, reasons)
    for s in sorted_.untrusted:
        reasons.append(
            Reason(
                ReasonCode.SIGNATURE_UNTRUSTED,
                f"signature by {_signer(s)}{_item_note(s)} is intact but its signer is not trusted ({s.trust_reason}); "
                "it covers nothing for this verdict",
                Layer.SIGNATURE,
            )
        )
    _report_unsigned(result, reasons)
    if sorted_.altered:
        _report_altered(sorted_.altered, superseded=bool(sorted_.complete), reasons=reasons)
        if not sorted_.complete:
            return _Sig.ALTERED
        sorted_.doubtful = True
    for s, shortfall in sorted_.shortfalls:
        code = ReasonCode.SIGNATURE_PARTIAL
        if shortfall.startswith(_WEAK_PREFIX):
            code = ReasonCode.SIGNATURE_WEAK
        elif shortfall.startswith(_REVOCATION_PREFIX):
            code = ReasonCode.REVOCATION_UNCHECKED
        reasons.append(
            Reason(code, f"valid signature by {_describe_signature(s)} (trusted), but {shortfall}", Layer.SIGNATURE)
        )
    for s in sorted_.complete:
        _report_complete(s, reasons)
    if sorted_.doubtful:
        return _Sig.DOUBTFUL
    if sorted_.complete:
        return _Sig.TRUSTED
    if sorted_.shortfalls:
        return _Sig.INCOMPLETE
    return _Sig.UNTRUSTED


@dataclass
class _SortedSignatures:
    """The signatures of one object, each in the one pile that says what it proves."""

    altered: list[SignatureInfo] = field(default_factory=list)  # a trusted signer's, over other content
    complete: list[SignatureInfo] = field(default_factory=list)  # trusted, intact, covering everything
    shortfalls: list[tuple[SignatureInfo, str]] = field(default_factory=list)  # trusted, intact, not enough
    untrusted: list[SignatureInfo] = field(default_factory=list)  # intact, from a stranger
    doubtful: bool = False  # a forged, unverifiable or stranger's broken signature is present

    def add(self, s: SignatureInfo, present: Sequence[int], policy: Policy, reasons: list[Reason]) -> None:
        """File ``s``; signatures that prove nothing about the image get their reason at once."""
        integrity = str(s.integrity)
        where = _item_note(s)
        if integrity != "intact" and not s.trusted:
            # A stranger's signature that does not hold proves nothing, in either direction.
            self.doubtful = True
            reasons.append(
                Reason(
                    ReasonCode.SIGNATURE_UNTRUSTED_INVALID,
                    f"signature by {_signer(s)}{where} is invalid ({s.reason}) and its signer is not trusted "
                    f"({s.trust_reason}): it proves nothing about the image, neither tampering nor origin",
                    Layer.SIGNATURE,
                )
            )
        elif integrity in _PROVES_CHANGE:
            self.altered.append(s)
        elif integrity == "not-signers-key":
            self.doubtful = True
            reasons.append(
                Reason(
                    ReasonCode.SIGNATURE_FORGED,
                    f"signature claiming to be by {_signer(s)}{where} was not made with that signer's key "
                    f"({s.reason}): someone other than the signer put it there",
                    Layer.SIGNATURE,
                )
            )
        elif integrity != "intact":
            self.doubtful = True
            reasons.append(
                Reason(
                    ReasonCode.SIGNATURE_UNVERIFIABLE,
                    f"signature by {_signer(s)}{where} cannot be relied on: {s.reason}",
                    Layer.SIGNATURE,
                )
            )
        elif not s.trusted:
            self.untrusted.append(s)
        elif s.location is not None:
            reasons.append(
                Reason(
                    ReasonCode.SIGNATURE_ITEM,
                    f"valid item-level signature by {_describe_signature(s)} in {s.location}: it covers that item "
                    "only, never the image",
                    Layer.SIGNATURE,
                )
            )
        else:
            shortfall = _shortfall(s, present, policy.protected_tags(), policy)
            if shortfall:
                self.shortfalls.append((s, shortfall))
            else:
                self.complete.append(s)


def _report_altered(altered: Sequence[SignatureInfo], *, superseded: bool, reasons: list[Reason]) -> None:
    for s in altered:
        reasons.append(
            Reason(
                ReasonCode.SIGNATURE_SUPERSEDED if superseded else ReasonCode.SIGNATURE_INVALID,
                f"signature by {_signer(s)}{_item_note(s)} is invalid: {s.reason}"
                + ("; another trusted signature covers the current content" if superseded else ""),
                Layer.SIGNATURE,
            )
        )


def _report_complete(s: SignatureInfo, reasons: list[Reason]) -> None:
    legacy = ""
    if s.weaknesses:
        legacy = " under the legacy-algorithms policy (" + "; ".join(s.weaknesses) + ")"
        reasons.append(
            Reason(
                ReasonCode.SIGNATURE_LEGACY,
                "legacy cryptography accepted by the policy: " + "; ".join(s.weaknesses),
                Layer.SIGNATURE,
            )
        )
    revocation = "" if str(s.revocation) == "good" else f"; revocation: {_revocation_text(s.revocation)}"
    reasons.append(
        Reason(
            ReasonCode.SIGNATURE_TRUSTED,
            f"valid signature by {_describe_signature(s)} (trusted{legacy}) covers the pixels and every "
            f"protected attribute{revocation}",
            Layer.SIGNATURE,
        )
    )


# Integrity outcomes that, for a trusted signer, mean the signed content changed (ECDSA's "mismatch" too:
# it cannot be told from a forgery, but the rule for a trusted signature that fails is tampered).
_PROVES_CHANGE = frozenset({"data-changed", "encoding-changed", "element-removed", "mismatch"})
_WEAK_PREFIX = "it relies on legacy cryptography"
_REVOCATION_PREFIX = "revocation"
_PIXEL_DATA = 0x7FE00010


def _shortfall(s: SignatureInfo, present: Sequence[int], protected: frozenset[int], policy: Policy) -> str | None:
    """What keeps a valid, trusted, top-level signature from authenticating the image (None: nothing)."""
    from radproof.provenance.protected import is_protected

    covered = set(s.elements_signed)
    missing = [t for t in present if t not in covered and is_protected(t, protected)]
    if _PIXEL_DATA not in covered:
        return "it does not cover the pixel data, so the pixels are not protected by it"
    if missing:
        return f"it does not cover {len(missing)} protected attribute(s): {_tags_text(missing)}"
    if s.weaknesses and not policy.allow_legacy_algorithms:
        return f"{_WEAK_PREFIX} ({'; '.join(s.weaknesses)}); the legacy profile can accept it"
    if policy.require_revocation_check and str(s.revocation) != "good":
        return f"{_REVOCATION_PREFIX} of its certificate was not checked: {_revocation_text(s.revocation)}"
    return None


def _report_unsigned(result: SignatureEvidence, reasons: list[Reason]) -> None:
    unsigned = [int(t) for t in result.unsigned_elements]
    if not unsigned:
        return
    unsignable = {int(t) for t in result.unsignable_elements}
    note = (
        f" ({len(unsignable)} of them cannot be signed at all: VR UN, group lengths and the like)" if unsignable else ""
    )
    reasons.append(
        Reason(
            ReasonCode.UNSIGNED_ELEMENTS,
            f"{len(unsigned)} element(s) not covered by any trusted signature{note}: {_tags_text(unsigned)}",
            Layer.SIGNATURE,
        )
    )


def _revocation_text(state: object) -> str:
    return {
        "good": "checked against a current CRL",
        "revoked": "revoked",
        "stale": "the CRL is out of date",
        "unknown": "no CRL of the issuer was available",
        "None": "not checked (no trust store)",
    }.get(str(state), str(state))


def _tags_text(tags: Sequence[int]) -> str:
    from radproof.provenance.verifier import describe_tag

    return ", ".join(describe_tag(t) for t in tags)


def _item_note(s: SignatureInfo) -> str:
    return "" if s.location is None else f" (item-level, in {s.location})"


# --- watermark -------------------------------------------------------------------------------------


def _mark_binds_header(evidence: Evidence) -> bool:
    """A fragile mark may vouch for a DICOM object only if it binds the header attributes too."""
    if not evidence.has_header:
        return True
    return evidence.watermark is not None and evidence.watermark.header_bound is True


def _watermark_state(evidence: Evidence, policy: Policy, reasons: list[Reason]) -> _Mark:
    result = evidence.watermark
    if not policy.use_watermark or result is None:
        return _Mark.NONE
    blocks = result.tampered_blocks
    n_blocks = len(blocks) if blocks is not None else 0
    payload = result.payload
    about = f" (payload {payload!r})" if payload else ""
    if result.content_match is False:
        reasons.append(
            Reason(
                ReasonCode.WATERMARK_COPIED,
                f"a robust watermark{about} is present but does not belong to these pixels: it was copied "
                "from another image or the image was replaced; it counts for nothing",
                Layer.WATERMARK,
            )
        )
        return _Mark.COPIED
    if result.found and blocks:
        where = describe_blocks(blocks)
        reasons.append(
            Reason(
                ReasonCode.WATERMARK_TAMPERED,
                f"fragile watermark broken in {n_blocks} block{'s' if n_blocks != 1 else ''}{where}: "
                "those pixels changed after marking",
                Layer.WATERMARK,
            )
        )
        return _Mark.TAMPERED
    fragile = result.fragile_found
    if result.fragile_expected and not fragile:
        if result.found:
            reasons.append(
                Reason(
                    ReasonCode.WATERMARK_FRAGILE_MISSING,
                    f"the robust watermark{about} says a fragile layer was embedded, but it is gone: the "
                    "pixels were rewritten after marking (a lossy export or an edit; which one, the mark "
                    "cannot tell)",
                    Layer.WATERMARK,
                )
            )
            return _Mark.WEAK
        reasons.append(
            Reason(
                ReasonCode.WATERMARK_FRAGILE_MISSING,
                "the header says the image was marked with a fragile layer, but no mark verifies under this key",
                Layer.WATERMARK,
            )
        )
        return _Mark.WEAK
    if not result.found:
        reasons.append(Reason(ReasonCode.WATERMARK_ABSENT, "no watermark found", Layer.WATERMARK))
        return _Mark.ABSENT
    confidence = float(result.confidence)
    if confidence < policy.min_watermark_confidence:
        reasons.append(
            Reason(
                ReasonCode.WATERMARK_WEAK,
                f"watermark found only weakly: confidence {confidence:.2f} is below "
                f"{policy.min_watermark_confidence:.2f}{about}; the image may have been processed",
                Layer.WATERMARK,
            )
        )
        return _Mark.WEAK
    if fragile and result.binding_ok is False:
        reasons.append(
            Reason(
                ReasonCode.WATERMARK_MISMATCH,
                f"fragile watermark verifies but is bound to other pixels or another instance UID{about}; "
                "it may have been copied from another image",
                Layer.WATERMARK,
            )
        )
        return _Mark.WEAK
    if not fragile:
        reasons.append(
            Reason(
                ReasonCode.WATERMARK_ROBUST_ONLY,
                f"robust watermark found{about}, confidence {confidence:.2f}: a hint of origin, not proof (a "
                "robust mark can be estimated and copied); without the fragile layer the pixels are not proven "
                "unaltered",
                Layer.WATERMARK,
            )
        )
        return _Mark.ROBUST_ONLY
    if result.header_bound is False:
        reasons.append(
            Reason(
                ReasonCode.WATERMARK_HEADER_CHANGED,
                f"fragile watermark intact{about}, but header attributes bound into it (identity, geometry, "
                "display) changed after marking",
                Layer.WATERMARK,
            )
        )
        return _Mark.WEAK
    untagged = result.unprotected_blocks
    if untagged and result.binding_ok is not True:
        reasons.append(
            Reason(
                ReasonCode.WATERMARK_WEAK,
                f"fragile watermark intact, but {len(untagged)} block{'s' if len(untagged) != 1 else ''} carry no "
                f"tag{describe_blocks(untagged)} and the binding record could not confirm them{about}",
                Layer.WATERMARK,
            )
        )
        return _Mark.WEAK
    covered = f"; {len(untagged)} untagged block(s) confirmed by the binding record" if untagged else ""
    header = ""
    if evidence.has_header and result.header_bound is not True:
        header = "; it does not bind the DICOM header, so it vouches for the pixels only"
    reasons.append(
        Reason(
            ReasonCode.WATERMARK_INTACT,
            f"fragile watermark intact in every block{about}{covered}: the pixels are unchanged since marking"
            f"{header}; a watermark does not say who made the image",
            Layer.WATERMARK,
        )
    )
    return _Mark.INTACT


def _detector_state(evidence: Evidence, policy: Policy, reasons: list[Reason]) -> tuple[_Det, float | None]:
    result = evidence.detection
    if not policy.use_detector or result is None:
        return _Det.NONE, None
    p = float(result.synthetic_probability)
    if policy.synthetic_threshold is not None and p >= policy.synthetic_threshold:
        state = _Det.SYNTHETIC
    elif policy.real_threshold is not None and p <= policy.real_threshold:
        state = _Det.REAL
    elif policy.synthetic_threshold is not None or policy.real_threshold is not None:
        own = str(result.verdict)
        # A threshold given on one side only keeps the detector's verdict on the other side.
        if policy.synthetic_threshold is None and own == "synthetic":
            state = _Det.SYNTHETIC
        elif policy.real_threshold is None and own == "real":
            state = _Det.REAL
        else:
            state = _Det.UNCERTAIN
    else:
        own = str(result.verdict)
        state = {"real": _Det.REAL, "synthetic": _Det.SYNTHETIC}.get(own, _Det.UNCERTAIN)
    code, text = {
        _Det.SYNTHETIC: (ReasonCode.DETECTOR_SYNTHETIC, "detector says synthetic"),
        _Det.REAL: (ReasonCode.DETECTOR_REAL, "detector finds it consistent with a real radiograph"),
        _Det.UNCERTAIN: (ReasonCode.DETECTOR_UNCERTAIN, "detector is not conclusive"),
    }[state]
    top = _top_evidence(result)
    reasons.append(Reason(code, f"{text}{_prob(p)}{top}", Layer.DETECTOR))
    return state, p


# --------------------------------------------------------------------------------------------------
# Wording helpers


_PRIORITY = {
    ReasonCode.SIGNATURE_INVALID: 0,
    ReasonCode.WATERMARK_TAMPERED: 1,
    ReasonCode.WATERMARK_FRAGILE_MISSING: 1,
    ReasonCode.SIGNATURE_FORGED: 3,
    ReasonCode.SIGNATURE_UNTRUSTED_INVALID: 3,
    ReasonCode.SIGNATURE_UNVERIFIABLE: 3,
    ReasonCode.SIGNATURE_SUPERSEDED: 3,
    ReasonCode.WATERMARK_COPIED: 3,
    ReasonCode.SIGNATURE_WEAK: 8,
    ReasonCode.REVOCATION_UNCHECKED: 8,
    ReasonCode.WATERMARK_HEADER_CHANGED: 9,
    ReasonCode.SIGNATURE_LEGACY: 19,
    ReasonCode.SIGNATURE_ITEM: 24,
    ReasonCode.UNSIGNED_ELEMENTS: 26,
    ReasonCode.DECLARED_SYNTHETIC: 2,
    ReasonCode.CONFLICT: 3,
    ReasonCode.SIGNATURE_REQUIRED: 4,
    ReasonCode.WATERMARK_REQUIRED: 5,
    ReasonCode.DETECTOR_SYNTHETIC: 6,
    ReasonCode.SIGNATURE_UNTRUSTED: 7,
    ReasonCode.SIGNATURE_PARTIAL: 8,
    ReasonCode.WATERMARK_WEAK: 9,
    ReasonCode.WATERMARK_MISMATCH: 9,
    ReasonCode.LAYER_ERROR: 25,
    ReasonCode.SIGNATURE_TRUSTED: 20,
    ReasonCode.WATERMARK_INTACT: 21,
    ReasonCode.WATERMARK_ROBUST_ONLY: 21,
    ReasonCode.DETECTOR_REAL: 22,
    ReasonCode.DETECTOR_UNCERTAIN: 23,
    ReasonCode.UNSIGNED: 30,
    ReasonCode.WATERMARK_ABSENT: 31,
    ReasonCode.NO_EVIDENCE: 40,
}


def _layer_used(name: str, policy: Policy) -> bool:
    return {
        "signature": policy.use_signature,
        "watermark": policy.use_watermark,
        "detector": policy.use_detector,
    }.get(name, True)


def _layer(name: str) -> Layer | None:
    try:
        return Layer(name)
    except ValueError:
        return None


def _prob(p: float | None) -> str:
    return "" if p is None else f" (synthetic probability {p:.2f})"


def _signer(sig: SignatureInfo) -> str:
    return f"'{sig.signer}'" if sig.signer else "an unknown signer"


def _describe_signature(sig: SignatureInfo) -> str:
    parts = [_signer(sig)]
    role = sig.role
    if role:
        parts.append(f"as {role.value}")
    when = sig.timestamp or sig.datetime
    if when:
        parts.append(f"at {when}")
    return " ".join(parts)


def _missing_signature_text(sig: _Sig, signature_error: bool) -> str:
    if signature_error:
        return "the signatures could not be checked"
    return {
        _Sig.NONE: "signatures were not checked (no trust store given?)",
        _Sig.UNSIGNED: "the image is not signed",
        _Sig.UNTRUSTED: "the signer is not trusted",
        _Sig.INCOMPLETE: "the trusted signature falls short (see the reasons)",
        _Sig.DOUBTFUL: "the signatures found prove nothing (see the reasons)",
        _Sig.ALTERED: "the signature is invalid",
    }.get(sig, "none found")


def _top_evidence(result: DetectorEvidence) -> str:
    """The two cues that weigh most, by name."""
    ranked = sorted(result.evidence, key=lambda e: -abs(_weight(e)))
    names = [str(e["name"]) for e in ranked[:2] if e.get("name")]
    return f"; strongest cues: {', '.join(names)}" if names else ""


def _weight(item: Mapping[str, object]) -> float:
    value = item.get("weight")
    return float(value) if isinstance(value, int | float) else 0.0


def describe_blocks(blocks: Sequence[PixelBox]) -> str:
    """Where tampered blocks lie, in words: ', within rows 64-127, columns 0-63'."""
    if not blocks:
        return ""
    top = min(b.y for b in blocks)
    left = min(b.x for b in blocks)
    bottom = max(b.y + b.height - 1 for b in blocks)
    right = max(b.x + b.width - 1 for b in blocks)
    return f", within rows {top}-{bottom}, columns {left}-{right}"
