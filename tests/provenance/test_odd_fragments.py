"""An odd-length encapsulated fragment is hashed with its pad byte inside the same item."""

from __future__ import annotations

import struct

from radproof.provenance import dicom_signature as stream

ITEM_TAG = struct.pack("<HH", 0xFFFE, 0xE000)


def _item(data: bytes) -> bytes:
    return ITEM_TAG + struct.pack("<I", len(data)) + data


def test_odd_fragment_padded_within_its_item() -> None:
    value = _item(b"") + _item(b"abc") + _item(b"defg")
    pieces = b"".join(bytes(p) for p in stream._items(stream._fragments(value)))
    # Stream form: item tag (no length) + bytes; the odd fragment gets one 0x00, no extra item tag.
    assert pieces == ITEM_TAG + ITEM_TAG + b"abc\x00" + ITEM_TAG + b"defg"


def test_corrupt_vr_in_signed_file_is_an_input_error(pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A VR the parser does not know (bit flip) surfaces lazily during verification: a clear error, no crash."""
    import pytest

    from radproof.errors import InputError
    from radproof.imaging.phantom import simulate
    from radproof.provenance import TrustStore, load_identity, sign_dataset, verify_file

    from .conftest import ID_PW

    ds = simulate(32, 32)
    sign_dataset(ds, load_identity(pki.tech, ID_PW))
    ds.save_as(tmp_path / "signed.dcm")
    data = bytearray((tmp_path / "signed.dcm").read_bytes())
    at = data.find(b"\x28\x00\x03\x01US")  # Pixel Representation, explicit VR
    data[at + 4 : at + 6] = b"UW"
    (tmp_path / "bad.dcm").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bad\.dcm: corrupt DICOM file"):
        verify_file(tmp_path / "bad.dcm", TrustStore.from_files(pki.ca_pem))
