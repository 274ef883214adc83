"""Provenance: signing identities, DICOM PS3.15 digital signatures, RFC 3161 timestamps, trust.

The safe recipes, with strong defaults (RSA-3072, SHA-256, keys encrypted at rest)::

    identity = load_identity("ids/alice", passphrase)
    sign_file("in.dcm", "signed.dcm", identity, purpose=Purpose.SOURCE)
    result = verify_file("signed.dcm", TrustStore.from_files("ca/ca.pem", crl="ca/crl.pem"))
    result.to_dict()  # path, status, signatures, unsigned_elements

The names below load their module on first use, so a program that only verifies does not pay for the
signing, timestamping and key-management imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from radproof.provenance.codes import MacAlgorithm, Purpose, Role
    from radproof.provenance.identity import Identity, init_ca, issue_identity, load_identity, revoke_identity
    from radproof.provenance.signer import sign_dataset, sign_file
    from radproof.provenance.timestamp import TimestampAuthority
    from radproof.provenance.trust import TrustStore
    from radproof.provenance.verifier import SignatureReport, VerificationResult, verify_dataset, verify_file

_HOMES = {
    "MacAlgorithm": "codes",
    "Purpose": "codes",
    "Role": "codes",
    "Identity": "identity",
    "init_ca": "identity",
    "issue_identity": "identity",
    "load_identity": "identity",
    "revoke_identity": "identity",
    "sign_dataset": "signer",
    "sign_file": "signer",
    "TimestampAuthority": "timestamp",
    "TrustStore": "trust",
    "SignatureReport": "verifier",
    "VerificationResult": "verifier",
    "verify_dataset": "verifier",
    "verify_file": "verifier",
}

__all__ = [
    "Identity",
    "MacAlgorithm",
    "Purpose",
    "Role",
    "SignatureReport",
    "TimestampAuthority",
    "TrustStore",
    "VerificationResult",
    "init_ca",
    "issue_identity",
    "load_identity",
    "revoke_identity",
    "sign_dataset",
    "sign_file",
    "verify_dataset",
    "verify_file",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
