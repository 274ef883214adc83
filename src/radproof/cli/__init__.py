"""The ``radproof`` command: thin wiring of the library, nothing else.

Each command group lives in its own module and registers itself on :data:`app`. Errors a user can
cause (:class:`~radproof.errors.RadproofError`) are printed as one message with exit status 2.
"""

from __future__ import annotations

import gc
import importlib
import sys

import typer

from radproof import __version__
from radproof.cli._common import Exit, err_console, shown
from radproof.errors import RadproofError

app = typer.Typer(
    name="radproof",
    help="Prove whether a radiograph is real: signatures, watermarks, deepfake detection.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Command modules, in the order they appear in --help. Each defines register(app).
_COMMAND_MODULES: list[str] = [
    "radproof.cli.demo",
    "radproof.cli.keys",
    "radproof.cli.sign",
    "radproof.cli.watermark",
    "radproof.cli.detect",
    "radproof.cli.check",
    "radproof.cli.scan",
    "radproof.cli.gateway",
    "radproof.cli.audit",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"radproof {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """radproof: prove whether a radiograph is real."""


for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, map user errors to a message and exit status 2."""
    code = _run(argv)
    if argv is None:
        # Called as the program, which exits next: freezing the heap spares the interpreter's last garbage
        # collection a walk over every object numpy, pydicom, pydantic... created (~70 ms of CPU for
        # `verify`). atexit handlers and finalizers registered with weakref.finalize still run.
        gc.freeze()
    return code


def _run(argv: list[str] | None) -> int:
    try:
        # Without standalone mode, click returns the code of a typer.Exit instead of raising it.
        code = app(args=argv, prog_name="radproof", standalone_mode=False)
        if isinstance(code, int):
            return code
    except RadproofError as exc:
        err_console.print(f"[bold red]error:[/] {shown(exc)}")
        return int(Exit.USAGE)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        err_console.print("aborted")
        return int(Exit.USAGE)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except typer.TyperException as exc:
        # Usage errors (bad option values, missing arguments): click's own message, exit 2.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"[bold red]error:[/] {shown(exc)}")
        return int(Exit.USAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
