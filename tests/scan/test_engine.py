"""The scan engine: local process pool, resumable JSON Lines, bad files, read-only sources."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from scan_helpers import SizeProcessor

from radproof.config import load_settings
from radproof.scan import read_records, scan_paths


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_local_pool_records_every_file_and_keeps_going_after_a_bad_one(archive: Path, tmp_path: Path) -> None:
    before = tree_digest(archive)
    out = tmp_path / "results.jsonl"
    summary = scan_paths([archive], load_settings(), out=out, workers=2, batch_size=1, processor=SizeProcessor())
    records = list(read_records(out))
    assert summary.found == 5 and summary.checked == 5 and summary.not_images == 2
    assert summary.errors == 1 and summary.verdicts == {"unverified": 4}
    bad = next(r for r in records if r["path"].endswith("broken.dcm"))
    assert bad["status"] == "error" and "refused by the test processor" in bad["error"]
    for record in records:
        data = Path(record["path"]).read_bytes()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        if record["status"] == "ok":
            assert record["size_seen"] == len(data)
    assert len({r["pid"] for r in records if r["status"] == "ok"}) >= 1
    assert tree_digest(archive) == before  # nothing a scan reads is modified


def test_rerun_skips_finished_files_and_rechecks_changed_ones(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    settings = load_settings()
    scan_paths([archive], settings, out=out, workers=1, processor=SizeProcessor())
    again = scan_paths([archive], settings, out=out, workers=1, processor=SizeProcessor())
    assert again.checked == 1 and again.resumed == 4  # only the file that failed is tried again
    png = archive / "c" / "export.png"
    png.write_bytes(png.read_bytes() + b"\0")
    third = scan_paths([archive], settings, out=out, workers=1, processor=SizeProcessor())
    assert third.checked == 2 and third.resumed == 3
    assert third.verdicts == {"unverified": 4} and third.errors == 1


class StampedProcessor(SizeProcessor):
    """A processor whose verdicts depend on a configuration, summed up by ``fingerprint``."""

    def __init__(self, fingerprint: str) -> None:
        super().__init__()
        self.fingerprint = fingerprint


def test_a_changed_detector_or_setting_makes_a_rerun_check_again(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    settings = load_settings()
    first = scan_paths([archive], settings, out=out, workers=1, processor=StampedProcessor("aaaa"))
    assert first.checked == 5 and first.rechecked == 0
    assert {r.get("checked_with") for r in read_records(out) if r["status"] == "ok"} == {"aaaa"}
    same = scan_paths([archive], settings, out=out, workers=1, processor=StampedProcessor("aaaa"))
    assert same.resumed == 4 and same.checked == 1 and same.rechecked == 0
    changed = scan_paths([archive], settings, out=out, workers=1, processor=StampedProcessor("bbbb"))
    assert changed.resumed == 0 and changed.checked == 5 and changed.rechecked == 4
    assert changed.verdicts == {"unverified": 4} and changed.errors == 1
    again = scan_paths([archive], settings, out=out, workers=1, processor=StampedProcessor("bbbb"))
    assert again.resumed == 4 and again.rechecked == 0


def test_the_check_fingerprint_follows_verdict_settings_and_the_detector_files(tmp_path: Path) -> None:
    import shutil
    from importlib import resources

    from radproof.scan.gather import checks_fingerprint

    settings = load_settings()
    base = checks_fingerprint(settings)
    assert checks_fingerprint(settings.with_overrides(scan={"workers": 3, "batch_size": 7})) == base
    assert checks_fingerprint(settings.with_overrides(report={"show_phi": True})) != base
    shipped = Path(str(resources.files("radproof.detect") / "models"))
    copy = tmp_path / "detector"
    shutil.copytree(shipped, copy)
    with_copy = settings.with_overrides(detector={"model": str(copy)})
    first = checks_fingerprint(with_copy)
    config = copy / "detector.json"
    config.write_text(config.read_text().replace('"threshold_real"', '"threshold_real" ', 1))
    assert checks_fingerprint(with_copy) != first


def test_an_interrupted_scan_resumes_after_a_torn_line(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    settings = load_settings()
    scan_paths([archive], settings, out=out, workers=1, processor=SizeProcessor())
    lines = out.read_text().splitlines()
    ok_lines = [line for line in lines if json.loads(line)["status"] == "ok"]
    # Keep two finished records and half of a third, as a crash during a write would leave them.
    out.write_text("\n".join(ok_lines[:2]) + "\n" + ok_lines[2][: len(ok_lines[2]) // 2])
    resumed = scan_paths([archive], settings, out=out, workers=2, processor=SizeProcessor())
    assert resumed.resumed == 2 and resumed.checked == 3
    records = list(read_records(out))
    assert {r["path"] for r in records} == {r["path"] for r in records if r.get("status")}
    assert resumed.verdicts == {"unverified": 4}


def test_batches_are_spread_over_worker_processes(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    scan_paths([archive], load_settings(), out=out, workers=2, batch_size=1, processor=SizeProcessor(delay=0.3))
    pids = {r["pid"] for r in read_records(out) if r["status"] == "ok"}
    assert len(pids) == 2


def test_a_crashing_worker_costs_only_its_own_file(archive: Path, tmp_path: Path) -> None:
    (archive / "a" / "crash.dcm").write_bytes(b"CRASH" + b"\0" * 200)
    out = tmp_path / "results.jsonl"
    summary = scan_paths([archive], load_settings(), out=out, workers=2, batch_size=3, processor=SizeProcessor())
    assert summary.found == 6 and summary.errors == 2  # broken.dcm (refused) and crash.dcm (crashed)
    crashed = next(r for r in read_records(out) if r["path"].endswith("crash.dcm"))
    assert "crashed" in crashed["error"]
    assert summary.verdicts == {"unverified": 4}


def test_full_check_on_phantoms_writes_records_previews_and_report(tmp_path: Path) -> None:
    from radproof.imaging.phantom import simulate

    src = tmp_path / "src"
    src.mkdir()
    for seed in range(2):
        simulate(rows=160, cols=128, seed=seed).save_as(src / f"p{seed}.dcm", enforce_file_format=True)
    out = tmp_path / "scan.jsonl"
    report = tmp_path / "scan.html"
    summary = scan_paths([src], load_settings(), out=out, workers=1, report=report)
    assert summary.checked == 2 and summary.errors == 0
    record = next(read_records(out))
    assert record["verdict"] in {"unverified", "suspect", "synthetic", "authentic"}
    assert record["signature"]["status"] == "unsigned"
    assert (tmp_path / "scan.previews" / f"{record['sha256']}.thumb.png").is_file()
    assert "data:image/png;base64," in report.read_text()
