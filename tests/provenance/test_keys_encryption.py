"""Private keys at rest: what radproof writes, what it reads (OpenSSL- and DCMTK-usable keys), certificates, CRL."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from radproof.cli import main
from radproof.errors import KeyFileError, PassphraseError
from radproof.provenance import Role, TrustStore, init_ca, issue_identity, load_identity, sign_file, verify_file
from radproof.provenance.codes import DEFAULT_RSA_BITS
from radproof.provenance.identity import (
    DOCUMENT_SIGNING,
    FileKey,
    KeyEncryption,
    import_identity,
    key_file_encryption,
    load_ca,
    load_crl,
)

from .conftest import BITS, CA_PW, ID_PW, Pki, dcmsign, dcmsign_verify

NEW_PW = b"radproof imports this key 1"
OSSL_PW = "openssl made me 2024!"


def _openssl(*args: str | Path) -> str:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _asn1(path: Path) -> str:
    return _openssl("asn1parse", "-in", path)


def _modulus(path: Path, password: str) -> str:
    return _openssl("rsa", "-in", path, "-passin", f"pass:{password}", "-noout", "-modulus").strip()


def _certify(key: Path, password: str, pki: Pki, out: Path) -> Path:
    """A signer certificate for an OpenSSL-made key (OpenSSL extracts the public key), issued by the test CA.

    Built here rather than with `openssl x509 -req`, which cannot backdate notBefore: dcmsign rejects a
    certificate whose notBefore is the signing second.
    """
    public = serialization.load_pem_public_key(
        _openssl("pkey", "-in", key, "-passin", f"pass:{password}", "-pubout").encode()
    )
    assert isinstance(public, rsa.RSAPublicKey)
    ca_cert, ca_key = load_ca(pki.ca, CA_PW)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OpenSSL Signer")]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )  # digitalSignature, nonRepudiation
        .sign(ca_key, hashes.SHA256())
    )
    out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out


# --- what radproof writes -----------------------------------------------------------------------------------


def test_new_keys_are_pbes2_pbkdf2_sha256_600000_aes256(pki: Pki, tmp_path: Path, openssl: str) -> None:
    issue_identity(tmp_path / "id", pki.ca, "New Key", Role.RADIOLOGIST, NEW_PW, CA_PW, key_bits=BITS)
    key = tmp_path / "id" / "key.pem"
    assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    parsed = _asn1(key)
    for part in (":PBES2", ":PBKDF2", ":hmacWithSHA256", ":aes-256-cbc", "INTEGER           :0927C0"):
        assert part in parsed  # 0x0927C0 = 600000
    assert "[HEX DUMP]:" in parsed and len(parsed.split("[HEX DUMP]:")[1].split()[0]) == 32  # 16-byte salt
    assert key_file_encryption(key) == KeyEncryption.pbkdf2(600_000)
    assert key_file_encryption(key).is_current  # type: ignore[union-attr]
    # OpenSSL opens it with the passphrase, and finds the certificate's key.
    cert = x509.load_pem_x509_certificate((tmp_path / "id" / "cert.pem").read_bytes())
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert _modulus(key, NEW_PW.decode()) == f"Modulus={public.public_numbers().n:X}"
    ident = load_identity(tmp_path / "id", NEW_PW)
    assert isinstance(ident.key, FileKey) and ident.key.encryption is not None and ident.key.encryption.is_current
    with pytest.raises(PassphraseError):
        load_identity(tmp_path / "id", b"not the passphrase at all")


def test_scrypt_keys_open_in_openssl_and_radproof(pki: Pki, tmp_path: Path, openssl: str) -> None:
    enc = KeyEncryption.scrypt()
    issue_identity(tmp_path / "id", pki.ca, "Scrypt Key", Role.DEVICE, NEW_PW, CA_PW, key_bits=BITS, encryption=enc)
    key = tmp_path / "id" / "key.pem"
    parsed = _asn1(key)
    assert ":scrypt" in parsed and ":aes-256-cbc" in parsed
    assert key_file_encryption(key) == KeyEncryption("scrypt", n=2**14, r=8, p=5)
    _openssl("pkey", "-in", key, "-passin", f"pass:{NEW_PW.decode()}", "-noout")
    assert load_identity(tmp_path / "id", NEW_PW).name == "Scrypt Key"


def test_radproof_keys_sign_in_dcmsign(pki: Pki, tmp_path: Path, dicom_files: dict[str, Path], dcmtk: str) -> None:
    ident = tmp_path / "id"
    issue_identity(ident, pki.ca, "Default Key", Role.TECHNOLOGIST, ID_PW, CA_PW, key_bits=BITS)
    out = tmp_path / "signed.dcm"
    done = dcmsign("--sign", ident / "key.pem", ident / "cert.pem", "+pw", ID_PW.decode(), dicom_files["explicit"], out)
    assert done.returncode == 0, done.stderr
    assert dcmsign_verify(out, pki.ca_pem) == 0
    (sig,) = verify_file(out, TrustStore.from_files(pki.ca_pem)).signatures
    assert sig.valid and sig.trusted and sig.signer == "Default Key"
    # dcmsign with the wrong password cannot use the key.
    bad = dcmsign("--sign", ident / "key.pem", ident / "cert.pem", "+pw", "wrong", dicom_files["explicit"], out)
    assert bad.returncode != 0


# --- keys made by OpenSSL, imported and used to sign -----------------------------------------------------------


def _plain_key(tmp_path: Path) -> Path:
    plain = tmp_path / "plain.pem"
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{BITS}", "-out", plain)
    return plain


# name -> how OpenSSL writes the key from a plain one, the scheme radproof sees, whether it is at today's strength
_CONVERSIONS = {
    "pkcs8-pbkdf2-1000000": (["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-iter", "1000000"], "pbkdf2", True),
    "pkcs8-pbkdf2-default": (["pkcs8", "-topk8", "-v2", "aes-256-cbc"], "pbkdf2", False),
    "pkcs8-scrypt": (["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-scrypt"], "scrypt", False),
    "pkcs8-v1-3des": (["pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES"], "pbes1", False),
    "traditional-rsa": (["rsa", "-aes256", "-traditional"], "legacy", False),
}


@pytest.mark.parametrize("form", sorted(_CONVERSIONS))
def test_openssl_keys_are_read_imported_and_sign_for_dcmsign(
    form: str, pki: Pki, tmp_path: Path, dicom_files: dict[str, Path], openssl: str, dcmtk: str
) -> None:
    args, scheme, current = _CONVERSIONS[form]
    plain = _plain_key(tmp_path)
    key = tmp_path / "key.pem"
    _openssl(*args, "-in", plain, "-passout", f"pass:{OSSL_PW}", "-out", key)
    if form == "traditional-rsa":
        assert b"BEGIN RSA PRIVATE KEY" in key.read_bytes() and b"Proc-Type: 4,ENCRYPTED" in key.read_bytes()
    found = key_file_encryption(key)
    assert found is not None and found.scheme == scheme and found.is_current is current
    assert (found.advice(key) is None) is current
    cert = _certify(key, OSSL_PW, pki, tmp_path / "cert.pem")

    # The OpenSSL-made pair works in dcmsign as it is...
    by_dcmsign = tmp_path / "by-dcmsign.dcm"
    done = dcmsign("--sign", key, cert, "+pw", OSSL_PW, dicom_files["explicit"], by_dcmsign)
    assert done.returncode == 0, done.stderr
    assert dcmsign_verify(by_dcmsign, pki.ca_pem) == 0

    # ...and as a radproof identity, re-encrypted at today's strength; dcmsign verifies what radproof signs.
    with pytest.raises(PassphraseError):
        import_identity(tmp_path / "bad", key, cert, NEW_PW, b"not the openssl passphrase")
    before = key.read_bytes()
    import_identity(tmp_path / "ident", key, cert, NEW_PW, OSSL_PW.encode(), chain_files=(pki.ca_pem,))
    assert key.read_bytes() == before  # the original is left alone
    ident = load_identity(tmp_path / "ident", NEW_PW)
    assert isinstance(ident.key, FileKey) and ident.key.encryption == KeyEncryption.pbkdf2()
    original = serialization.load_pem_private_key(plain.read_bytes(), None)
    assert isinstance(original, rsa.RSAPrivateKey)
    assert ident.key.private_key.private_numbers() == original.private_numbers()
    assert [c.subject for c in ident.chain] == [x509.load_pem_x509_certificate(pki.ca_pem.read_bytes()).subject]
    out = tmp_path / "by-radproof.dcm"
    sign_file(dicom_files["explicit"], out, ident)
    assert dcmsign_verify(out, pki.ca_pem) == 0
    assert dcmsign_verify(out, pki.ca_pem, "--require-creator") == 0


def test_openssl_genpkey_and_req_keys_through_the_cli(
    pki: Pki,
    tmp_path: Path,
    dicom_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    openssl: str,
    dcmtk: str,
) -> None:
    # The two ways OpenSSL's documentation makes an encrypted RSA-3072 key: genpkey, and req -newkey.
    genpkey, req = tmp_path / "genpkey.pem", tmp_path / "req.pem"
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-aes-256-cbc", "-pass",
        f"pass:{OSSL_PW}", "-out", genpkey,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:3072", "-keyout", req, "-passout", f"pass:{OSSL_PW}", "-subj", "/CN=Req Key",
        "-out", tmp_path / "req.csr",
    )  # fmt: skip
    key_pw = tmp_path / "openssl.pw"
    key_pw.write_text(OSSL_PW + "\n")
    monkeypatch.delenv("RADPROOF_IMPORT_PASSPHRASE", raising=False)
    monkeypatch.setenv("RADPROOF_PASSPHRASE", NEW_PW.decode())
    for key in (genpkey, req):
        assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        cert = _certify(key, OSSL_PW, pki, tmp_path / f"{key.stem}.cert.pem")
        ident = tmp_path / f"{key.stem}-id"
        args = ["keys", "import", str(ident), "--key", str(key), "--cert", str(cert), "--chain", str(pki.ca_pem)]
        assert main(args) == 2  # no passphrase for the OpenSSL key (stdin is not a terminal)
        assert not ident.exists()
        assert main([*args, "--key-passphrase-file", str(key_pw)]) == 0
        assert "Imported" in capsys.readouterr().out
        assert key_file_encryption(ident / "key.pem") == KeyEncryption.pbkdf2()
        assert load_identity(ident, NEW_PW).key.key_size == 3072
        out = tmp_path / f"{key.stem}.dcm"
        assert main(["sign", str(dicom_files["explicit"]), "-o", str(out), "--identity", str(ident)]) == 0
        assert dcmsign_verify(out, pki.ca_pem) == 0
    # An unencrypted OpenSSL key can be imported (radproof encrypts it); it cannot be used as it is.
    plain = _plain_key(tmp_path)
    cert = _certify(plain, "", pki, tmp_path / "plain.cert.pem")
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(plain, raw / "key.pem")
    shutil.copy(cert, raw / "cert.pem")
    with pytest.raises(KeyFileError, match="not encrypted"):
        load_identity(raw, NEW_PW)
    assert main(["keys", "import", str(tmp_path / "plain-id"), "--key", str(plain), "--cert", str(cert)]) == 0
    assert load_identity(tmp_path / "plain-id", NEW_PW).name == "OpenSSL Signer"
    # A key that does not belong to the certificate is refused.
    with pytest.raises(KeyFileError, match="does not belong"):
        import_identity(tmp_path / "mismatch", genpkey, cert, NEW_PW, OSSL_PW.encode())


# --- keys made by older radproof versions ----------------------------------------------------------------------


def test_old_keys_still_open_and_can_be_reencrypted(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    for name in ("cert.pem", "chain.pem"):
        shutil.copy(pki.tech / name, folder / name)
    # Exactly what radproof wrote before: cryptography's BestAvailableEncryption (PBKDF2, 2048 iterations).
    key = load_identity(pki.tech, ID_PW).key
    assert isinstance(key, FileKey)
    old_pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(ID_PW)
    )
    (folder / "key.pem").write_bytes(old_pem)
    loaded = load_identity(folder, ID_PW)
    assert isinstance(loaded.key, FileKey) and loaded.key.encryption is not None
    assert loaded.key.encryption.scheme == "pbkdf2" and loaded.key.encryption.iterations == 2048
    advice = loaded.key.encryption.advice(folder / "key.pem")
    assert advice is not None and "2048 iterations" in advice and "radproof keys reencrypt" in advice

    monkeypatch.setenv("RADPROOF_PASSPHRASE", ID_PW.decode())  # a weak old passphrase still opens it
    weak, strong = tmp_path / "weak.pw", tmp_path / "strong.pw"
    weak.write_text("short\n")
    strong.write_text("a much longer secret 2025\n")
    assert main(["keys", "reencrypt", str(folder / "key.pem"), "--new-passphrase-file", str(weak)]) == 2
    assert (folder / "key.pem").read_bytes() == old_pem  # untouched
    assert main(["keys", "reencrypt", str(folder / "key.pem")]) == 0
    assert "2048 iterations" in capsys.readouterr().out
    assert key_file_encryption(folder / "key.pem") == KeyEncryption.pbkdf2()
    assert load_identity(folder, ID_PW).certificate == loaded.certificate
    assert main(["keys", "reencrypt", str(folder / "key.pem"), "--new-passphrase-file", str(strong)]) == 0
    assert load_identity(folder, b"a much longer secret 2025").name == loaded.name
    with pytest.raises(PassphraseError):
        load_identity(folder, ID_PW)


def test_cli_suggests_reencrypting_an_old_ca_key(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "ca"
    shutil.copytree(pki.ca, ca)  # the shared CA key has 2048 iterations, like keys from older versions
    monkeypatch.setenv("RADPROOF_CA_PASSPHRASE", CA_PW.decode())
    monkeypatch.setenv("RADPROOF_PASSPHRASE", NEW_PW.decode())
    assert main(["keys", "issue", str(tmp_path / "x"), "--ca", str(ca), "--name", "X", "--role", "device",
                 "--key-bits", "2048"]) == 0  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert "note:" in err and "ca.key" in err and "radproof keys reencrypt" in err
    assert key_file_encryption(tmp_path / "x" / "key.pem") == KeyEncryption.pbkdf2()


# --- certificates and the CRL ----------------------------------------------------------------------------------


def test_issued_certificates_carry_the_usages_verifiers_require(tmp_path: Path) -> None:
    ca_cert = init_ca(tmp_path / "ca", "Usage CA", CA_PW, key_bits=BITS, encryption=KeyEncryption.pbkdf2(2048))
    cert = issue_identity(tmp_path / "id", tmp_path / "ca", "Dr Usage", Role.RADIOLOGIST, ID_PW, CA_PW)

    bc = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = ca_cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature and not ku.value.content_commitment

    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment  # nonRepudiation
    assert not (ku.value.key_cert_sign or ku.value.crl_sign or ku.value.key_encipherment)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not eku.critical and list(eku.value) == [DOCUMENT_SIGNING]
    assert DOCUMENT_SIGNING.dotted_string == "1.3.6.1.5.5.7.3.36"
    assert ExtendedKeyUsageOID.SERVER_AUTH not in eku.value and ExtendedKeyUsageOID.CODE_SIGNING not in eku.value

    # Defaults for new keys: RSA-3072 (codes.DEFAULT_RSA_BITS), certificates signed with SHA-256.
    assert DEFAULT_RSA_BITS == 3072
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == DEFAULT_RSA_BITS
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert isinstance(ca_cert.signature_hash_algorithm, hashes.SHA256)


def test_revoke_publishes_a_signed_crl_beside_the_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], openssl: str
) -> None:
    monkeypatch.setenv("RADPROOF_CA_PASSPHRASE", "crl test ca passphrase 1")
    monkeypatch.setenv("RADPROOF_PASSPHRASE", "crl test user passphrase 2")
    ca = tmp_path / "ca"
    assert main(["keys", "init-ca", str(ca), "--name", "CRL CA", "--key-bits", "2048"]) == 0
    serials = []
    for who in ("a", "b"):
        args = ["keys", "issue", str(tmp_path / who), "--ca", str(ca), "--name", who, "--role", "device"]
        assert main([*args, "--key-bits", "2048"]) == 0
        serials.append(x509.load_pem_x509_certificate((tmp_path / who / "cert.pem").read_bytes()).serial_number)
    before = dt.datetime.now(dt.UTC)
    assert main(["keys", "revoke", str(tmp_path / "a"), "--ca", str(ca)]) == 0
    assert main(["keys", "revoke", str(tmp_path / "b"), "--ca", str(ca)]) == 0
    assert str(ca / "crl.pem") in " ".join(capsys.readouterr().out.split())
    data = (ca / "crl.pem").read_bytes()
    assert data.startswith(b"-----BEGIN X509 CRL-----")
    crl = load_crl(ca / "crl.pem")
    ca_cert = x509.load_pem_x509_certificate((ca / "ca.pem").read_bytes())
    public = ca_cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert crl.issuer == ca_cert.subject and crl.is_signature_valid(public)
    assert sorted(r.serial_number for r in crl) == sorted(serials)  # the second revocation keeps the first
    assert crl.next_update_utc is not None and crl.last_update_utc <= before
    assert dt.timedelta(days=29) < crl.next_update_utc - before <= dt.timedelta(days=30, minutes=1)
    text = _openssl("crl", "-in", ca / "crl.pem", "-noout", "-nextupdate", "-issuer")
    assert "nextUpdate=" in text and "CRL CA" in text
