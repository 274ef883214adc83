"""`radproof keys`, `sign` and `verify` end to end: files, passphrases, JSON contract, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from radproof.cli import main

from .conftest import dcmsign_verify


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("RADPROOF_CA_PASSPHRASE", "ca pass for st mary 7")
    monkeypatch.setenv("RADPROOF_PASSPHRASE", "user pass for alice 7")
    return tmp_path


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def test_keys_sign_verify_revoke_round_trip(
    env: Path, dicom_files: dict[str, Path], capsys: pytest.CaptureFixture[str], dcmtk: str
) -> None:
    ca, tech, rad = env / "ca", env / "tech", env / "rad"
    assert main(["keys", "init-ca", str(ca), "--name", "St Mary CA"]) == 0
    assert b"ENCRYPTED PRIVATE KEY" in (ca / "ca.key").read_bytes()
    assert (ca / "ca.key").stat().st_mode & 0o077 == 0
    assert main(["keys", "issue", str(tech), "--ca", str(ca), "--name", "Alice", "--role", "technologist"]) == 0
    assert (
        main(
            ["keys", "issue", str(rad), "--ca", str(ca), "--name", "Bob", "--role", "radiologist", "--key-bits", "2048"]
        )
        == 0
    )
    cert = x509.load_pem_x509_certificate((tech / "cert.pem").read_bytes())
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072  # the default
    assert cert.not_valid_before_utc < cert.not_valid_after_utc
    assert b"ENCRYPTED PRIVATE KEY" in (tech / "key.pem").read_bytes()
    assert (tech / "chain.pem").read_bytes() == (ca / "ca.pem").read_bytes()

    src, one, two = dicom_files["explicit"], env / "one.dcm", env / "two.dcm"
    assert main(["sign", str(src), "-o", str(one), "--identity", str(tech)]) == 0
    assert main(["sign", str(one), "-o", str(two), "--identity", str(rad), "--purpose", "approval"]) == 0
    assert dcmsign_verify(two, ca / "ca.pem") == 0
    capsys.readouterr()
    assert main(["verify", str(two), "--trust", str(ca / "ca.pem"), "--json"]) == 0
    (record,) = _json_lines(capsys.readouterr().out)
    assert set(record) >= {"path", "status", "signatures", "unsigned_elements"}
    assert record["status"] == "valid" and record["unsigned_elements"] == []
    sigs = record["signatures"]
    assert isinstance(sigs, list) and len(sigs) == 2
    assert set(sigs[0]) >= {"signer", "role", "purpose", "datetime", "timestamp", "valid", "reason", "trusted"}
    assert [(s["signer"], s["role"], s["purpose"]) for s in sigs] == [
        ("Alice", "technologist", "source"),
        ("Bob", "radiologist", "approval"),
    ]

    # revoke Bob: crl.pem next to ca.pem is read without --crl; the file now fails (exit 1)
    assert main(["keys", "revoke", str(rad), "--ca", str(ca)]) == 0
    assert (ca / "crl.pem").exists()
    capsys.readouterr()
    assert main(["verify", str(two), "--trust", str(ca / "ca.pem"), "--json"]) == 1
    (record,) = _json_lines(capsys.readouterr().out)
    assert record["status"] == "invalid"
    bob = record["signatures"][1]  # type: ignore[index]
    assert bob["valid"] is True and bob["trusted"] is False and "revoked" in bob["reason"]
    # human output names the problem
    assert main(["verify", str(two), "--trust", str(ca / "ca.pem")]) == 1
    assert "revoked" in capsys.readouterr().out


def test_exit_codes_unsigned_and_errors(
    env: Path, dicom_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ca = env / "ca"
    assert main(["keys", "init-ca", str(ca), "--name", "CA", "--key-bits", "2048"]) == 0
    capsys.readouterr()
    # an unsigned file fails "is it signed?" -> 1
    assert main(["verify", str(dicom_files["explicit"]), "--trust", str(ca / "ca.pem"), "--json"]) == 1
    (record,) = _json_lines(capsys.readouterr().out)
    assert record["status"] == "unsigned" and record["signatures"] == []
    # input errors -> 2
    assert main(["verify", str(env / "missing.dcm"), "--trust", str(ca / "ca.pem")]) == 2
    not_dicom = env / "x.dcm"
    not_dicom.write_bytes(b"hello")
    assert main(["verify", str(not_dicom), "--trust", str(ca / "ca.pem")]) == 2
    assert main(["verify", str(dicom_files["explicit"]), "--trust", str(not_dicom)]) == 2
    # sign without -o or --in-place -> 2, input untouched
    assert (
        main(
            ["keys", "issue", str(env / "t"), "--ca", str(ca), "--name", "T", "--role", "device", "--key-bits", "2048"]
        )
        == 0
    )
    before = dicom_files["explicit"].read_bytes()
    assert main(["sign", str(dicom_files["explicit"]), "--identity", str(env / "t")]) == 2
    assert (
        main(["sign", str(dicom_files["explicit"]), "-o", str(dicom_files["explicit"]), "--identity", str(env / "t")])
        == 2
    )
    assert dicom_files["explicit"].read_bytes() == before
    assert main(["keys", "issue", str(env / "u"), "--ca", str(ca), "--name", "U", "--role", "janitor"]) == 2
    # in-place when asked
    copy = env / "copy.dcm"
    copy.write_bytes(before)
    assert main(["sign", str(copy), "--in-place", "--identity", str(env / "t")]) == 0
    assert copy.read_bytes() != before
    capsys.readouterr()
    assert main(["verify", "--help"]) == 0
    assert "unsigned" in capsys.readouterr().out


def test_passphrases(env: Path, monkeypatch: pytest.MonkeyPatch, dicom_files: dict[str, Path]) -> None:
    ca_pw, id_pw = env / "ca.pw", env / "id.pw"
    ca_pw.write_text("ca from file\n")
    id_pw.write_text("id from file\n")
    monkeypatch.delenv("RADPROOF_CA_PASSPHRASE")
    monkeypatch.delenv("RADPROOF_PASSPHRASE")
    ca, who = env / "ca", env / "who"
    assert (
        main(["keys", "init-ca", str(ca), "--name", "CA", "--key-bits", "2048", "--passphrase-file", str(ca_pw)]) == 0
    )
    args = ["keys", "issue", str(who), "--ca", str(ca), "--name", "W", "--role", "device", "--key-bits", "2048"]
    # no CA passphrase available (stdin is not a terminal) -> 2
    assert main([*args, "--passphrase-file", str(id_pw)]) == 2
    # a wrong CA passphrase -> 2
    assert main([*args, "--passphrase-file", str(id_pw), "--ca-passphrase-file", str(id_pw)]) == 2
    assert main([*args, "--passphrase-file", str(id_pw), "--ca-passphrase-file", str(ca_pw)]) == 0
    out = env / "s.dcm"
    assert (
        main(
            [
                "sign",
                str(dicom_files["explicit"]),
                "-o",
                str(out),
                "--identity",
                str(who),
                "--passphrase-file",
                str(ca_pw),
            ]
        )
        == 2
    )
    assert not out.exists()
    assert (
        main(
            [
                "sign",
                str(dicom_files["explicit"]),
                "-o",
                str(out),
                "--identity",
                str(who),
                "--passphrase-file",
                str(id_pw),
            ]
        )
        == 0
    )
