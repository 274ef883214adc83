"""Decompression bombs and huge declared sizes: exit 2, one clear line each, and a small peak memory.

Each command runs once in a fresh process over every bomb (process start-up dominates the time);
the peak resident set of that process alone comes from wait4. The bombs are the ones
benchmarks/limits.py measures (docs/limits.md has the figures).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.limits import BOMB_SIDE, bombs, dicom_deflated, peak_rss  # noqa: E402

from radproof.errors import ResourceLimitError  # noqa: E402
from radproof.imaging import load_bytes  # noqa: E402

#: A refused bomb must cost no more than start-up plus a little (start-up is ~ 0.45 GB with the detector).
PEAK_LIMIT_MB = 1500
PW = b"adversarial test passphrase 1"


@pytest.fixture(scope="module")
def bomb_files() -> dict[str, Path]:
    folder = Path(tempfile.mkdtemp(prefix="radproof-bombs-"))
    out = {}
    for name, build in bombs().items():
        if name.startswith("dicom-deflate") or name == "png-16000-truncated":
            continue  # the deflated ones take seconds to build: small versions below; 16000 is within limits
        out[name] = folder / name
        out[name].write_bytes(build())
    # The deflated bombs at a lowered limit (the check is the same, the file 50 x smaller to make).
    out["deflate-small-header"] = folder / "deflate-small-header"
    out["deflate-small-header"].write_bytes(dicom_deflated(64, 64, extra_zeros=80 << 20))
    return out


LOW_LIMIT = {"RADPROOF_MAX_PIXEL_BYTES": str(4 << 20)}  # inflated limit: 4 MiB + 64 MiB of header room


def _run_all(args: list[str], files: dict[str, Path]) -> tuple[int, float, list[str]]:
    exe = Path(sys.executable).with_name("radproof")
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [str(exe), *args, *map(str, files.values())],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, **LOW_LIMIT},
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").splitlines()
    return proc.returncode, usage.ru_maxrss / 1024, lines


def _assert_each_refused(lines: list[str], files: dict[str, Path]) -> None:
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    for name, path in files.items():
        mine = [line for line in lines if str(path) in line]
        assert len(mine) == 1, f"{name}: expected one line, got {mine!r}"
        line = mine[0]
        assert line.startswith("error:"), line
        assert any(word in line for word in ("limit", "encoded as")), f"{name}: {line}"


@pytest.mark.parametrize("command", ["check", "detect"])
def test_bombs_are_refused_cheaply(command: str, bomb_files: dict[str, Path]) -> None:
    code, peak_mb, lines = _run_all([command], bomb_files)
    assert code == 2
    _assert_each_refused(lines, bomb_files)
    assert peak_mb < PEAK_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"


def test_watermark_read_refuses_bombs_cheaply(bomb_files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "pw").write_bytes(PW)
    key = tmp_path / "site.wmk"
    code, _, msg = peak_rss(["watermark", "keygen", str(key), "--passphrase-file", str(tmp_path / "pw")])
    assert code == 0, msg
    code, peak_mb, lines = _run_all(
        ["watermark", "read", "--key", str(key), "--passphrase-file", str(tmp_path / "pw")], bomb_files
    )
    assert code == 2
    _assert_each_refused(lines, bomb_files)
    assert peak_mb < PEAK_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"


def test_refused_before_decoding_in_process(bomb_files: dict[str, Path]) -> None:
    """The size checks raise ResourceLimitError (not a decoder's error after allocating)."""
    for name in ("png-20000", "jpeg-sof-20000", "dicom-rle-20000", "dicom-j2k-20000", "dicom-frames-100000"):
        with pytest.raises(ResourceLimitError, match="limit"):
            load_bytes(bomb_files[name].read_bytes(), name=name)


def test_limits_are_configurable(bomb_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    data = bomb_files["dicom-native-20000-short"].read_bytes()
    with pytest.raises(ResourceLimitError, match="RADPROOF_MAX_SIDE"):
        load_bytes(data, name="big")
    monkeypatch.setenv("RADPROOF_MAX_SIDE", str(BOMB_SIDE))
    monkeypatch.setenv("RADPROOF_MAX_PIXEL_BYTES", "1000")
    with pytest.raises(ResourceLimitError, match="RADPROOF_MAX_PIXEL_BYTES"):
        load_bytes(data, name="big")
