"""``radproof watermark``: keys, embedding, reading and exact restoration of invisible watermarks."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from radproof.cli._common import (
    PASSPHRASE_ENV,
    Exit,
    console,
    err_console,
    print_json_line,
    read_passphrase,
    shown,
)
from radproof.errors import InputError
from radproof.fileio import display_path

if TYPE_CHECKING:
    from radproof.watermark import WatermarkKey

WATERMARK_PASSPHRASE_ENV = "RADPROOF_WATERMARK_PASSPHRASE"  # noqa: S105 (a variable name)

group = typer.Typer(
    name="watermark",
    help="Invisible watermarks: a robust payload and a reversible fragile layer (tamper map, exact restore).",
    no_args_is_help=True,
)


PassFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="File holding the key's passphrase "
        "(else RADPROOF_WATERMARK_PASSPHRASE, RADPROOF_PASSPHRASE, or a prompt).",
    ),
]
KeyOpt = Annotated[Path, typer.Option("--key", "-k", help="Watermark key file (from `radproof watermark keygen`).")]
OutOpt = Annotated[Path, typer.Option("-o", "--out", help="Output file (.dcm for DICOM, or .png/.tif/.jpg).")]


def _env() -> str:
    return WATERMARK_PASSPHRASE_ENV if os.environ.get(WATERMARK_PASSPHRASE_ENV) else PASSPHRASE_ENV


def _load_key(path: Path, passphrase_file: Path | None) -> WatermarkKey:
    from radproof.watermark import load_key

    return load_key(path, read_passphrase(passphrase_file, what=f"watermark key {path}", env=_env()))


@group.command("keygen")
def keygen(
    keyfile: Annotated[Path, typer.Argument(help="Where to write the new key (encrypted with a passphrase).")],
    passphrase_file: PassFileOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing key file.")] = False,
) -> None:
    """Create a secret watermark key, encrypted at rest."""
    from radproof.watermark import generate_key, save_key

    if keyfile.exists() and not force:
        raise InputError(
            f"{display_path(keyfile)} exists; use --force to replace it (marks made with it become unreadable)"
        )
    from radproof.passphrase import check_new_passphrase

    passphrase = read_passphrase(passphrase_file, what="the new watermark key", confirm=True, env=_env())
    check_new_passphrase(passphrase)
    key = generate_key()
    save_key(key, keyfile, passphrase)
    console.print(f"wrote watermark key {shown(keyfile)} (id {shown(key.key_id)}); keep it and its passphrase safe")


@group.command("embed")
def embed_cmd(
    src: Annotated[Path, typer.Argument(help="Radiograph to mark (DICOM, PNG, TIFF or JPEG).")],
    out: OutOpt,
    key: KeyOpt,
    payload: Annotated[
        str | None,
        typer.Option(help="Up to 8 bytes of text, or 0x + hex (default: a hash of the SOP Instance UID)."),
    ] = None,
    layers: Annotated[str, typer.Option(help="robust, fragile, or both.")] = "robust,fragile",
    passphrase_file: PassFileOpt = None,
) -> None:
    """Embed the watermark; the input file is never modified."""
    from radproof.watermark import embed_file

    if out.resolve() == src.resolve():
        raise InputError("the output must be a new file; the input is never overwritten")
    wm_key = _load_key(key, passphrase_file)
    summary = embed_file(src, out, wm_key, payload=payload, layers=layers)
    console.print(
        f"{shown(summary.path)}: layers {shown(', '.join(summary.layers))}, payload {shown(repr(summary.payload))}, "
        f"PSNR {summary.psnr_db:.1f} dB, max change {summary.max_abs_change}"
    )
    if summary.unprotected_blocks:
        err_console.print(
            f"note: {summary.unprotected_blocks} block(s) were too busy to carry a fragile tag; their neighbours "
            "declare them and the binding record still covers their pixels"
        )


@group.command("read")
def read_cmd(
    files: Annotated[list[Path], typer.Argument(help="Files to examine.")],
    key: KeyOpt,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file (JSON Lines).")] = False,
    map_out: Annotated[
        Path | None, typer.Option("--map", help="Write a PNG tamper map (several inputs: OUT_<name>.png).")
    ] = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Report payload, bit errors, confidence and tampered blocks; exit 1 if any file fails."""
    from radproof.fileio import atomic_write_bytes
    from radproof.imaging import load
    from radproof.watermark import read, tamper_overlay_png

    wm_key = _load_key(key, passphrase_file)
    failed = False
    unreadable = False
    for path in files:
        try:
            image = load(path)
            reading = read(image, wm_key)
        except InputError as exc:
            # One unreadable file is reported and the others are still read (as `detect` does).
            unreadable = True
            if as_json:
                print_json_line({"path": str(path), "error": str(exc)})
            else:
                err_console.print(f"[bold red]error:[/] {shown(exc)}")
            continue
        reading = replace(reading, path=str(path))
        # A binding record that does not match means changed pixels (or a layer copied from elsewhere).
        ok = reading.found and not reading.tampered_blocks and reading.binding_ok is not False
        failed = failed or not ok
        if map_out is not None and reading.tampered_blocks is not None:
            target = map_out if len(files) == 1 else map_out.with_name(f"{map_out.stem}_{path.stem}.png")
            atomic_write_bytes(target, tamper_overlay_png(image, reading))
        if as_json:
            print_json_line(reading.to_dict())
            continue
        _print_reading(path, reading)
    raise typer.Exit(int(Exit.USAGE if unreadable else Exit.FAILED if failed else Exit.OK))


