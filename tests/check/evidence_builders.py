"""Small typed evidence for the rule tests: real result objects of the three layers, built by hand."""

from __future__ import annotations

from radproof.detect import Detection, Hint
from radproof.provenance import SignatureReport, VerificationResult
from radproof.provenance.trust import Revocation
from radproof.provenance.verifier import Integrity
from radproof.watermark import TamperedBlock, WatermarkReading

#: What the hand-built signed image holds: a few protected attributes and the pixel data.
PRESENT = (0x00080018, 0x00100010, 0x00100020, 0x00280010, 0x00280011, 0x7FE00010)
PIXEL_DATA = 0x7FE00010


def signature_row(
    *,
    valid: bool = True,
    trusted: bool = True,
    reason: str | None = None,
    integrity: Integrity | None = None,
    covers: tuple[int, ...] = PRESENT,
    weaknesses: tuple[str, ...] = (),
    revocation: Revocation | None = Revocation.GOOD,
    location: str | None = None,
) -> SignatureReport:
    if integrity is None:
        integrity = Integrity.INTACT if valid else Integrity.DATA_CHANGED
    return SignatureReport(
        signer="Dr. Ada Tech",
        role="technologist",
        purpose="source",
        datetime="20260101120000",
        timestamp=None,
        valid=integrity is Integrity.INTACT,
        trusted=trusted,
        reason=reason if reason is not None or integrity is Integrity.INTACT else "the signed data changed",
        integrity=integrity,
        elements_signed=covers,
        weaknesses=weaknesses,
        revocation=revocation if trusted else None,
        trust_reason=None if trusted else (reason or "issuer not in trust store"),
        location=location,
    )


def signed(
    *,
    valid: bool = True,
    trusted: bool = True,
    reason: str | None = None,
    unsigned: list[int] | None = None,
    rows: tuple[SignatureReport, ...] | None = None,
    present: tuple[int, ...] = PRESENT,
) -> VerificationResult:
    """A verification result as the verifier builds it: coverage from valid, trusted signatures only."""
    if rows is None:
        covers = tuple(t for t in present if t not in (unsigned or ()))
        rows = (signature_row(valid=valid, trusted=trusted, reason=reason, covers=covers),)
    covered = {t for r in rows if r.ok and r.top_level for t in r.elements_signed}
    status = "valid" if all(r.ok for r in rows) else "invalid"
    return VerificationResult(
        None, status, rows, tuple(t for t in present if t not in covered), present_elements=present
    )


def unsigned() -> VerificationResult:
    return VerificationResult(None, "unsigned")


def block(y: int, x: int, size: int = 32) -> TamperedBlock:
    return TamperedBlock(frame=0, row=y // size, col=x // size, y=y, x=x, height=size, width=size)


def mark(
    *,
    found: bool = True,
    confidence: float = 0.99,
    blocks: list[TamperedBlock] | None = None,
    fragile: bool = True,
    binding_ok: bool | None = True,
    header_bound: bool | None = None,
    fragile_expected: bool = False,
    content_match: bool | None = None,
) -> WatermarkReading:
    fragile = fragile and found
    return WatermarkReading(
        path=None,
        found=found,
        payload="SITE-A" if found else None,
        bit_errors=0 if found else None,
        confidence=confidence if found else 0.0,
        tampered_blocks=(blocks or []) if fragile else None,
        restorable=fragile and not blocks,
        robust_found=found,
        fragile_found=fragile,
        binding_ok=binding_ok if fragile else None,
        block_size=32 if fragile else None,
        header_bound=header_bound if fragile else None,
        fragile_expected=fragile_expected,
        content_match=content_match,
    )


def detection(verdict: str = "real", p: float | None = None, *, hints: tuple[Hint, ...] = ()) -> Detection:
    prob = p if p is not None else {"real": 0.05, "synthetic": 0.95, "uncertain": 0.5}[verdict]
    evidence = ({"name": "grain_uniformity", "value": 0.3, "reference": 0.5, "direction": "low", "weight": 0.7},)
    return Detection(None, prob, verdict, evidence, hints)
