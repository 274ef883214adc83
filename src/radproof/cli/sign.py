"""`radproof sign` and `radproof verify`: DICOM PS3.15 digital signatures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from radproof.cli._common import Exit, console, err_console, print_json_line, read_passphrase, shown

if TYPE_CHECKING:
    from radproof.provenance.codes import Purpose
    from radproof.provenance.identity import Identity
    from radproof.provenance.signer import Timestamper
    from radproof.provenance.verifier import VerificationResult


def sign_command(
    source: Path = typer.Argument(..., help="The DICOM file to sign (left untouched unless --in-place)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Where to write the signed file."),
    identity: Path = typer.Option(..., "--identity", help="Identity folder (cert.pem, key.pem, chain.pem)."),
    purpose: str = typer.Option("source", "--purpose", help="source (capture), author or approval."),
    tsa: str | None = typer.Option(None, "--tsa", help="Add an RFC 3161 certified timestamp from this TSA URL."),
    pkcs11: str | None = typer.Option(
        None, "--pkcs11", help="Sign with a key on a PKCS#11 token (RFC 7512 URI); cert.pem comes from --identity."
    ),
    in_place: bool = typer.Option(False, "--in-place", help="Overwrite the input file (atomically)."),
    passphrase_file: Path | None = typer.Option(
        None,
        "--passphrase-file",
        help="Key passphrase (or token PIN) from this file, else $RADPROOF_PASSPHRASE, else a prompt.",
    ),
) -> None:
    """Add a digital signature (RSA, SHA-256, DICOM PS3.15 Creator RSA profile) to a DICOM file.

    Earlier signatures are kept: a technologist signs at capture (--purpose source), a radiologist
    countersigns (--purpose approval). Compressed pixel data is kept exactly as it is.
    """
    from radproof.errors import InputError
    from radproof.provenance.codes import Purpose
    from radproof.provenance.signer import sign_file

    if output is None and not in_place:
        raise InputError("give an output file with -o OUT (or --in-place to overwrite the input)")
    chosen = Purpose.from_label(purpose)
    stamp = _timestamp_authority(tsa)
    if pkcs11 is not None:
        written = _sign_with_token(source, output, identity, pkcs11, passphrase_file, chosen, stamp, in_place)
    else:
        from radproof.provenance.identity import load_identity

        ident = load_identity(identity, read_passphrase(passphrase_file, what=f"the key in {identity}"))
        written = sign_file(source, output, ident, chosen, stamp, in_place=in_place)
        console.print(f"signed {source} -> {written} as [bold]{ident.name}[/] ({chosen.label})")


def _timestamp_authority(url: str | None) -> Timestamper | None:
    """The TSA at ``url``, reached over HTTP by radproof.netio (the signer itself opens no connection)."""
    if url is None:
        return None
    from radproof.netio import post_timestamp_query
    from radproof.provenance.timestamp import TimestampAuthority

    return TimestampAuthority(url, post_timestamp_query)


def _sign_with_token(
    source: Path,
    output: Path | None,
    identity: Path,
    uri_text: str,
    passphrase_file: Path | None,
    purpose: Purpose,
    tsa: Timestamper | None,
    in_place: bool,
) -> Path:
    from radproof.errors import KeyFileError
    from radproof.provenance.identity import CERT, CHAIN, Identity, load_certificate, load_certificates
    from radproof.provenance.pkcs11_keys import Pkcs11Session, Pkcs11Uri
    from radproof.provenance.signer import sign_file

    uri = Pkcs11Uri.parse(uri_text)
    needs_pin = uri.pin_value is None and uri.pin_source is None
    pin = uri.pin(read_passphrase(passphrase_file, what="the token PIN") if needs_pin else None)
    cert = load_certificate(identity / CERT)
    chain = tuple(load_certificates(identity / CHAIN)) if (identity / CHAIN).exists() else ()
    with Pkcs11Session(uri, pin) as session:
        key = session.signing_key()
        if key.public.public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
            raise KeyFileError(f"the token key {uri.object!r} does not belong to {identity / CERT}")
        ident: Identity = Identity(certificate=cert, key=key, chain=chain)
        written = sign_file(source, output, ident, purpose, tsa, in_place=in_place)
    console.print(f"signed {source} -> {written} as [bold]{ident.name}[/] ({purpose.label}, key on token)")
    return written


def verify_command(
    files: list[Path] = typer.Argument(..., help="DICOM files to verify."),
    trust: Path = typer.Option(..., "--trust", help="CA certificate(s) to trust (PEM), e.g. CADIR/ca.pem."),
    crl: list[Path] | None = typer.Option(
        None, "--crl", help="Certificate revocation list(s); default: crl.pem next to the --trust file, if present."
    ),
    tsa_trust: list[Path] | None = typer.Option(
        None, "--tsa-trust", help="CA certificate(s) of timestamp authorities; without it, checked as of now."
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per file (JSON Lines)."),
    no_ocsp: bool = typer.Option(
        False, "--no-ocsp", help="Do not ask the OCSP responder a certificate names (CRLs only)."
    ),
) -> None:
    """Verify the digital signatures of DICOM files against a trusted CA.

    For each signature: signer, role, purpose, signing time, certified timestamp, whether the signed data
    is intact (and if not, whether the signer's key made it over other data, or not at all), and whether the
    signer is trusted (chain to --trust, key usage, not expired, not revoked, at the trusted timestamp's
    time when a TSA from --tsa-trust vouches for it, else now). Elements that no valid trusted signature
    covers are listed as unsigned elements.

    Exit status: 0 when every file has at least one signature and all are valid and trusted; 1 when any
    signature is invalid or untrusted, or a file is unsigned (with --trust given, "is it signed?" is the
    check, so an unsigned file fails it); 2 on a usage or input error (unreadable file, bad trust file).
    """
    from radproof.errors import RadproofError
    from radproof.netio import fetch_ocsp
    from radproof.provenance.batch import verify_files
    from radproof.provenance.trust import TrustStore

    store = TrustStore.from_files(
        trust, crl=list(crl) if crl else None, tsa=list(tsa_trust or ()), ocsp=None if no_ocsp else fetch_ocsp
    )
    worst = Exit.OK
    # Files are verified side by side on every core (forked workers); output stays in input order.
    for path, result in zip(files, verify_files(files, store), strict=True):
        if isinstance(result, RadproofError):
            err_console.print(f"[bold red]error:[/] {shown(result)}")
            worst = Exit.USAGE
            if json_out:
                print_json_line(
                    {
                        "path": str(path),
                        "status": "error",
                        "signatures": [],
                        "unsigned_elements": [],
                        "error": str(result),
                    }
                )
            continue
        if json_out:
            print_json_line(result.to_dict())
        else:
            _show(result)
        if not result.passed and worst == Exit.OK:
            worst = Exit.FAILED
    raise typer.Exit(int(worst))


def _show(result: VerificationResult) -> None:
    from rich.table import Table

    from radproof.provenance.verifier import describe_tag

    colour = {"valid": "green", "invalid": "red", "unsigned": "yellow"}[result.status]
    console.print(f"[bold]{shown(result.path)}[/]: [bold {colour}]{result.status.upper()}[/]")
    if not result.signatures:
        console.print("  no digital signature in this file")
        return
    table = Table(show_header=True, header_style="bold", pad_edge=False)
    for column in ("#", "signer", "role", "purpose", "signed at", "timestamp", "integrity", "trusted", "elements"):
        table.add_column(column)
    for n, sig in enumerate(result.signatures, 1):
        table.add_row(
            str(n) if sig.location is None else f"{n} ({shown(sig.location)})",
            shown(sig.signer or "?"),
            shown(sig.role.value if sig.role else "-"),
            shown(sig.purpose or "-"),
            _when(sig.datetime),
            _when(sig.timestamp),
            f"[green]{sig.integrity}[/]" if sig.valid else f"[red]{sig.integrity}[/]",
            "[green]yes[/]" if sig.trusted else "[red]NO[/]",
            str(len(sig.elements_signed)),
        )
    console.print(table)
    for n, sig in enumerate(result.signatures, 1):
        if sig.reason:
            style = "yellow" if sig.ok else "red"
            console.print(f"  [{style}]signature {n}: {shown(sig.reason)}[/]")
        if sig.trust_reason and sig.trust_reason != sig.reason:
            console.print(f"  [red]signature {n}: not trusted: {shown(sig.trust_reason)}[/]")
    if result.unsigned_elements:
        names = ", ".join(describe_tag(t) for t in result.unsigned_elements)
        console.print(
            f"  [yellow]{len(result.unsigned_elements)} element(s) not covered by any valid trusted "
            f"signature:[/] {shown(names)}"
        )


def _when(iso: str | None) -> str:
    """ISO 8601 shortened to 'YYYY-MM-DD HH:MM:SS' for the table."""
    return iso[:19].replace("T", " ") if iso else "-"


def register(app: typer.Typer) -> None:
    """Add the `sign` and `verify` commands."""
    app.command("sign")(sign_command)
    app.command("verify")(verify_command)
