"""A resumed scan trusts content, not metadata, and survives a damaged results file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from radproof.config import load_settings
from radproof.imaging.phantom import simulate
from radproof.scan import read_records, scan_paths
from radproof.scan.work import DigestOnly


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    root.mkdir()
    for i in range(3):
        simulate(rows=48, cols=40, seed=i).save_as(root / f"img{i}.dcm", enforce_file_format=True)
    return root


def _scan(root: Path, out: Path):  # type: ignore[no-untyped-def]
    return scan_paths([root], load_settings(), out=out, workers=1, processor=DigestOnly())


def test_an_edit_that_keeps_size_and_mtime_is_checked_again(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    assert _scan(archive, out).checked == 3
    target = archive / "img1.dcm"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF  # one pixel changed: same size
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the time put back
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns

    again = _scan(archive, out)
    assert again.checked == 1 and again.resumed == 2
    latest = [r for r in read_records(out) if r["path"] == str(target)][-1]
    assert latest["sha256"] == hashlib.sha256(bytes(data)).hexdigest()
    # Unchanged files are still skipped (after hashing them).
    assert _scan(archive, out).checked == 0


def test_damaged_lines_are_skipped_with_a_warning_and_their_files_checked_again(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    _scan(archive, out)
    lines = out.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3
    # Line 1 gets bytes that are not UTF-8, line 3 is cut in the middle (an interrupted write).
    damaged = lines[0][:20] + b"\xff\xfe" + lines[0][20:] + lines[1] + lines[2][: len(lines[2]) // 2]
    out.write_bytes(damaged)

    summary = _scan(archive, out)
    assert summary.checked == 2 and summary.resumed == 1
    assert len(summary.warnings) == 2
    assert any("not UTF-8" in w for w in summary.warnings)
    assert any("cut short" in w for w in summary.warnings)
    # The file is usable again: a further run finds everything done (the old bad lines still warn).
    final = _scan(archive, out)
    assert final.checked == 0 and final.resumed == 3 and final.errors == 0


def test_a_non_utf8_file_name_round_trips_through_the_results(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    root.mkdir()
    name = os.fsdecode(b"caf\xe9-\xff.dcm")  # Latin-1 bytes, as on an old CD
    simulate(rows=32, cols=32, seed=4).save_as(root / name, enforce_file_format=True)
    out = tmp_path / "results.jsonl"
    assert _scan(root, out).checked == 1
    out.read_bytes().decode("utf-8")  # the results file stays valid UTF-8
    (record,) = read_records(out)
    assert record["path"] == str(root / name)
    assert _scan(root, out).resumed == 1  # and the path read back matches the file
