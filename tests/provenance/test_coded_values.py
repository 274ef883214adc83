"""The verifier's coded values (status, role, integrity, trust time, revocation) are enums, checked when made."""

from __future__ import annotations

import json

import pytest

from radproof.provenance import Role, SignatureReport, VerificationResult
from radproof.provenance.trust import Revocation
from radproof.provenance.verifier import Integrity, SignatureStatus


def _report(**changes: object) -> SignatureReport:
    fields: dict[str, object] = {
        "signer": "Alice",
        "role": "technologist",
        "purpose": "source",
        "datetime": None,
        "timestamp": None,
        "valid": True,
        "trusted": True,
        "reason": None,
        "integrity": "intact",
        "revocation": "good",
    }
    fields.update(changes)
    return SignatureReport(**fields)  # type: ignore[arg-type]


def test_reports_convert_text_to_the_enums_and_write_plain_text_back() -> None:
    sig = _report()
    assert sig.role is Role.TECHNOLOGIST and sig.integrity is Integrity.INTACT
    assert sig.revocation is Revocation.GOOD
    result = VerificationResult("x.dcm", "valid", (sig,))
    assert result.status is SignatureStatus.VALID and result.passed
    out = result.to_dict()
    assert out["status"] == "valid" and type(out["status"]) is str
    assert out["signatures"][0]["role"] == "technologist" and type(out["signatures"][0]["role"]) is str
    json.dumps(out)  # nothing but JSON types


@pytest.mark.parametrize(
    ("field", "value"), [("role", "nurse"), ("integrity", "fine"), ("revocation", "maybe"), ("trust_time_source", "x")]
)
def test_an_unknown_coded_value_is_refused_where_the_report_is_made(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=value):
        _report(**{field: value})


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="mostly"):
        VerificationResult(None, "mostly")  # type: ignore[arg-type]
    assert VerificationResult(None, "unsigned").status is SignatureStatus.UNSIGNED
