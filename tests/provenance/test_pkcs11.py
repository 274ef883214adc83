"""Keys on a PKCS#11 token (SoftHSM2): issue a certificate for a token key, sign with it, verify in dcmsign."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from radproof.cli import main
from radproof.errors import KeyFileError, PassphraseError
from radproof.provenance import TrustStore, verify_file
from radproof.provenance.pkcs11_keys import Pkcs11Uri

from .conftest import CA_PW, Pki, dcmsign_verify

MODULES = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"]
PIN = "5678"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("pkcs11")
    module = next((m for m in MODULES if Path(m).exists()), None)
    if module is None or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read by the module when it initialises
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "radproof-test", "--so-pin", "1234", "--pin", PIN],
        check=True,
        capture_output=True,
    )
    return module


def test_uri_parsing(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("4321\n")
    uri = Pkcs11Uri.parse(f"pkcs11:token=My%20Token;object=alice?module-path=/lib/x.so&pin-source=file:{pin_file}")
    assert (uri.token, uri.object, uri.module_path) == ("My Token", "alice", "/lib/x.so")
    assert uri.pin() == "4321"
    assert Pkcs11Uri.parse("pkcs11:object=a?module-path=/m.so&pin-value=1").pin() == "1"
    with pytest.raises(KeyFileError, match="module-path"):
        Pkcs11Uri.parse("pkcs11:token=x")
    with pytest.raises(KeyFileError):
        Pkcs11Uri.parse("file:///x")
    with pytest.raises(PassphraseError):
        Pkcs11Uri.parse("pkcs11:?module-path=/m.so").pin()


def test_token_key_signs_and_dcmsign_verifies(
    token: str, pki: Pki, dicom_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dcmtk: str
) -> None:
    monkeypatch.setenv("RADPROOF_CA_PASSPHRASE", CA_PW.decode())
    monkeypatch.setenv("RADPROOF_PASSPHRASE", PIN)  # the token PIN through the passphrase mechanism
    uri = f"pkcs11:token=radproof-test;object=device-1?module-path={token}"
    ident = tmp_path / "device"
    rc = main(
        [
            "keys",
            "issue",
            str(ident),
            "--ca",
            str(pki.ca),
            "--name",
            "CR Reader 1",
            "--role",
            "device",
            "--pkcs11",
            uri,
            "--key-bits",
            "2048",
        ]
    )
    assert rc == 0
    assert (ident / "cert.pem").exists() and not (ident / "key.pem").exists()  # the key stays on the token
    out = tmp_path / "signed.dcm"
    rc = main(["sign", str(dicom_files["explicit"]), "-o", str(out), "--identity", str(ident), "--pkcs11", uri])
    assert rc == 0
    assert dcmsign_verify(out, pki.ca_pem, "--require-creator") == 0
    (sig,) = verify_file(out, TrustStore.from_files(pki.ca_pem)).signatures
    assert sig.ok and sig.role == "device" and sig.signer == "CR Reader 1"


def test_wrong_pin_and_wrong_certificate_are_clear(
    token: str, pki: Pki, dicom_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADPROOF_CA_PASSPHRASE", CA_PW.decode())
    monkeypatch.setenv("RADPROOF_PASSPHRASE", PIN)
    uri = f"pkcs11:token=radproof-test;object=device-2?module-path={token}"
    ident = tmp_path / "device2"
    assert (
        main(
            [
                "keys",
                "issue",
                str(ident),
                "--ca",
                str(pki.ca),
                "--name",
                "DX 2",
                "--role",
                "device",
                "--pkcs11",
                uri,
                "--key-bits",
                "2048",
            ]
        )
        == 0
    )
    out = tmp_path / "x.dcm"
    assert (
        main(
            [
                "sign",
                str(dicom_files["explicit"]),
                "-o",
                str(out),
                "--identity",
                str(ident),
                "--pkcs11",
                uri + "&pin-value=0000",
            ]
        )
        == 2
    )
    # tech's certificate with the device key: refused before signing
    assert (
        main(["sign", str(dicom_files["explicit"]), "-o", str(out), "--identity", str(pki.tech), "--pkcs11", uri]) == 2
    )
    assert not out.exists()
