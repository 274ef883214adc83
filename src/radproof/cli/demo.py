"""``radproof demo``: the whole story on an embedded phantom, in a working folder.

A hospital CA and a technologist are created, a capture is simulated and signed, a tampered copy
and a copy re-signed with an untrusted key are made, and every file is verified. Each step prints
what it did and what radproof found; the command exits 0 only when every finding is the expected one.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from radproof.cli._common import Exit, console, shown

if TYPE_CHECKING:
    from radproof.watermark import TamperedBlock


@dataclass
class Finding:
    """One row of the demo's summary: a file, what radproof said, and what it should say."""

    subject: str
    check: str
    found: str
    expected: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.found == self.expected


@dataclass
class Story:
    workdir: Path
    passphrase: bytes
    rows: int
    cols: int
    findings: list[Finding] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    key: Any = None
    report: Path | None = None
    started: float = field(default_factory=time.perf_counter)

    def step(self, text: str) -> None:
        console.print(f"[bold cyan]>[/] {text}")

    def record(self, finding: Finding) -> None:
        self.findings.append(finding)
        mark = "[green]as expected[/]" if finding.ok else f"[bold red]expected {shown(finding.expected)}[/]"
        console.print(
            f"    {shown(finding.subject)}: {shown(finding.check)} -> [bold]{shown(finding.found)}[/] ({mark}) "
            f"{shown(finding.detail)}"
        )


def _fracture_line(pixels: Any, rows: int, cols: int) -> Any:
    """Paste a thin bright oblique line over a rib: a crude forged 'fracture' edit."""
    import numpy as np

    edited = pixels.copy()
    r0, c0 = int(rows * 0.42), int(cols * 0.22)
    for t in range(int(cols * 0.08)):
        r, c = r0 + t // 2, c0 + t
        edited[r : r + 2, c] = np.minimum(edited[r : r + 2, c].astype(np.int64) + 900, (1 << 14) - 1)
    return edited


def _story_capture(story: Story) -> None:
    """Identities, watermark key, a simulated capture, watermarked then signed."""
    from radproof.imaging.phantom import simulate
    from radproof.provenance import Purpose, Role, init_ca, issue_identity, load_identity, sign_file
    from radproof.watermark import embed_file, generate_key, save_key

    work, pw = story.workdir, story.passphrase
    story.step("A hospital CA and a technologist identity (RSA-3072, keys encrypted at rest)")
    init_ca(work / "hospital-ca", "Demo Hospital Imaging CA", pw)
    issue_identity(work / "technologist", work / "hospital-ca", "Demo Technologist", Role.TECHNOLOGIST, pw, pw)
    story.step("A secret watermark key for the site (encrypted at rest)")
    story.key = generate_key()
    save_key(story.key, work / "site.wmk", pw)

    story.step(f"Capture: a simulated {story.rows} x {story.cols} chest radiograph (14-bit DX phantom)")
    raw = work / "capture.dcm"
    simulate(story.rows, story.cols, seed=2026).save_as(raw, enforce_file_format=True)
    story.step("Watermark at capture: robust payload + reversible fragile layer, then the technologist signs")
    marked = embed_file(raw, work / "capture-marked.dcm", story.key, payload="SITE0042")
    console.print(
        f"    payload {marked.payload}, PSNR {marked.psnr_db:.1f} dB at native depth, "
        f"largest change {marked.max_abs_change} of {2**14 - 1}"
    )
    tech = load_identity(work / "technologist", pw)
    story.files["signed"] = sign_file(marked.path, work / "capture-signed.dcm", tech, Purpose.SOURCE)


def _story_forgeries(story: Story) -> None:
    """A pasted 'fracture' that keeps the old signature, and a copy re-signed with a forger's key."""
    import numpy as np
    import pydicom

    from radproof.provenance import Purpose, Role, init_ca, issue_identity, load_identity, sign_dataset

    work, pw = story.workdir, story.passphrase
    story.step('A forger pastes a "fracture" line into the signed image, keeping the signature')
    forged = pydicom.dcmread(story.files["signed"])
    pixels = forged.pixel_array
    forged.PixelData = np.asarray(_fracture_line(pixels, story.rows, story.cols), dtype=np.uint16).tobytes()
    tampered = work / "capture-tampered.dcm"
    forged.save_as(tampered)
    story.files["tampered"] = tampered

    story.step("The forger re-signs the edited image with a key of their own (not issued by the hospital)")
    init_ca(work / "forger-ca", "Forger CA", pw)
    issue_identity(work / "forger", work / "forger-ca", "Demo Technologist", Role.TECHNOLOGIST, pw, pw)
    resigned_ds = pydicom.dcmread(tampered)
    for tag in (0xFFFAFFFA, 0x4FFE0001):  # drop the old signature and its MAC parameters
        if tag in resigned_ds:
            del resigned_ds[tag]
    sign_dataset(resigned_ds, load_identity(work / "forger", pw), Purpose.SOURCE)
    resigned = work / "capture-resigned-untrusted.dcm"
    resigned_ds.save_as(resigned)
    story.files["resigned"] = resigned