def _print_reading(path: Path, reading: object) -> None:
    from radproof.watermark import WatermarkReading

    assert isinstance(reading, WatermarkReading)
    if not reading.found:
        console.print(f"{shown(path)}: [bold red]no watermark[/] made with this key")
        return
    parts = []
    if reading.robust_found:
        parts.append(
            f"payload {shown(repr(reading.payload))} ({reading.bit_errors} bit errors corrected, "
            f"confidence {reading.confidence:.6f})"
        )
    else:
        parts.append("robust payload not found")
    if reading.tampered_blocks is None:
        parts.append("no fragile layer")
    elif reading.tampered_blocks:
        parts.append(f"[bold red]{len(reading.tampered_blocks)} tampered block(s)[/]")
    else:
        parts.append("fragile layer intact" + (", restorable" if reading.restorable else ""))
        if reading.binding_ok is False:
            parts.append("[yellow]binding record does not match these pixels or this file's SOP Instance UID[/]")
    if reading.unprotected_blocks:
        covered = "covered by the binding record" if reading.binding_ok else "[yellow]not verified[/]"
        parts.append(f"{len(reading.unprotected_blocks)} block(s) without a tag, {covered}")
    console.print(f"{shown(path)}: " + "; ".join(parts))


@group.command("restore")
def restore_cmd(
    src: Annotated[Path, typer.Argument(help="Marked file.")],
    out: OutOpt,
    key: KeyOpt,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Remove the fragile layer, giving back the pixels bit for bit; exit 1 if the image was changed."""
    from radproof.imaging import load
    from radproof.watermark import read, restore_file

    if out.resolve() == src.resolve():
        raise InputError("the output must be a new file; the input is never overwritten")
    wm_key = _load_key(key, passphrase_file)
    reading = read(load(src), wm_key)
    if reading.tampered_blocks is None:
        err_console.print(f"[bold red]error:[/] {shown(src)}: no fragile watermark made with this key")
        raise typer.Exit(int(Exit.FAILED))
    if reading.tampered_blocks:
        err_console.print(
            f"[bold red]error:[/] {shown(src)}: {len(reading.tampered_blocks)} block(s) were changed after "
            "watermarking; exact restoration is impossible (see `radproof watermark read --map`)"
        )
        raise typer.Exit(int(Exit.FAILED))
    written = restore_file(src, out, wm_key)
    console.print(f"{shown(written)}: fragile layer removed, pixels restored exactly")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="watermark")
