"""The HTML report: self-contained, readable in a real browser (Chromium via Playwright), PHI hidden by default."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from radproof.config import load_settings
from radproof.imaging.overlays import heat_overlay, png, tamper_overlay
from radproof.report import build_report, write_report
from radproof.report import images as report_images
from radproof.scan import scan_paths
from radproof.watermark import TamperedBlock

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def phantom_archive(root: Path) -> Path:
    from radproof.imaging.phantom import simulate

    for folder, seeds in (("ward-a", (0, 1)), ("ward-b", (2,))):
        (root / folder).mkdir(parents=True)
        for seed in seeds:
            ds = simulate(rows=128, cols=112, seed=seed)
            ds.PatientName = "DOE^JANE"
            ds.PatientID = "MRN-4711"
            ds.save_as(root / folder / f"img{seed}.dcm", enforce_file_format=True)
    (root / "ward-b" / "broken.dcm").write_bytes(b"DICM" * 10)
    return root


def typed_records() -> tuple[list[dict[str, Any]], dict[str, dict[str, bytes]]]:
    """Three verdicts with every block filled, and their preview images."""
    import sys

    from radproof.check import Evidence, check
    from radproof.imaging import Radiograph

    sys.path.insert(0, str(Path(__file__).parents[1] / "check"))
    from evidence_builders import block, detection, mark, signed

    image = Radiograph(pixels=(np.indices((120, 100)).sum(axis=0) * 20).astype(np.uint16), bits_stored=12)
    gray = report_images.thumbnail(image)
    heat = np.zeros((16, 16), np.float32)
    heat[4:8, 4:8] = 1.0
    cut = [TamperedBlock(0, 0, 0, 30, 20, 30, 30)]
    previews = {
        "ok.dcm": {"thumb": png(gray)},
        "cut.dcm": {"thumb": png(gray), "tamper": png(tamper_overlay(gray, cut, image_shape=image.shape))},
        "fake.png": {"thumb": png(gray), "heatmap": png(heat_overlay(gray, heat))},
    }
    verdicts = [
        check(Evidence(path="ok.dcm", signature=signed(), watermark=mark(), detection=detection("real"))),
        check(
            Evidence(
                path="cut.dcm",
                signature=signed(valid=False, reason="MAC mismatch"),
                watermark=mark(blocks=[block(32, 32)]),
            )
        ),
        check(Evidence(path="fake.png", detection=detection("synthetic"))),
    ]
    return [v.to_dict() for v in verdicts], previews


def test_report_holds_summary_table_details_and_no_external_reference(tmp_path: Path) -> None:
    records, previews = typed_records()
    html = build_report(records, previews=previews)
    assert 'id="count-total">3<' in html and 'id="count-failed">2<' in html
    assert "Dr. Ada Tech" in html and "SITE-A" in html and "grain_uniformity" in html
    assert "MAC mismatch" in html and "Tampered regions" in html and "Where the detector" in html
    assert "<svg" in html  # plots inline
    # Self-contained: no URL the browser would fetch.
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_patient_identifiers_only_with_show_phi(tmp_path: Path) -> None:
    archive = phantom_archive(tmp_path / "archive")
    settings = load_settings()
    hidden = scan_paths([archive], settings, out=tmp_path / "a.jsonl", workers=1, report=tmp_path / "a.html")
    assert "DOE^JANE" not in (tmp_path / "a.html").read_text() and "MRN-4711" not in (tmp_path / "a.html").read_text()
    assert all("patient" not in r for r in hidden.records)
    shown = settings.with_overrides(report={"show_phi": True})
    scan_paths([archive], shown, out=tmp_path / "b.jsonl", workers=1, report=tmp_path / "b.html")
    text = (tmp_path / "b.html").read_text()
    assert "DOE^JANE" in text and "MRN-4711" in text
    # A report written without show_phi hides the identifiers even if the records carry them.
    from radproof.scan import read_records

    write_report(list(read_records(tmp_path / "b.jsonl")), tmp_path / "c.html")
    assert "DOE^JANE" not in (tmp_path / "c.html").read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def open_in_browser(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page()
    errors: list[str] = []
    fetched: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: fetched.append(req.url) if not req.url.startswith(("data:", "file:")) else None)
    page.goto(path.as_uri(), wait_until="load")
    return page, errors, fetched


def test_scan_report_renders_in_chromium(browser: Any, tmp_path: Path) -> None:
    archive = phantom_archive(tmp_path / "archive")
    report = tmp_path / "scan.html"
    scan_paths([archive], load_settings(), out=tmp_path / "scan.jsonl", workers=1, report=report)
    page, errors, fetched = open_in_browser(browser, report)
    try:
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) >= 6 and all(w > 0 for w in widths)  # 3 thumbnails in the table, 3 in details
        assert page.locator("tr.row").count() == 4
        assert page.locator("tr.verdict-error").count() == 1
        assert page.locator("#plot-sources svg rect").count() >= 2
        assert page.text_content("#count-total") == "4"
        assert errors == [] and fetched == []
    finally:
        page.close()


def test_typed_report_with_overlays_renders_in_chromium(browser: Any, tmp_path: Path) -> None:
    records, previews = typed_records()
    report = write_report(records, tmp_path / "typed.html", previews=previews)
    page, errors, fetched = open_in_browser(browser, report)
    try:
        for alt in ("tamper map", "detector heatmap"):
            width = page.eval_on_selector(f'img[alt="{alt}"]', "i => i.naturalWidth")
            assert width > 0
        assert page.locator("#plot-scores svg rect").count() >= 1
        assert errors == [] and fetched == []
    finally:
        page.close()


def test_previews_draw_the_detector_heatmap_and_the_tamper_map() -> None:
    """The gatherer's preview images come from the layers' own arrays (Detection.heatmap, tampered blocks)."""
    import io
    from dataclasses import replace

    from PIL import Image

    from radproof.check import Evidence, check
    from radproof.detect import Detection
    from radproof.imaging import Radiograph
    from radproof.scan.gather import previews
    from radproof.watermark import WatermarkReading

    image = Radiograph(pixels=np.tile(np.linspace(1000, 3000, 200, dtype=np.uint16), (300, 1)), bits_stored=12)
    heat = np.zeros((64, 64), np.float32)
    heat[:32, :32] = 1.0
    detection = Detection(None, 0.9, "synthetic", (), (), square_heatmap=heat)
    reading = WatermarkReading(None, True, "SITE-A", 0, 1.0, [TamperedBlock(0, 0, 0, 0, 0, 150, 100)], False)
    verdict = replace(check(Evidence(detection=detection, watermark=reading)), image=image)
    pics = previews(verdict)
    assert set(pics) == {"thumb", "heatmap", "tamper"}
    tamper = np.asarray(Image.open(io.BytesIO(pics["tamper"])).convert("RGB")).astype(int)
    h, w, _ = tamper.shape
    assert tamper[h // 4, w // 4, 0] > tamper[h // 4, w // 4, 1] + 50  # red inside the tampered box
    assert abs(tamper[3 * h // 4, 3 * w // 4, 0] - tamper[3 * h // 4, 3 * w // 4, 1]) < 5  # gray outside
    heatmap = np.asarray(Image.open(io.BytesIO(pics["heatmap"])).convert("RGB")).astype(int)
    hot, cold = heatmap[h // 8, w // 8], heatmap[7 * h // 8, 7 * w // 8]
    assert hot[0] - hot[2] > 50 and abs(cold[0] - cold[2]) < 5  # warm where the heat is, gray elsewhere