def _story_verify(story: Story) -> None:
    from radproof.provenance import TrustStore, verify_file
    from radproof.watermark import read_file, tamper_overlay_png

    story.step("Verify signatures against the hospital CA, and read the watermark's tamper map")
    trust = TrustStore.from_files(story.workdir / "hospital-ca" / "ca.pem")
    expected = {"signed": "valid", "tampered": "invalid", "resigned": "invalid"}
    for key in ("signed", "tampered", "resigned"):
        path = story.files[key]
        result = verify_file(path, trust).to_dict()
        sigs = result.get("signatures", [])
        reason = "; ".join(str(s.get("reason")) for s in sigs if s.get("reason"))
        signer = ", ".join(f"{s.get('signer')} ({s.get('role')})" for s in sigs)
        story.record(Finding(path.name, "signature", str(result["status"]), expected[key], reason or f"by {signer}"))

    intact = read_file(story.files["signed"], story.key)
    story.record(
        Finding(story.files["signed"].name, "tamper map", _blocks_text(intact.tampered_blocks), "no block changed")
    )
    edited = read_file(story.files["tampered"], story.key)
    where = _blocks_text(edited.tampered_blocks)
    overlay = story.workdir / "capture-tampered-map.png"
    from radproof.fileio import atomic_write_bytes
    from radproof.imaging import load

    atomic_write_bytes(overlay, tamper_overlay_png(load(story.files["tampered"]), edited))
    story.record(
        Finding(
            story.files["tampered"].name,
            "tamper map",
            "blocks changed" if edited.tampered_blocks else where,
            "blocks changed",
            f"{where}; overlay: {overlay.name}",
        )
    )


def _blocks_text(blocks: Sequence[TamperedBlock] | None) -> str:
    if blocks is None:
        return "no fragile layer"
    if not blocks:
        return "no block changed"
    boxes = ", ".join(f"rows {b.y}-{b.y + b.height - 1} x cols {b.x}-{b.x + b.width - 1}" for b in blocks[:3])
    more = f" and {len(blocks) - 3} more" if len(blocks) > 3 else ""
    return f"{len(blocks)} block(s): {boxes}{more}"


def _story_export(story: Story) -> None:
    from radproof.imaging import load, render, save_raster
    from radproof.watermark import read_file

    story.step("Export the signed capture as an 8-bit JPEG (quality 85), as a viewer or a patient CD would")
    export = story.workdir / "capture-export.jpg"
    save_raster(render(load(story.files["signed"])), export, quality=85)
    story.files["export"] = export
    reading = read_file(export, story.key)
    story.record(
        Finding(
            export.name,
            "robust watermark",
            f"payload {reading.payload}" if reading.found else "not found",
            "payload SITE0042",
            f"confidence {reading.confidence:.6f}, {reading.bit_errors} coded bit(s) corrected",
        )
    )


def _story_detector(story: Story) -> None:
    from radproof.detect import detect_file

    story.step("The deepfake detector on the capture (pixels only; header hints listed apart)")
    result = detect_file(story.files["signed"]).to_dict()
    evidence = sorted(result["evidence"], key=lambda e: -abs(float(e.get("weight") or 0)))[:3]
    for item in evidence:
        console.print(f"    - {shown(item.get('name'))}: {shown(item.get('reference'))}")
    for hint in result["hints"]:
        console.print(f"    * hint: {shown(hint.get('message', hint))}")
    # The phantom is computer-made: a detector of real radiographs should not call it real.
    story.record(
        Finding(
            story.files["signed"].name,
            "detector",
            "not called real" if result["verdict"] != "real" else "real",
            "not called real",
            f"verdict {result['verdict']}, synthetic probability {result['synthetic_probability']:.2f}",
        )
    )


def _synthetic_stand_in(path: Path, rows: int, cols: int) -> None:
    """A generator-like image made by our own means: a phantom squeezed through a tiny latent and
    decoded by 8x nearest/bilinear up-sampling, smoothed, 8-bit, at a generator's output size."""
    import numpy as np
    from PIL import Image
    from scipy import ndimage

    from radproof.imaging import render
    from radproof.imaging.phantom import simulate_radiograph

    base = render(simulate_radiograph(rows, cols, seed=77)).astype(np.float32)
    latent = np.asarray(Image.fromarray(base).resize((128, 128), Image.Resampling.BOX), dtype=np.float32)
    decoded = np.asarray(Image.fromarray(latent).resize((1024, 1024), Image.Resampling.BILINEAR), dtype=np.float32)
    decoded = ndimage.gaussian_filter(decoded, 1.2)
    Image.fromarray(np.clip(decoded, 0, 255).astype(np.uint8)).save(path)


