"""``radproof check``: one verdict per image from signatures, watermark and detector."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from radproof.cli._check_options import (
    ConfigOpt,
    CrlOpt,
    KeyOpt,
    PassOpt,
    PhiOpt,
    ProfileOpt,
    TrustOpt,
    TsaTrustOpt,
    passphrase_for,
    settings_from_options,
)
from radproof.cli._common import Exit, console, err_console, print_json_line, shown

_COLOURS = {
    "authentic": "green",
    "unverified": "white",
    "suspect": "yellow",
    "synthetic": "magenta",
    "tampered": "red",
}


def register(app: typer.Typer) -> None:
    app.command("check")(check_command)


def check_command(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Radiographs to check (DICOM, PNG, JPEG, TIFF).")],
    trust: TrustOpt = None,
    crl: CrlOpt = None,
    tsa_trust: TsaTrustOpt = None,
    key: KeyOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per file (JSON Lines).")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write a self-contained HTML report here.")
    ] = None,
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    passphrase_file: PassOpt = None,
    show_phi: PhiOpt = False,
) -> None:
    """Check images: authentic, unverified, suspect, synthetic or tampered, with the reasons.

    Exit status: 0 all passed, 1 at least one failed (tampered, synthetic, or what the policy
    fails), 2 usage or input error.
    """
    from radproof.errors import RadproofError
    from radproof.pipeline import Checker
    from radproof.records import FileRecord
    from radproof.scan.gather import previews

    settings = settings_from_options(
        config, trust=trust, crl=crl, key=key, profile=profile, show_phi=show_phi, tsa=tsa_trust
    )
    checker = Checker.from_settings(settings, passphrase=passphrase_for(settings, passphrase_file))
    code = Exit.OK
    records: list[FileRecord] = []
    pictures: dict[str, dict[str, bytes]] = {}
    for path in files:
        try:
            verdict = checker.check_file(path)
        except RadproofError as exc:
            code = Exit.USAGE
            if json_out:
                print_json_line({"path": str(path), "verdict": None, "error": str(exc)})
            else:
                err_console.print(f"[bold red]error:[/] {shown(exc)}")
            records.append(FileRecord.failed(str(path), str(exc)))
            continue
        record = dict(verdict.to_dict())
        if not verdict.passed and code == Exit.OK:
            code = Exit.FAILED
        if report is not None:
            records.append(FileRecord.of(verdict))
            pictures[str(path)] = previews(verdict)
        if json_out:
            print_json_line(record)
        else:
            _print_human(record, settings.report.show_phi)
    if report is not None:
        from radproof.report import write_report

        written = write_report(records, report, show_phi=settings.report.show_phi, previews=pictures)
        if not json_out:
            console.print(f"report: {shown(written)}")
    raise typer.Exit(int(code))


def _print_human(record: dict[str, Any], show_phi: bool) -> None:
    """A few lines a radiologist or a court can read: the verdict, why, and every signature's own status."""
    verdict = str(record["verdict"])
    colour = _COLOURS.get(verdict, "white")
    status = "passed" if record["passed"] else "FAILED"
    console.print(f"[bold]{shown(record['path'])}[/]: [bold {colour}]{verdict.upper()}[/] ({status})")
    for reason in record["reasons"]:
        console.print(f"  - {shown(reason)}")
    signature = record.get("signature") or {}
    for n, s in enumerate(signature.get("signatures") or (), 1):
        console.print("  " + shown(signature_line(n, s)))
    unsigned = signature.get("unsigned_elements") or []
    if signature.get("signatures") and unsigned:
        console.print(f"  not covered by any trusted signature ({len(unsigned)}): " + shown(", ".join(unsigned)))
    if show_phi and record.get("patient"):
        console.print("  patient: " + shown(", ".join(f"{k} {v}" for k, v in record["patient"].items())))


def signature_line(n: int, s: dict[str, Any]) -> str:
    """One signature in words: who, as what, when, and what holds (plain text, not markup)."""
    when = s.get("timestamp") or s.get("datetime") or "unknown time"
    where = f" in {s['location']}" if s.get("location") else ""
    integrity = "valid" if s.get("valid") else f"INVALID ({s.get('integrity') or 'does not match'})"
    trust = "trusted" if s.get("trusted") else f"NOT trusted ({s.get('trust_reason') or 'unknown signer'})"
    text = (
        f"signature {n}{where}: {s.get('signer') or '?'} ({s.get('role') or 'role unknown'}, "
        f"{s.get('purpose') or 'purpose unknown'}) at {when}: {integrity}, {trust}"
    )
    if s.get("trust_time_source") == "timestamp":
        text += ", checked at the trusted timestamp"
    if s.get("weaknesses"):
        text += "; legacy: " + "; ".join(s["weaknesses"])
    if s.get("warnings"):
        text += "; note: " + "; ".join(s["warnings"])
    return text
