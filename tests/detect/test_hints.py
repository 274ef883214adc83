"""Metadata hints are listed apart from the pixel score; a C2PA AI declaration is decisive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radproof.detect import detect, detect_file
from radproof.detect.hints import blockiness, c2pa_hints, collect_hints
from radproof.detect.lab.perturbations import PERTURBATIONS
from radproof.imaging import load_bytes
from radproof.imaging.radiograph import Radiograph

from .conftest import chest_like, png_bytes


def test_secondary_capture_and_8_bit_dx_are_flagged(array_image: Radiograph) -> None:
    wrapped = PERTURBATIONS["secondary_capture"](array_image)
    names = {h.name for h in collect_hints(wrapped)}
    assert {"secondary_capture", "low_bit_depth", "no_exposure_data", "no_detector_data"} <= names


def test_phantom_header_is_consistent(phantom: Radiograph) -> None:
    names = {h.name for h in collect_hints(phantom)}
    assert "phantom" in names
    assert not names & {"secondary_capture", "low_bit_depth", "no_exposure_data", "malformed_uid"}


def test_generator_size_is_a_hint_not_a_score() -> None:
    pixels = chest_like(512, seed=1)
    data = png_bytes(pixels)
    image = load_bytes(data)
    result = detect(image, data=data)
    assert any(h.name == "generator_size" for h in result.hints)
    # The pixel score ignores the hint: the same pixels at another size-neutral path score the same.
    plain = detect(Radiograph(pixels=pixels, bits_stored=8))
    assert result.synthetic_probability == pytest.approx(plain.synthetic_probability)


def test_c2pa_marker_without_the_library_is_suspicious_not_decisive() -> None:
    data = b"\x89PNG....jumb....c2pa....http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    hints = c2pa_hints(data, None)
    assert [h.severity for h in hints] == ["suspicious"]


def _c2pa_signed_png(pixels: np.ndarray, source_type: str) -> bytes:
    """A PNG with a real C2PA manifest (ES256, throw-away test chain) declaring ``source_type``."""
    import datetime
    import io
    import json

    c2pa = pytest.importorskip("c2pa", reason="c2pa-python is optional (pip install radproof[c2pa])")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("test root")).issuer_name(name("test root"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(name("test generator")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, pem, None))
    manifest = {
        "claim_generator_info": [{"name": "test-generator", "version": "1.0"}],
        "title": "x.png",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": source_type}]},
            }
        ],
    }
    out = io.BytesIO()
    with c2pa.Builder(json.dumps(manifest)) as builder:
        builder.sign(signer, "image/png", io.BytesIO(png_bytes(pixels)), out)
    return out.getvalue()


IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def test_c2pa_ai_declaration_is_decisive_and_leaves_the_pixel_score_alone() -> None:
    pixels = chest_like(300, seed=4)
    data = _c2pa_signed_png(pixels, IPTC + "trainedAlgorithmicMedia")
    marked = detect(load_bytes(data), data=data)
    plain = detect(Radiograph(pixels=pixels, bits_stored=8))
    decisive = [h for h in marked.hints if h.severity == "decisive"]
    assert [h.name for h in decisive] == ["c2pa_ai_generated"]
    assert "test-generator" in decisive[0].message
    assert marked.verdict == "synthetic"
    assert marked.synthetic_probability == pytest.approx(plain.synthetic_probability)


def test_c2pa_camera_capture_is_only_information() -> None:
    data = _c2pa_signed_png(chest_like(300, seed=4), IPTC + "digitalCapture")
    hints = detect(load_bytes(data), data=data).hints
    assert [(h.name, h.severity) for h in hints if h.name.startswith("c2pa")] == [("c2pa", "info")]


def test_blockiness_sees_jpeg_history() -> None:
    import io

    from PIL import Image

    pixels = chest_like(256, noise=4.0)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=30)
    buf.seek(0)
    jpeg = np.asarray(Image.open(buf))
    assert blockiness(jpeg) > 1.25 > blockiness(pixels)


def test_a_file_named_for_another_format_is_reported_not_scored(tmp_path: Path) -> None:
    data = png_bytes(chest_like(300, seed=2))
    named = {"ok.png": data, "renamed.jpg": data, "RENAMED.DCM": data, "no-suffix": data, "other.bin": data}
    results = {}
    for name, blob in named.items():
        path = tmp_path / name
        path.write_bytes(blob)
        results[name] = detect_file(path)
    renamed = {name for name, r in results.items() if any(h.name == "renamed_file" for h in r.hints)}
    assert renamed == {"renamed.jpg", "RENAMED.DCM"}
    message = next(h.message for h in results["renamed.jpg"].hints if h.name == "renamed_file")
    assert "PNG" in message and ".jpg" in message
    # Only a hint: the pixels score the same whatever the name.
    assert len({r.synthetic_probability for r in results.values()}) == 1
