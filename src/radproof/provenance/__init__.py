"""Provenance: signing identities, DICOM PS3.15 digital signatures, RFC 3161 timestamps, trust.

The safe recipes, with strong defaults (RSA-3072, SHA-256, keys encrypted at rest)::

    identity = load_identity("ids/alice", passphrase)
    sign_file("in.dcm", "signed.dcm", identity, purpose=Purpose.SOURCE)
    result = verify_file("signed.dcm", TrustStore.from_files("ca/ca.pem", crl="ca/crl.pem"))
    result.to_dict()  # path, status, signatures, unsigned_elements
"""

from radproof.provenance.codes import MacAlgorithm, Purpose, Role
from radproof.provenance.identity import (
    Identity,
    init_ca,
    issue_identity,
    load_identity,
    revoke_identity,
)
from radproof.provenance.signer import sign_dataset, sign_file
from radproof.provenance.trust import TrustStore
from radproof.provenance.verifier import SignatureReport, VerificationResult, verify_dataset, verify_file

__all__ = [
    "Identity",
    "MacAlgorithm",
    "Purpose",
    "Role",
    "SignatureReport",
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
