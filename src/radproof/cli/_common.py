"""Helpers shared by the command modules: passphrases, output, exit codes."""

from __future__ import annotations

import os
import re
import sys
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from radproof.errors import PassphraseError
from radproof.fileio import json_line

if TYPE_CHECKING:
    from rich.console import Console


class _ConsoleOnFirstUse:
    """A Rich console made when first printed to: a command that only writes JSON never imports Rich
    (30 ms of every start-up, measured with ``python -X importtime``)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


# soft_wrap: a message stays one line in a log or a pipe (Rich would cut it at 80 columns there).
console = cast("Console", _ConsoleOnFirstUse(highlight=False, soft_wrap=True))
err_console = cast("Console", _ConsoleOnFirstUse(stderr=True, highlight=False, soft_wrap=True))

PASSPHRASE_ENV = "RADPROOF_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)


class Exit(IntEnum):
    """Exit codes of every command (a contract, see docs/cli.md)."""

    OK = 0  # all inputs passed
    FAILED = 1  # at least one input failed its check
    USAGE = 2  # usage or input error


def read_passphrase(
    passphrase_file: Path | None, *, what: str, confirm: bool = False, env: str = PASSPHRASE_ENV
) -> bytes:
    """A passphrase from a file, then the environment, then an interactive prompt.

    Never from a command-line argument: those end up in shell history and process lists.
    """
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise PassphraseError(f"cannot read passphrase file {passphrase_file}: {exc.strerror}") from None
        value = text.rstrip("\r\n")
        if not value:
            raise PassphraseError(f"passphrase file {passphrase_file} is empty")
        return value.encode("utf-8")
    from_env = os.environ.get(env)
    if from_env:
        return from_env.encode("utf-8")
    if not sys.stdin.isatty():
        raise PassphraseError(f"a passphrase is needed for {what}: use --passphrase-file FILE or set {env}")
    import getpass

    first = getpass.getpass(f"Passphrase for {what}: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise PassphraseError("the two passphrases differ")
    if not first:
        raise PassphraseError("an empty passphrase is not allowed")
    return first.encode("utf-8")


def print_json_line(obj: dict[str, Any]) -> None:
    """One JSON object on its own line (JSON Lines), flushed so other tools can stream it.

    A file name that is not valid UTF-8 reaches Python as lone surrogates, which no UTF-8 stream
    accepts; such a line is written with JSON's \\u escapes, which give the same string back.
    """
    sys.stdout.write(json_line(obj))
    sys.stdout.flush()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(value: object) -> str:
    """A user string (file name, path, certificate field, message) made safe to print in human output.

    Rich markup in it is escaped (a file named ``[bold red]x[/]`` is shown as such, and ``x[/]``
    does not raise), bytes that are not UTF-8 are shown as ``\\xff``, and control characters
    (a terminal escape sequence, a newline in a name) as ``\\x1b``, so one record stays one line.
    """
    from rich.markup import escape

    text = value if isinstance(value, str) else (os.fsdecode(value) if isinstance(value, bytes) else str(value))
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that does not stand for a byte
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return escape(text)
