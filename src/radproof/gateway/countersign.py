"""The gateway's own signature (PS3.15 A.2, Basic Digital Signatures Secure Use Profile).

Before an instance is forwarded, the gateway records what it found in a private block (verdict,
reason codes, policy profile, when, which gateway, which radproof) and signs the instance with its
device identity, purpose "Verification Signature" (CID 7007 code 5). The signature covers every
element present, the earlier signatures' elements and the new block included; the signatures already
there are kept and still verify. The archive, and anyone who reads the image later, can prove that it
passed this gateway unchanged and under which policy.
"""

from __future__ import annotations

import datetime as dt

from radproof import __version__
from radproof.check import Verdict
from radproof.provenance.codes import Purpose
from radproof.provenance.identity import Identity
from radproof.provenance.signer import dataset_chunks, read_for_signature, sign_dataset

PRIVATE_GROUP = 0x0069
PRIVATE_CREATOR = "RADPROOF GATEWAY"
# Element offsets in the private block.
VERDICT, REASONS, PROFILE, CHECKED_AT, GATEWAY, SOFTWARE = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06


def countersign(data: bytes, identity: Identity, verdict: Verdict, *, ae_title: str, profile: str) -> bytes:
    """The instance in ``data`` with the check's outcome recorded and the gateway's signature added.

    An instance a radproof gateway already signed (here: a restart between signing and queueing) is
    returned as it is.
    """
    ds = read_for_signature(data, "received instance")
    try:
        ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
        return data
    except KeyError:
        pass
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    now = dt.datetime.now(dt.UTC)
    block.add_new(VERDICT, "LO", str(verdict.verdict))
    block.add_new(REASONS, "LT", " ".join(str(r.code) for r in verdict.reasons)[:10240])
    block.add_new(PROFILE, "LO", profile[:64])
    block.add_new(CHECKED_AT, "DT", now.strftime("%Y%m%d%H%M%S.%f+0000"))
    block.add_new(GATEWAY, "LO", ae_title)
    block.add_new(SOFTWARE, "LO", f"radproof {__version__}")
    sign_dataset(ds, identity, Purpose.APPROVAL, now=now)
    return b"".join(bytes(chunk) for chunk in dataset_chunks(ds))
