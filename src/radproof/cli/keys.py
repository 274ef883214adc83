"""`radproof keys`: a hospital CA, signing identities, revocation, importing and re-encrypting keys."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from radproof.cli._common import PASSPHRASE_ENV, console, err_console, read_passphrase, shown
from radproof.passphrase import check_new_passphrase

CA_PASSPHRASE_ENV = "RADPROOF_CA_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
IMPORT_PASSPHRASE_ENV = "RADPROOF_IMPORT_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)

keys_app = typer.Typer(
    help="Signing identities: a CA (init-ca), certificates for people and devices (issue), revocation (revoke), "
    "keys made elsewhere (import), stronger encryption for old keys (reencrypt).",
    no_args_is_help=True,
)

_PASSPHRASE_FILE = typer.Option(
    None, "--passphrase-file", help=f"Read the key passphrase from this file (else ${PASSPHRASE_ENV}, else a prompt)."
)
_CA_PASSPHRASE_FILE = typer.Option(
    None,
    "--ca-passphrase-file",
    help=f"Read the CA key passphrase from this file (else ${CA_PASSPHRASE_ENV}, else ${PASSPHRASE_ENV}, "
    "else a prompt).",
)


def _ca_passphrase(path: Path | None) -> bytes:
    env = CA_PASSPHRASE_ENV if os.environ.get(CA_PASSPHRASE_ENV) else PASSPHRASE_ENV
    return read_passphrase(path, what="the CA key", env=env)


def _new_passphrase(path: Path | None, *, what: str, env: str = PASSPHRASE_ENV) -> bytes:
    """A passphrase for a new secret: read (confirmed at a prompt), then held to the strength rule."""
    passphrase = read_passphrase(path, what=what, confirm=True, env=env)
    check_new_passphrase(passphrase)
    return passphrase


def _advise(key_file: Path) -> None:
    """Suggest re-encrypting a key protected below today's strength (it still opens as before)."""
    from radproof.provenance.identity import key_file_encryption

    encryption = key_file_encryption(key_file)
    advice = encryption.advice(key_file) if encryption is not None else None
    if advice:
        err_console.print(f"[yellow]note:[/] {shown(advice)}", soft_wrap=True)


@keys_app.command("init-ca")
def init_ca_command(
    directory: Path = typer.Argument(..., help="Folder for ca.pem and ca.key (created if missing)."),
    name: str = typer.Option(..., "--name", help="The CA's name, e.g. 'St Mary Radiology CA'."),
    passphrase_file: Path | None = typer.Option(
        None,
        "--passphrase-file",
        help=f"Read the new CA key's passphrase from this file (else ${CA_PASSPHRASE_ENV}, else ${PASSPHRASE_ENV}, "
        "else a prompt).",
    ),
    key_bits: int = typer.Option(3072, "--key-bits", help="RSA key length (2048 or more)."),
    days: int = typer.Option(3650, "--days", help="Validity in days."),
) -> None:
    """Create a hospital signing CA: DIR/ca.pem (certificate) and DIR/ca.key (encrypted at rest)."""
    from radproof.provenance.identity import init_ca

    env = CA_PASSPHRASE_ENV if os.environ.get(CA_PASSPHRASE_ENV) else PASSPHRASE_ENV
    passphrase = _new_passphrase(passphrase_file, what="the new CA key", env=env)
    cert = init_ca(directory, name, passphrase, key_bits=key_bits, days=days)
    console.print(
        f"CA [bold]{shown(name)}[/] created: {shown(directory / 'ca.pem')} "
        f"(valid until {cert.not_valid_after_utc:%Y-%m-%d})"
    )


@keys_app.command("issue")
def issue_command(
    directory: Path = typer.Argument(..., help="Folder for cert.pem, key.pem and chain.pem (created if missing)."),
    ca: Path = typer.Option(..., "--ca", help="The CA folder (from keys init-ca)."),
    name: str = typer.Option(..., "--name", help="The signer's name (a person or a device)."),
    role: str = typer.Option(..., "--role", help="technologist, radiologist or device."),
    passphrase_file: Path | None = _PASSPHRASE_FILE,
    ca_passphrase_file: Path | None = _CA_PASSPHRASE_FILE,
    pkcs11: str | None = typer.Option(
        None,
        "--pkcs11",
        help="Create the key on this PKCS#11 token (RFC 7512 URI) instead of key.pem; the PIN comes from the URI "
        "or the passphrase options.",
    ),
    key_bits: int = typer.Option(3072, "--key-bits", help="RSA key length (2048 or more)."),
    days: int = typer.Option(825, "--days", help="Validity in days."),
) -> None:
    """Issue a signing certificate; the role is recorded in the certificate and shown by verify."""
    from radproof.provenance.codes import Role
    from radproof.provenance.identity import issue_identity

    parsed_role = Role.parse(role)
    ca_passphrase = _ca_passphrase(ca_passphrase_file)
    passphrase = None if pkcs11 is not None else _new_passphrase(passphrase_file, what=f"the new key of {name}")
    if pkcs11 is not None:
        from radproof.provenance.pkcs11_keys import Pkcs11Session, Pkcs11Uri

        uri = Pkcs11Uri.parse(pkcs11)
        pin = uri.pin(
            None if (uri.pin_value or uri.pin_source) else read_passphrase(passphrase_file, what="the token PIN")
        )
        with Pkcs11Session(uri, pin, rw=True) as session:
            public = session.generate_key(key_bits)
        cert = issue_identity(directory, ca, name, parsed_role, None, ca_passphrase, days=days, public_key=public)
        where = f"key on token {uri.token!r} as {uri.object!r}"
    else:
        cert = issue_identity(directory, ca, name, parsed_role, passphrase, ca_passphrase, key_bits=key_bits, days=days)
        where = f"key in {directory / 'key.pem'} (encrypted)"
    _advise(ca / "ca.key")
    console.print(
        f"Issued [bold]{shown(name)}[/] ({parsed_role.value}): {shown(directory / 'cert.pem')}, {shown(where)}; "
        f"valid until {cert.not_valid_after_utc:%Y-%m-%d}"
    )


