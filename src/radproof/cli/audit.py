"""``radproof audit verify``: is the hash-chained audit log intact?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radproof.cli._check_options import ConfigOpt
from radproof.cli._common import Exit, console, err_console, print_json_line, shown

audit_app = typer.Typer(help="The audit trail (docs/gateway.md, 'Audit trail').", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def verify_command(
    log: Annotated[Path | None, typer.Argument(help="The audit log (default: the configured one).")] = None,
    trust: Annotated[
        Path | None, typer.Option("--trust", help="CA certificate the seals' signer must chain to (PEM).")
    ] = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Recompute the chain of every record and check every seal.

    Exit status: 0 when the log is intact (every record follows the one before it, every seal
    verifies, by a signer --trust vouches for when given), 1 when it is not, 2 on a usage error.
    Records after the last seal are counted: they could be cut off without a trace.
    """
    from radproof.audit.chain import verify_log
    from radproof.config import load_settings
    from radproof.gateway.server import default_audit_log
    from radproof.provenance.identity import load_certificates

    settings = load_settings(config)
    path = log or (Path(settings.audit.log) if settings.audit.log else default_audit_log(settings.gateway))
    anchors = list(load_certificates(trust)) if trust is not None else None
    check = verify_log(path, trusted=anchors)
    record = {
        "path": str(path),
        "intact": check.intact,
        "records": check.records,
        "seals": check.seals,
        "unsealed": check.unsealed,
        "signers": sorted(check.signers),
        "problem": check.problem,
    }
    if check.intact and log is None:
        _record_use(settings, path, check.records)
    if json_out:
        print_json_line(record)
    elif check.intact:
        sealed = f"{check.seals} seal(s) by {', '.join(sorted(check.signers))}" if check.seals else "not sealed"
        console.print(f"{shown(path)}: intact, {check.records} records, {sealed}, {check.unsealed} after the last seal")
    else:
        err_console.print(f"[bold red]{shown(path)}: BROKEN[/] {shown(check.problem)}")
    raise typer.Exit(int(Exit.OK if check.intact else Exit.FAILED))


def _record_use(settings: object, path: Path, records: int) -> None:
    """Audit Log Used (110101): reading the configured log is itself an audited event."""
    import getpass

    from radproof.audit import auditor_from_settings
    from radproof.audit.atna import AuditMessage, EventID, Outcome, Participant
    from radproof.errors import RadproofError

    try:
        auditor = auditor_from_settings(settings, default_log=path)
    except RadproofError as exc:
        err_console.print(f"note: this use of the audit log is not recorded ({shown(exc)})")
        return
    try:
        auditor.emit(
            AuditMessage(EventID.AUDIT_LOG_USED, "R", Outcome.SUCCESS, (Participant(getpass.getuser(), True),),
                         "radproof", detail=f"verified {records} records of {path.name}: intact")
        )  # fmt: skip
    finally:
        auditor.close()
