"""The speed-ups keep behaviour: spliced encoding is byte for byte pydicom's, caches do not change decisions,
and `radproof verify` / `radproof --version` import only what they need."""

from __future__ import annotations

import datetime as dt
import re
import struct
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from radproof.errors import InputError
from radproof.imaging.phantom import simulate
from radproof.provenance import TrustStore, load_identity, verify_dataset, verify_file
from radproof.provenance.dicom_signature import DEFER_SIZE
from radproof.provenance.signer import (
    dataset_bytes,
    dataset_chunks,
    open_for_verification,
    read_for_signature,
    sign_dataset,
    sign_file,
)

from .conftest import ID_PW, Pki, save_explicit_and_implicit


@pytest.fixture(scope="module")
def big_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Inputs with pixel data large enough for the spliced encoding (>= 64 KiB)."""
    root = tmp_path_factory.mktemp("big")
    ds = simulate(rows=320, cols=320, seed=5)
    explicit, implicit = save_explicit_and_implicit(ds, root)

    frames = [bytes(ds.PixelData[:70_000]), bytes(ds.PixelData[70_000:140_001])]  # the second one is odd
    paths = {"explicit": explicit, "implicit": implicit}
    for name, fragments in (("encapsulated", [frames[0], frames[1][:-1]]), ("odd-fragment", frames)):
        ds3 = pydicom.dcmread(explicit)
        ds3.file_meta.TransferSyntaxUID = pydicom.uid.RLELossless  # label only: the bytes are never decoded
        ds3.NumberOfFrames = 2
        items = [struct.pack("<HHI", 0xFFFE, 0xE000, 0)]  # empty basic offset table
        items += [struct.pack("<HHI", 0xFFFE, 0xE000, len(f)) + f for f in fragments]
        ds3.PixelData = b"".join(items)
        ds3["PixelData"].VR = "OB"
        ds3["PixelData"].is_undefined_length = True
        path = root / f"{name}.dcm"
        ds3.save_as(path, enforce_file_format=True)
        paths[name] = path
    return paths


@pytest.mark.parametrize("kind", ["explicit", "implicit", "encapsulated", "odd-fragment"])
def test_spliced_encoding_is_pydicoms_encoding(kind: str, big_files: dict[str, Path], pki: Pki, tmp_path: Path) -> None:
    identity = load_identity(pki.tech, ID_PW)
    ds = read_for_signature(big_files[kind], kind)
    sign_dataset(ds, identity)
    chunks = dataset_chunks(ds)
    assert b"".join(chunks) == dataset_bytes(ds)
    # The pixel data goes through uncopied except where the fragments had to be padded (then pydicom encodes).
    assert (len(chunks) > 1) == (kind != "odd-fragment")

    out = sign_file(big_files[kind], tmp_path / "signed.dcm", identity)
    result = verify_file(out, TrustStore.from_files(pki.ca_pem))
    assert result.passed, result


def test_shared_samples_encode_identically(shared_dicoms: list[Path], pki: Pki) -> None:
    identity = load_identity(pki.tech, ID_PW)
    for path in shared_dicoms:
        ds = read_for_signature(path, str(path))
        sign_dataset(ds, identity)
        assert b"".join(dataset_chunks(ds)) == dataset_bytes(ds), path


@pytest.mark.parametrize("kind", ["explicit", "encapsulated", "odd-fragment"])
def test_hashing_from_the_file_equals_hashing_in_memory(kind: str, pki: Pki, tmp_path: Path) -> None:
    """verify_file leaves big values in the file; the verdict must be what the in-memory path gives."""
    big = simulate(rows=400, cols=400, seed=9)  # 320 KB of pixel data: above DEFER_SIZE
    assert len(big.PixelData) > DEFER_SIZE
    src = tmp_path / "src.dcm"
    if kind != "explicit":
        fragments = [bytes(big.PixelData[:150_000]), bytes(big.PixelData[150_000 : 300_000 + (kind == "odd-fragment")])]
        big.file_meta.TransferSyntaxUID = pydicom.uid.RLELossless
        big.PixelData = b"".join(
            [struct.pack("<HHI", 0xFFFE, 0xE000, 0)]
            + [struct.pack("<HHI", 0xFFFE, 0xE000, len(f)) + f for f in fragments]
        )
        big["PixelData"].VR = "OB"
        big["PixelData"].is_undefined_length = True
    big.save_as(src, enforce_file_format=True)
    signed = tmp_path / "signed.dcm"
    if kind == "odd-fragment":  # radproof pads odd fragments when it signs; keep the odd one, as another tool might
        ds = read_for_signature(src, "src")
        sign_dataset(ds, load_identity(pki.tech, ID_PW))
        signed.write_bytes(dataset_bytes(ds))
    else:
        sign_file(src, signed, load_identity(pki.tech, ID_PW))
    with open_for_verification(signed, "signed") as (parsed, _):
        assert parsed.get_item(0x7FE00010, keep_deferred=True).value is None  # left in the file
    data = signed.read_bytes()
    pixel_at = data.index(b"\xe0\x7f\x10\x00") + 12
    variants = {
        "as signed": data,
        "pixel flipped": data[: pixel_at + 200_000]
        + bytes([data[pixel_at + 200_000] ^ 1])
        + data[pixel_at + 200_001 :],
        "cut in the pixels": data[: pixel_at + 250_000],
        "cut near the end": data[:-20],
    }
    store = TrustStore.from_files(pki.ca_pem)
    now = dt.datetime.now(dt.UTC)
    for name, variant in variants.items():
        path = tmp_path / f"{name}.dcm"
        path.write_bytes(variant)
        try:
            in_memory = verify_dataset(read_for_signature(path, str(path)), store, now=now).to_dict()
        except InputError as exc:
            with pytest.raises(InputError, match=re.escape(str(exc))):
                verify_file(path, store, now=now)
            continue
        from_file = verify_file(path, store, now=now).to_dict()
        from_file["path"] = None
        assert from_file == in_memory, name
        assert (in_memory["status"] == "valid") == (name == "as signed"), (name, in_memory)


def test_trust_decisions_are_the_same_when_cached(pki: Pki) -> None:
    store = TrustStore.from_files(pki.ca_pem, crl=pki.crl)
    now = dt.datetime.now(dt.UTC)
    tech = load_identity(pki.tech, ID_PW).certificate
    revoked = load_identity(pki.revoked, ID_PW).certificate
    rogue = load_identity(pki.rogue, ID_PW).certificate
    for _ in range(3):
        assert store.evaluate(tech, now).trusted
        decision = store.evaluate(revoked, now)
        assert not decision.trusted and "revoked" in (decision.reason or "")
        assert not store.evaluate(rogue, now).trusted


def _modules_after(args: list[str]) -> set[str]:
    code = (
        "import sys\n"
        "from radproof.cli import main\n"
        f"code = main({args!r})\n"
        "print(' '.join(sorted(sys.modules)))\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())


def test_verify_imports_only_the_verify_path(pki: Pki, dicom_files: dict[str, Path], tmp_path: Path) -> None:
    signed = sign_file(dicom_files["explicit"], tmp_path / "signed.dcm", load_identity(pki.tech, ID_PW))
    loaded = _modules_after(["verify", str(signed), "--trust", str(pki.ca_pem), "--json"])
    assert "radproof.provenance.verifier" in loaded
    unwanted = ("radproof.detect", "radproof.scan", "radproof.report", "radproof.watermark", "radproof.check")
    assert not [m for m in loaded if m.startswith(unwanted)]
    # RFC 3161 parsing and token support load only for files that carry a timestamp / use a token.
    assert not {"asn1crypto", "radproof.provenance.timestamp", "radproof.provenance.pkcs11_keys"} & loaded


def test_version_imports_no_libraries() -> None:
    loaded = _modules_after(["--version"])
    assert not {"pydicom", "numpy", "cryptography", "radproof.provenance"} & loaded