@keys_app.command("revoke")
def revoke_command(
    directory: Path = typer.Argument(..., help="The identity folder whose certificate is revoked."),
    ca: Path = typer.Option(..., "--ca", help="The CA folder that issued it; CADIR/crl.pem is rewritten."),
    ca_passphrase_file: Path | None = _CA_PASSPHRASE_FILE,
) -> None:
    """Revoke a certificate and publish the CA's CRL (CADIR/crl.pem), which verify reads."""
    from radproof.provenance.identity import revoke_identity

    crl = revoke_identity(directory, ca, _ca_passphrase(ca_passphrase_file))
    _advise(ca / "ca.key")
    console.print(f"Revoked {shown(directory / 'cert.pem')}; CRL written to {shown(crl)}")


@keys_app.command("import")
def import_command(
    directory: Path = typer.Argument(..., help="New identity folder for cert.pem, key.pem and chain.pem."),
    key: Path = typer.Option(..., "--key", help="The private key (PEM: PKCS#8 or OpenSSL's RSA format)."),
    cert: Path = typer.Option(..., "--cert", help="Its certificate (PEM or DER)."),
    chain: list[Path] | None = typer.Option(
        None, "--chain", help="Certificates of the issuing CAs, for chain.pem (repeatable)."
    ),
    key_passphrase_file: Path | None = typer.Option(
        None,
        "--key-passphrase-file",
        help=f"Passphrase of the key being imported (else ${IMPORT_PASSPHRASE_ENV}, else a prompt; "
        "an unencrypted key needs none).",
    ),
    passphrase_file: Path | None = typer.Option(
        None,
        "--passphrase-file",
        help=f"Passphrase for the new key.pem (else ${PASSPHRASE_ENV}, else a prompt).",
    ),
) -> None:
    """Use a key and certificate made elsewhere (OpenSSL, a hospital PKI) as a radproof identity.

    The key is re-encrypted into DIR/key.pem in radproof's format; the original files are not changed.
    """
    from radproof.provenance.identity import import_identity, key_file_encryption, subject_name

    old = None
    if key_file_encryption(key) is not None:
        old = read_passphrase(key_passphrase_file, what=f"the key {key}", env=IMPORT_PASSPHRASE_ENV)
    passphrase = _new_passphrase(passphrase_file, what=f"the imported key in {directory}")
    certificate = import_identity(directory, key, cert, passphrase, old, chain_files=tuple(chain or ()))
    console.print(
        f"Imported [bold]{shown(subject_name(certificate))}[/]: {shown(directory / 'cert.pem')}, key in "
        f"{shown(directory / 'key.pem')} (encrypted); valid until {certificate.not_valid_after_utc:%Y-%m-%d}"
    )


@keys_app.command("reencrypt")
def reencrypt_command(
    key_file: Path = typer.Argument(..., help="An encrypted key file (key.pem, ca.key)."),
    passphrase_file: Path | None = typer.Option(
        None, "--passphrase-file", help=f"Its passphrase (else ${PASSPHRASE_ENV}, else a prompt)."
    ),
    new_passphrase_file: Path | None = typer.Option(
        None,
        "--new-passphrase-file",
        help="Change the passphrase too: read the new one from this file (it must meet the strength rule).",
    ),
) -> None:
    """Rewrite a key file with today's encryption (PBKDF2-HMAC-SHA256, 600000 iterations, AES-256-CBC)."""
    from radproof.provenance.identity import DEFAULT_KEY_ENCRYPTION, reencrypt_key

    passphrase = read_passphrase(passphrase_file, what=f"the key {key_file}")
    new = None
    if new_passphrase_file is not None:
        new = read_passphrase(new_passphrase_file, what=f"the key {key_file}")
        check_new_passphrase(new)
    old = reencrypt_key(key_file, passphrase, new)
    was = old.description if old is not None else "unknown encryption"
    console.print(f"Re-encrypted {shown(key_file)}: was {shown(was)}, now {DEFAULT_KEY_ENCRYPTION.description}")


def register(app: typer.Typer) -> None:
    """Add the `keys` command group."""
    app.add_typer(keys_app, name="keys")
