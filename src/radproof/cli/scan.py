"""``radproof scan``: check every image in folders or on a DICOMweb server, resumably, in parallel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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


def register(app: typer.Typer) -> None:
    app.command("scan")(scan_command)


def scan_command(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="DIR",
            help="Folders (recursive, DICOMDIR aware), files, or dicomweb+http://HOST:PORT/PATH servers.",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=0, help="Local worker processes (0: one per core).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Run on a Dask cluster: tcp://HOST:PORT.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Results (JSON Lines), appended to and resumed from.")] = Path(
        "radproof-scan.jsonl"
    ),
    report: Annotated[Path | None, typer.Option("--report", help="Write the HTML report here at the end.")] = None,
    dicomweb: Annotated[
        list[str] | None,
        typer.Option("--dicomweb", help="Also scan this DICOMweb base URL (http://HOST:PORT/dicom-web)."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Files per task (default: automatic).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on standard error.")] = True,
    trust: TrustOpt = None,
    crl: CrlOpt = None,
    tsa_trust: TsaTrustOpt = None,
    key: KeyOpt = None,
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    passphrase_file: PassOpt = None,
    show_phi: PhiOpt = False,
) -> None:
    """Check every image under the targets; results go to --out as they finish.

    A rerun skips images already checked (by content hash), so an interrupted scan resumes.
    Files that cannot be read are recorded as errors and the scan goes on. Exit status: 0 all
    passed, 1 at least one image failed or could not be checked, 2 usage error.
    """
    from radproof.errors import InputError
    from radproof.scan import scan_paths

    sources = list(targets or []) + [u if u.startswith("dicomweb+") else f"dicomweb+{u}" for u in dicomweb or []]
    if not sources:
        raise InputError("nothing to scan: give at least one folder, file or dicomweb+http:// URL")
    settings = settings_from_options(
        config,
        trust=trust,
        crl=crl,
        key=key,
        profile=profile,
        show_phi=show_phi,
        scan={"workers": workers, "scheduler": scheduler},
        tsa=tsa_trust,
    )
    summary = scan_paths(
        sources,
        settings,
        out=out,
        batch_size=batch_size,
        passphrase=passphrase_for(settings, passphrase_file),
        report=report,
        progress=progress and not json_out and err_console.is_terminal,
    )
    if json_out:
        print_json_line(summary.to_dict())
    else:
        verdicts = ", ".join(f"{n} {shown(v)}" for v, n in sorted(summary.verdicts.items())) or "none"
        console.print(
            f"{summary.found} image(s): {summary.checked} checked now, {summary.resumed} already done, "
            f"{summary.errors} could not be checked, {summary.not_images} other file(s) skipped"
        )
        if summary.rechecked:
            console.print(
                f"{summary.rechecked} of them checked again: the settings or the detector changed since"
                " their last check"
            )
        console.print(f"verdicts: {verdicts}; failed: {summary.failed}")
        if summary.checked:
            console.print(f"{summary.rate:.1f} images/s over {summary.seconds:.1f} s")
        console.print(f"results: {shown(summary.out)}")
        if summary.report is not None:
            console.print(f"report: {shown(summary.report)}")
        for record in summary.records:
            if not record.ok:
                err_console.print(f"[yellow]not checked:[/] {shown(record.path)}: {shown(record.error)}")
        for warning in summary.warnings:
            err_console.print(f"[yellow]warning:[/] {shown(warning)}")
    raise typer.Exit(int(Exit.OK if summary.ok else Exit.FAILED))
