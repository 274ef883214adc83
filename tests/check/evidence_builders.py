"""Small typed evidence for the rule tests: real result objects of the three layers, built by hand."""

from __future__ import annotations

from radproof.detect import Detection, Hint
from radproof.provenance import SignatureReport, VerificationResult
from radproof.watermark import TamperedBlock, WatermarkReading


def signature_row(*, valid: bool = True, trusted: bool = True, reason: str | None = None) -> SignatureReport:
    return SignatureReport(
        signer="Dr. Ada Tech",
        role="technologist",
        purpose="source",
        datetime="20260101120000",
        timestamp=None,
        valid=valid,
        trusted=trusted,
        reason=reason,
    )


def signed(
    *, valid: bool = True, trusted: bool = True, reason: str | None = None, unsigned: list[str] | None = None
) -> VerificationResult:
    # The verifier reports "invalid" unless every signature is valid and trusted.
    status = "valid" if valid and trusted else "invalid"
    return VerificationResult(
        None, status, (signature_row(valid=valid, trusted=trusted, reason=reason),), tuple(unsigned or ())
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
    )


def detection(verdict: str = "real", p: float | None = None, *, hints: tuple[Hint, ...] = ()) -> Detection:
    prob = p if p is not None else {"real": 0.05, "synthetic": 0.95, "uncertain": 0.5}[verdict]
    evidence = ({"name": "grain_uniformity", "value": 0.3, "reference": 0.5, "direction": "low", "weight": 0.7},)
    return Detection(None, prob, verdict, evidence, hints)
