"""``radproof gateway``: the C-STORE proxy in front of a PACS, its status, and quarantine review."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from radproof.cli._check_options import ConfigOpt, PassOpt
from radproof.cli._common import Exit, console, print_json_line, shown

if TYPE_CHECKING:
    import uvicorn

    from radproof.config import Settings
    from radproof.gateway.server import Gateway

gateway_app = typer.Typer(
    help="The gateway in front of a PACS: verify every image on its way in (docs/gateway.md).",
    no_args_is_help=False,
    invoke_without_command=True,
)
quarantine_app = typer.Typer(help="Review what the gateway held: list, show, release, delete.", no_args_is_help=True)
gateway_app.add_typer(quarantine_app, name="quarantine")


def register(app: typer.Typer) -> None:
    app.add_typer(gateway_app, name="gateway")


def _settings(config: Path | None) -> Settings:
    from radproof.config import load_settings

    return load_settings(config)


@gateway_app.callback()
def run_command(
    ctx: typer.Context,
    config: ConfigOpt = None,
    passphrase_file: PassOpt = None,
) -> None:
    """Run the gateway until SIGTERM or Ctrl-C (without a subcommand)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = config
        return
    import logging
    import signal
    import threading

    from radproof.cli._check_options import passphrase_for
    from radproof.gateway.server import Gateway

    settings = _settings(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    gateway = Gateway(settings, passphrase=passphrase_for(settings, passphrase_file))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    host, port = gateway.start()
    console.print(f"radproof gateway {settings.gateway.ae_title} on {host}:{port}", highlight=False)
    web = _serve_stow(gateway) if settings.gateway.stow_port else None
    try:
        stop.wait()
    finally:
        if web is not None:
            web.should_exit = True
        gateway.stop()


def _serve_stow(gateway: Gateway) -> uvicorn.Server:
    """STOW-RS on [gateway] stow_port, in a thread beside the DICOM listener."""
    import threading

    import uvicorn

    from radproof.gateway.stow import create_app

    config = gateway.config
    server = uvicorn.Server(
        uvicorn.Config(create_app(gateway), host=config.host, port=config.stow_port or 0, log_level="warning")
    )
    threading.Thread(target=server.run, name="radproof-stow", daemon=True).start()
    console.print(f"STOW-RS on http://{config.host}:{config.stow_port}/studies", highlight=False)
    return server


@gateway_app.command("status")
def status_command(
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Queue depth, what was held, and the last errors, from the gateway's journal."""
    from radproof.gateway.journal import Journal, State

    settings = _settings(config).gateway
    path = settings.journal_path()
    if not path.exists():
        from radproof.errors import InputError

        raise InputError(f"no gateway journal at {path}: has the gateway run with this configuration?")
    journal = Journal(path)
    try:
        counts = journal.counts()
        errors = journal.last_errors()
    finally:
        journal.close()
    waiting = sum(counts.get(str(s), 0) for s in (State.RECEIVED, State.QUEUED, State.FORWARDING))
    record = {
        "waiting": waiting,
        "states": counts,
        "last_errors": [{"at": _when(t), "sop_instance_uid": uid, "error": e} for t, uid, e in errors],
    }
    if json_out:
        print_json_line(record)
        return
    console.print(f"waiting to be forwarded: {waiting}")
    for state, count in sorted(counts.items()):
        console.print(f"  {state}: {count}")
    for item in record["last_errors"]:  # type: ignore[attr-defined]
        console.print(f"  last error {item['at']} {item['sop_instance_uid']}: {shown(item['error'])}")


@quarantine_app.command("list")
def list_command(
    ctx: typer.Context,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per held instance.")] = False,
) -> None:
    """Every held instance: UID, state, verdict, reason."""
    from radproof.gateway.quarantine import Quarantine

    q = Quarantine(_settings(config or ctx.obj))
    try:
        held = q.list()
    finally:
        q.close()
    for h in held:
        e = h.entry
        if json_out:
            print_json_line(
                {"sop_instance_uid": e.sop_instance_uid, "state": str(e.state), "verdict": e.verdict,
                 "reason": e.reason, "calling_ae": e.calling_ae, "received_at": _when(e.received_at)}
            )  # fmt: skip
        else:
            console.print(f"{e.sop_instance_uid}  {e.state}  {e.verdict or '-'}  {shown(e.reason or '')}")
    if not held and not json_out:
        console.print("nothing is held")


@quarantine_app.command("show")
def show_command(
    ctx: typer.Context,
    uid: Annotated[str, typer.Argument(help="SOP Instance UID (or its start).")],
    config: ConfigOpt = None,
) -> None:
    """The check report of one held instance (JSON), with the reviews so far."""
    from radproof.gateway.quarantine import Quarantine

    q = Quarantine(_settings(config or ctx.obj))
    try:
        held = q.get(uid)
        history = q.journal.transitions(held.entry.key)
    finally:
        q.close()
    out = dict(held.report)
    out["file"] = str(held.path)
    out["history"] = [{"at": _when(t), "state": s, "detail": d} for t, s, d in history]
    print(json.dumps(out, indent=1, default=str))


@quarantine_app.command("release")
def release_command(
    ctx: typer.Context,
    uid: Annotated[str, typer.Argument(help="SOP Instance UID (or its start).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it may enter the archive (recorded).")],
    by: Annotated[str | None, typer.Option("--by", help="Who decided (default: the login name).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Send a held instance to the archive (recorded as an import after review)."""
    from radproof.gateway.quarantine import Quarantine

    q = Quarantine(_settings(config or ctx.obj))
    try:
        detail = q.release(uid, by=by, why=reason)
    finally:
        q.close()
    console.print(f"released {uid}: {detail}")


@quarantine_app.command("delete")
def delete_command(
    ctx: typer.Context,
    uid: Annotated[str, typer.Argument(help="SOP Instance UID (or its start).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is deleted (recorded).")],
    by: Annotated[str | None, typer.Option("--by", help="Who decided (default: the login name).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Delete a held instance's file; its report and history stay."""
    from radproof.gateway.quarantine import Quarantine

    q = Quarantine(_settings(config or ctx.obj))
    try:
        path = q.delete(uid, by=by, why=reason)
    finally:
        q.close()
    console.print(f"deleted {path}")
    raise typer.Exit(int(Exit.OK))


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")
