"""Hostile names and special files: file names that are not UTF-8 or hold Rich markup, FIFOs, devices.

Whatever the name, the commands print it as it is (escaped, on one line) and never a traceback;
a FIFO or a device is refused at once (exit 2), never read (a FIFO would block, /dev/zero never ends).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radproof.cli import main
from radproof.cli._common import shown
from radproof.errors import InputError
from radproof.fileio import read_input_bytes, sha256_file
from radproof.scan import discover

MARKUP = "[bold red]x"  # unescaped, Rich would print a red x
NOT_UTF8 = os.fsdecode(b"\xff\xfe")


def _closing_tag_path(tmp_path: Path, name: str) -> Path:
    """A path that reads ``.../a[/]name``: folder ``a[``, then ``]name`` (unescaped, Rich raises on it)."""
    folder = tmp_path / "a["
    folder.mkdir(exist_ok=True)
    return folder / f"]{name}"


def _png(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(path, format="PNG")
    return path


@pytest.fixture()
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.dcm"
    os.mkfifo(path)
    return path


def test_shown_escapes_markup_bytes_and_control_characters() -> None:
    from rich.console import Console

    console = Console(record=True, width=200, highlight=False)
    for raw, visible in [
        (MARKUP, MARKUP),
        ("x[/]", "x[/]"),
        ("[bold red]x[/]", "[bold red]x[/]"),
        (os.fsdecode(b"a\xffb"), "a\\xffb"),
        ("a\x1b[31mb\nc", "a\\x1b[31mb\\x0ac"),
        ("Müller", "Müller"),
    ]:
        console.print(shown(raw))
        assert console.export_text().rstrip("\n") == visible


def test_detect_prints_a_hostile_name_as_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _png(_closing_tag_path(tmp_path, f"{MARKUP}{NOT_UTF8}.png"))
    code = main(["detect", str(path)])
    out = capsys.readouterr().out
    assert code in (0, 1)
    first = out.splitlines()[0]
    assert f"a[/]{MARKUP}\\xff\\xfe.png" in first

    assert main(["detect", "--json", str(path)]) in (0, 1)
    record = json.loads(capsys.readouterr().out)
    assert record["path"] == str(path)  # \u escapes give the same (surrogate-escaped) name back


def test_a_missing_hostile_name_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = _closing_tag_path(tmp_path, f"x{NOT_UTF8}.png")
    code = main(["detect", str(missing)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "a[/]x\\xff\\xfe.png: no such file" in err


def test_fifo_and_device_are_refused_without_reading(fifo: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="FIFO"):
        read_input_bytes(fifo)
    with pytest.raises(InputError, match="FIFO"):
        sha256_file(fifo)
    with pytest.raises(InputError, match="character device"):
        read_input_bytes("/dev/zero")
    # The commands, in a process of their own (a bug here would hang or eat memory, not fail).
    exe = Path(sys.executable).with_name("radproof")
    done = subprocess.run([str(exe), "detect", str(fifo), "/dev/zero"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in done.stderr
    assert "FIFO" in lines[0] and "character device" in lines[1]


def test_watermark_read_refuses_a_fifo(fifo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"adversarial test passphrase 1")
    key = tmp_path / "site.wmk"
    assert main(["watermark", "keygen", str(key), "--passphrase-file", str(pw)]) == 0
    capsys.readouterr()
    png = _png(tmp_path / f"{MARKUP}.png")
    code = main(["watermark", "read", str(fifo), str(png), "--key", str(key), "--passphrase-file", str(pw)])
    captured = capsys.readouterr()
    assert code == 2  # the FIFO; the PNG is still read
    assert "FIFO" in captured.err
    assert f"{MARKUP}.png: " in captured.out


def test_scan_walks_past_fifos_and_refuses_one_given_as_target(fifo: Path, tmp_path: Path) -> None:
    _png(tmp_path / f"{MARKUP}{NOT_UTF8}.png")
    found = list(discover([tmp_path]))
    assert [Path(item.locator).name for item in found] == [f"{MARKUP}{NOT_UTF8}.png"]  # the FIFO is not listed
    with pytest.raises(InputError, match="not a regular file"):
        list(discover([fifo]))


def test_scan_command_prints_hostile_names_of_unreadable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "archive"
    root.mkdir()
    _closing_tag_path(root, f"{MARKUP}{NOT_UTF8}.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
    out = tmp_path / "results.jsonl"
    code = main(["scan", str(root), "--out", str(out), "--workers", "1", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    (line,) = [x for x in captured.err.splitlines() if x.startswith("not checked:")]
    assert f"a[/]{MARKUP}\\xff\\xfe.dcm" in line
