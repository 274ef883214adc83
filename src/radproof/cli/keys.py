"""`radproof keys`: a hospital CA, signing identities, revocation."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from radproof.cli._common import PASSPHRASE_ENV, console, read_passphrase

CA_PASSPHRASE_ENV = "RADPROOF_CA_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)

keys_app = typer.Typer(
    help="Signing identities: a CA (init-ca), certificates for people and devices (issue), revocation (revoke).",
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
    passphrase = read_passphrase(passphrase_file, what="the new CA key", confirm=True, env=env)
    cert = init_ca(directory, name, passphrase, key_bits=key_bits, days=days)
    console.print(
        f"CA [bold]{name}[/] created: {directory / 'ca.pem'} (valid until {cert.not_valid_after_utc:%Y-%m-%d})"
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
        passphrase = read_passphrase(passphrase_file, what=f"the new key of {name}", confirm=True)
        cert = issue_identity(directory, ca, name, parsed_role, passphrase, ca_passphrase, key_bits=key_bits, days=days)
        where = f"key in {directory / 'key.pem'} (encrypted)"
    console.print(
        f"Issued [bold]{name}[/] ({parsed_role.value}): {directory / 'cert.pem'}, {where}; "
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
    console.print(f"Revoked {directory / 'cert.pem'}; CRL written to {crl}")


def register(app: typer.Typer) -> None:
    """Add the `keys` command group."""
    app.add_typer(keys_app, name="keys")