def _story_archive(story: Story) -> None:
    import shutil

    from radproof.config import Settings
    from radproof.imaging.phantom import simulate
    from radproof.scan import scan_paths

    story.step("A small mixed archive: signed, tampered, re-signed, unsigned, exported, and a synthetic image")
    archive = story.workdir / "archive"
    (archive / "signed").mkdir(parents=True, exist_ok=True)
    (archive / "unsigned").mkdir(parents=True, exist_ok=True)
    (archive / "exports").mkdir(parents=True, exist_ok=True)
    for key in ("signed", "tampered", "resigned"):
        shutil.copy2(story.files[key], archive / "signed" / story.files[key].name)
    simulate(story.rows, story.cols, seed=99).save_as(archive / "unsigned" / "capture-unsigned.dcm")
    shutil.copy2(story.files["export"], archive / "exports" / story.files["export"].name)
    _synthetic_stand_in(archive / "exports" / "generated-1024.png", story.rows, story.cols)

    story.step("Scan the archive with every layer and write the HTML report")
    console.print(
        "    policy: the hospital signs at capture, so a trusted capture signature outweighs the detector;\n"
        "    without a signature, a detector that says synthetic decides (see docs/check.md)"
    )
    settings = Settings().with_overrides(
        check={"signature_outweighs_detector": True},
        trust={"ca": [str(story.workdir / "hospital-ca" / "ca.pem")]},
        watermark={"key": str(story.workdir / "site.wmk")},
        scan={"workers": 2},
    )
    report = story.workdir / "report.html"
    summary = scan_paths(
        [archive],
        settings,
        out=story.workdir / "results.jsonl",
        passphrase=story.passphrase,
        report=report,
    )
    story.report = report
    # What each file should get, and why:
    expected = {
        "capture-signed.dcm": "authentic",  # trusted capture signature, intact fragile mark
        "capture-tampered.dcm": "tampered",  # signature and fragile mark both broken
        "capture-resigned-untrusted.dcm": "tampered",  # a new signature cannot mend the fragile mark
        # A robust mark hints at origin but can be copied, so it never stands against the detector.
        "capture-export.jpg": "synthetic",
        "capture-unsigned.dcm": "synthetic",  # no provenance, and the phantom is indeed computer-made
        "generated-1024.png": "synthetic",  # a generator-like image made for the demo
    }
    for record in summary.records:
        name = Path(record.path).name
        verdict = str(record.verdict or record.status)
        reasons = record.fields.get("reasons") or [record.error or ""]
        story.record(Finding(name, "check", verdict, expected.get(name, "(not expected in the archive)"), reasons[0]))


def _summary(story: Story) -> bool:
    from rich.table import Table

    table = Table(title="radproof demo: what each check found", show_lines=False)
    table.add_column("file", overflow="fold", min_width=18)
    for column in ("check", "found", ""):
        table.add_column(column)
    for f in story.findings:
        found = f.found if f.ok else f"{f.found} (expected {f.expected})"
        mark = "[green]as expected[/]" if f.ok else "[bold red]WRONG[/]"
        table.add_row(shown(f.subject), shown(f.check), shown(found), mark)
    console.print(table)
    ok = all(f.ok for f in story.findings)
    elapsed = time.perf_counter() - story.started
    console.print(f"Working folder: {shown(story.workdir)}  ({elapsed:.1f} s)")
    if story.report is not None:
        console.print(f"HTML report: {shown(story.report)}")
    console.print("[bold green]Every check found what it should.[/]" if ok else "[bold red]Some checks were wrong.[/]")
    return ok


def run_demo(workdir: Path, *, rows: int = 1536, cols: int = 1280) -> Story:
    """Run the demo story in ``workdir`` and return its findings (used by the tests)."""
    workdir.mkdir(parents=True, exist_ok=True)
    # A random passphrase for the demo's throw-away keys; written so the user can reuse the keys.
    passphrase = secrets.token_urlsafe(18).encode()
    pw_file = workdir / "demo-passphrase.txt"
    pw_file.write_bytes(passphrase + b"\n")
    pw_file.chmod(0o600)
    story = Story(workdir=workdir, passphrase=passphrase, rows=rows, cols=cols)
    _story_capture(story)
    _story_forgeries(story)
    _story_verify(story)
    _story_export(story)
    _story_detector(story)
    _story_archive(story)
    return story


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        workdir: Path | None = typer.Option(
            None, "--workdir", help="Folder for the demo's files (default: a new temporary folder, kept)."
        ),
        size: str = typer.Option("1536x1280", help="Phantom size as ROWSxCOLS."),
    ) -> None:
        """The whole story on an embedded phantom: sign, watermark, tamper, detect, scan, report."""
        try:
            rows, cols = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise typer.BadParameter("size must look like 1536x1280") from None
        if not (64 <= rows <= 8192 and 64 <= cols <= 8192):
            raise typer.BadParameter("each side must be between 64 and 8192 pixels")
        folder = workdir or Path(tempfile.mkdtemp(prefix="radproof-demo-"))
        story = run_demo(folder, rows=rows, cols=cols)
        raise typer.Exit(int(Exit.OK) if _summary(story) else int(Exit.FAILED))
