"""Crafted key files must not make radproof compute for hours: absurd KDF costs are refused before deriving."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import ClassVar

import pytest
from asn1crypto import algos, core, keys, pem
from cryptography.hazmat.primitives.asymmetric import rsa

from radproof.errors import KeyFileError, PassphraseError
from radproof.provenance.identity import KeyEncryption, encrypt_private_key, inspect_key_encryption, load_identity
from radproof.sealed import seal, unseal

FAST = 2.0  # seconds: far below what any refused parameter set would cost


class _Scrypt(core.Sequence):
    _fields: ClassVar[list[tuple[str, type]]] = [
        ("salt", core.OctetString),
        ("cost_parameter", core.Integer),
        ("block_size", core.Integer),
        ("parallelization_parameter", core.Integer),
    ]


def _pbes2(kdf: algos.KdfAlgorithm) -> bytes:
    info = keys.EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pbes2",
                "parameters": {
                    "key_derivation_func": kdf,
                    "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": os.urandom(16)},
                },
            },
            "encrypted_data": os.urandom(1216),
        }
    )
    return bytes(pem.armor("ENCRYPTED PRIVATE KEY", info.dump()))


def _pbkdf2(iterations: int) -> bytes:
    params = algos.Pbkdf2Params(
        {
            "salt": algos.Pbkdf2Salt(name="specified", value=os.urandom(16)),
            "iteration_count": iterations,
            "prf": {"algorithm": "sha256", "parameters": core.Null()},
        }
    )
    return _pbes2(algos.KdfAlgorithm({"algorithm": "pbkdf2", "parameters": params}))


def _scrypt(n: int, r: int, p: int) -> bytes:
    params = _Scrypt({"salt": os.urandom(16), "cost_parameter": n, "block_size": r, "parallelization_parameter": p})
    return _pbes2(algos.KdfAlgorithm({"algorithm": "1.3.6.1.4.1.11591.4.11", "parameters": params}))


def _pkcs12_pbe(iterations: int) -> bytes:
    info = keys.EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pkcs12_sha1_tripledes_3key",
                "parameters": {"salt": os.urandom(8), "iterations": iterations},
            },
            "encrypted_data": os.urandom(1216),
        }
    )
    return bytes(pem.armor("ENCRYPTED PRIVATE KEY", info.dump()))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_pbkdf2(2**31 - 1), id="pbkdf2-2^31"),
        pytest.param(_pbkdf2(10_000_001), id="pbkdf2-just-over"),
        pytest.param(_pbkdf2(10**40), id="pbkdf2-huge-integer"),
        pytest.param(_pbkdf2(0), id="pbkdf2-zero"),
        pytest.param(_pbkdf2(-5), id="pbkdf2-negative"),
        pytest.param(_scrypt(2**24, 8, 1), id="scrypt-N-2^24"),
        pytest.param(_scrypt(2**20, 8, 1), id="scrypt-1GiB"),
        pytest.param(_scrypt(2**14, 8, 2**30), id="scrypt-p-2^30"),
        pytest.param(_scrypt(3 * 2**13, 8, 1), id="scrypt-N-not-power-of-two"),
        pytest.param(_scrypt(2**14, 0, 1), id="scrypt-r-zero"),
        pytest.param(_pkcs12_pbe(2**31 - 1), id="pkcs12-2^31"),
        pytest.param(_pbkdf2(2048) + _pbkdf2(2**31 - 1), id="second-block"),
    ],
)
def test_absurd_kdf_costs_are_refused_before_deriving(data: bytes, tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="refused before deriving"):
        inspect_key_encryption(data)
    # Through an identity folder, as `radproof sign` reads it.
    (tmp_path / "key.pem").write_bytes(data)
    (tmp_path / "cert.pem").write_bytes(_self_signed(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    start = time.perf_counter()
    with pytest.raises(KeyFileError) as info:
        load_identity(tmp_path, b"any passphrase at all")
    assert time.perf_counter() - start < FAST
    assert "refused before deriving" in str(info.value) and str(tmp_path / "key.pem") in str(info.value)


def test_garbage_inside_an_encrypted_key_block_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "id"
    folder.mkdir()
    garbage = pem.armor("ENCRYPTED PRIVATE KEY", os.urandom(700))
    (folder / "key.pem").write_bytes(garbage)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "cert.pem").write_bytes(_self_signed(key))
    assert inspect_key_encryption(garbage) == KeyEncryption("unknown", cipher="unknown")
    start = time.perf_counter()
    with pytest.raises(KeyFileError):
        load_identity(folder, b"some passphrase")
    assert time.perf_counter() - start < FAST


def test_reasonable_costs_still_open(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for enc in (KeyEncryption.pbkdf2(2048), KeyEncryption.scrypt(n=2**14, r=8, p=1)):
        data = encrypt_private_key(key, b"a good passphrase 1", enc)
        assert inspect_key_encryption(data) == enc
    with pytest.raises(KeyFileError, match="refused before deriving"):
        encrypt_private_key(key, b"a good passphrase 1", KeyEncryption.scrypt(n=2**21))


def _sealed_with(n: int, r: int, p: int) -> bytes:
    doc = json.loads(seal(b"secret", b"a good passphrase 1", kind="watermark-key"))
    doc["kdf"] = {"name": "scrypt", "n": n, "r": r, "p": p}
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("n", "r", "p"), [(2**30, 8, 1), (2**20, 16, 1), (2**20, 8, 4), (2**14 + 1, 8, 1)])
def test_sealed_secrets_refuse_absurd_scrypt_costs(n: int, r: int, p: int) -> None:
    start = time.perf_counter()
    with pytest.raises(KeyFileError, match="unsafe key-derivation parameters"):
        unseal(_sealed_with(n, r, p), b"a good passphrase 1", kind="watermark-key")
    assert time.perf_counter() - start < FAST


def test_sealed_secrets_new_and_old_costs_open(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = seal(b"secret", b"a good passphrase 1", kind="watermark-key")
    assert json.loads(blob)["kdf"] == {"name": "scrypt", "n": 2**17, "r": 8, "p": 1}
    assert unseal(blob, b"a good passphrase 1", kind="watermark-key") == b"secret"
    # The header is authenticated: a file cannot be edited to a cheaper (or dearer) cost.
    doc = json.loads(blob)
    doc["kdf"]["n"] = 2**14
    with pytest.raises(PassphraseError):
        unseal(json.dumps(doc).encode(), b"a good passphrase 1", kind="watermark-key")
    # A file made before (N=2^15) still opens.
    monkeypatch.setattr("radproof.sealed._N", 2**15)
    old = seal(b"old secret", b"a good passphrase 1", kind="watermark-key")
    monkeypatch.undo()
    assert json.loads(old)["kdf"]["n"] == 2**15
    assert unseal(old, b"a good passphrase 1", kind="watermark-key") == b"old secret"


def _self_signed(key: rsa.RSAPrivateKey) -> bytes:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Garbage")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
