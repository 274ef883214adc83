"""The minimum passphrase strength for new secrets, and where the command line applies it."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from radproof.cli import main
from radproof.passphrase import MIN_LENGTH, WeakPassphraseError, check_new_passphrase, weakness
from radproof.provenance import Role, issue_identity, load_identity

from .conftest import CA_PW, Pki

STRONG = "tulip granite seven harbour"


@pytest.mark.parametrize(
    ("passphrase", "reason"),
    [
        ("user pass", "9 characters"),
        ("Sh0rt!pass", "10 characters"),
        ("Password2024!", "common password"),
        ("radiology123456", "common password"),
        ("aaaaaaaaaaaaaaaa", "only 1 different"),
        ("xk9Qxk9Qxk9Qxk9Q", "only 4 different"),
        ("abcdefghijklmnop", "repeats or sequences"),
        ("qwertyuiop123456", "repeats or sequences"),
        ("hospitalradiology2024", "common words"),
    ],
)
def test_weak_passphrases_are_named_with_the_reason(passphrase: str, reason: str) -> None:
    assert reason in (weakness(passphrase) or "")
    with pytest.raises(WeakPassphraseError) as info:
        check_new_passphrase(passphrase.encode())
    message = str(info.value)
    assert "\n" not in message and f"at least {MIN_LENGTH} characters" in message and reason in message


@pytest.mark.parametrize(
    "passphrase",
    [STRONG, "ca from file", "Tr0ub4dor&3xyz", "purple staple horse", "zebra-tango-lamp-9", "éléphant rosé 42"],
)
def test_reasonable_passphrases_pass(passphrase: str) -> None:
    assert weakness(passphrase) is None
    check_new_passphrase(passphrase.encode())


def test_random_strings_pass() -> None:
    # What the demo and a password manager make: 24 random URL-safe characters.
    assert all(weakness(secrets.token_urlsafe(18)) is None for _ in range(2000))


def test_new_secrets_refuse_a_weak_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pki: Pki
) -> None:
    monkeypatch.delenv("RADPROOF_CA_PASSPHRASE", raising=False)
    monkeypatch.setenv("RADPROOF_PASSPHRASE", "letmein2024")
    ca = tmp_path / "ca"
    assert main(["keys", "init-ca", str(ca), "--name", "CA", "--key-bits", "2048"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "passphrase too weak" in err and "at least 12 characters" in err
    assert not (ca / "ca.key").exists()

    monkeypatch.setenv("RADPROOF_CA_PASSPHRASE", CA_PW.decode())  # an existing key: any passphrase opens it
    who = tmp_path / "who"
    assert main(["keys", "issue", str(who), "--ca", str(pki.ca), "--name", "W", "--role", "device"]) == 2
    assert "passphrase too weak" in capsys.readouterr().err and not who.exists()

    monkeypatch.setenv("RADPROOF_WATERMARK_PASSPHRASE", "aaaaaaaaaaaaaaaa")
    assert main(["watermark", "keygen", str(tmp_path / "wm.key")]) == 2
    assert "only 1 different" in capsys.readouterr().err and not (tmp_path / "wm.key").exists()

    monkeypatch.setenv("RADPROOF_WATERMARK_PASSPHRASE", STRONG)
    assert main(["watermark", "keygen", str(tmp_path / "wm.key")]) == 0


def test_existing_keys_with_weak_passphrases_still_open(
    pki: Pki, tmp_path: Path, dicom_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Made through the library (which does not hold callers to the rule), as older versions allowed.
    issue_identity(tmp_path / "old", pki.ca, "Old Key", Role.TECHNOLOGIST, b"weak", CA_PW, key_bits=2048)
    assert load_identity(tmp_path / "old", b"weak").name == "Old Key"
    monkeypatch.setenv("RADPROOF_PASSPHRASE", "weak")
    out = tmp_path / "s.dcm"
    assert main(["sign", str(dicom_files["explicit"]), "-o", str(out), "--identity", str(tmp_path / "old")]) == 0
    assert out.exists()
