"""``radproof demo``: the whole story on an embedded phantom, in a working folder.

A hospital CA and a technologist are created, a capture is simulated and signed, a tampered copy
and a copy re-signed with an untrusted key are made, and every file is verified. Each step prints
what it did and what radproof found; the command exits 0 only when every finding is the expected one.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from radproof.cli._common import Exit, console


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
    started: float = field(default_factory=time.perf_counter)

    def step(self, text: str) -> None:
        console.print(f"[bold cyan]>[/] {text}")

    def record(self, finding: Finding) -> None:
        self.findings.append(finding)
        mark = "[green]as expected[/]" if finding.ok else f"[bold red]expected {finding.expected}[/]"
        console.print(f"    {finding.subject}: {finding.check} -> [bold]{finding.found}[/] ({mark}) {finding.detail}")


def _fracture_line(pixels: Any, rows: int, cols: int) -> Any:
    """Paste a thin bright oblique line over a rib: a crude forged 'fracture' edit."""
    import numpy as np

    edited = pixels.copy()
    r0, c0 = int(rows * 0.42), int(cols * 0.22)
    for t in range(int(cols * 0.08)):
        r, c = r0 + t // 2, c0 + t
        edited[r : r + 2, c] = np.minimum(edited[r : r + 2, c].astype(np.int64) + 900, (1 << 14) - 1)
    return edited


def _story_signatures(story: Story) -> None:
    import pydicom

    from radproof.imaging.phantom import simulate
    from radproof.provenance import (
        Purpose,
        Role,
        TrustStore,
        init_ca,
        issue_identity,
        load_identity,
        sign_dataset,
        verify_file,
    )

    work, pw = story.workdir, story.passphrase
    story.step("A hospital CA and a technologist identity (RSA-3072, keys encrypted at rest)")
    init_ca(work / "hospital-ca", "Demo Hospital Imaging CA", pw)
    issue_identity(work / "technologist", work / "hospital-ca", "Demo Technologist", Role.TECHNOLOGIST, pw, pw)
    tech = load_identity(work / "technologist", pw)

    story.step(f"Capture: a simulated {story.rows} x {story.cols} chest radiograph (14-bit DX phantom)")
    capture = simulate(story.rows, story.cols, seed=2026)
    story.step("The technologist signs the capture (DICOM PS3.15, purpose: source)")
    sign_dataset(capture, tech, Purpose.SOURCE)
    signed = work / "capture-signed.dcm"
    capture.save_as(signed, enforce_file_format=True)
    story.files["signed"] = signed

    story.step('A forger pastes a "fracture" line into the signed image, keeping the signature')
    forged = pydicom.dcmread(signed)
    import numpy as np

    pixels = forged.pixel_array
    forged.PixelData = np.asarray(_fracture_line(pixels, story.rows, story.cols), dtype=np.uint16).tobytes()
    tampered = work / "capture-tampered.dcm"
    forged.save_as(tampered)
    story.files["tampered"] = tampered

    story.step("The forger re-signs the edited image with a key of their own (not issued by the hospital)")
    init_ca(work / "forger-ca", "Forger CA", pw)
    issue_identity(work / "forger", work / "forger-ca", "Demo Technologist", Role.TECHNOLOGIST, pw, pw)
    forger = load_identity(work / "forger", pw)
    resigned_ds = pydicom.dcmread(tampered)
    del resigned_ds[0xFFFAFFFA]
    if 0x4FFE0001 in resigned_ds:
        del resigned_ds[0x4FFE0001]
    sign_dataset(resigned_ds, forger, Purpose.SOURCE)
    resigned = work / "capture-resigned-untrusted.dcm"
    resigned_ds.save_as(resigned)
    story.files["resigned"] = resigned

    story.step("Verify all three against the hospital CA")
    trust = TrustStore.from_files(work / "hospital-ca" / "ca.pem")
    expected = {"signed": "valid", "tampered": "invalid", "resigned": "invalid"}
    for key, path in (("signed", signed), ("tampered", tampered), ("resigned", resigned)):
        result = verify_file(path, trust).to_dict()
        sigs = result.get("signatures", [])
        reason = "; ".join(str(s.get("reason")) for s in sigs if s.get("reason")) or ""
        signer = ", ".join(f"{s.get('signer')} ({s.get('role')})" for s in sigs)
        story.record(
            Finding(path.name, "signature", str(result["status"]), expected[key], reason or f"signed by {signer}")
        )


def _summary(story: Story) -> bool:
    from rich.table import Table

    table = Table(title="radproof demo: what each check found", show_lines=False)
    for column in ("file", "check", "found", "expected", ""):
        table.add_column(column)
    for f in story.findings:
        table.add_row(f.subject, f.check, f.found, f.expected, "[green]ok[/]" if f.ok else "[bold red]WRONG[/]")
    console.print(table)
    ok = all(f.ok for f in story.findings)
    elapsed = time.perf_counter() - story.started
    console.print(f"Working folder: {story.workdir}  ({elapsed:.1f} s)")
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
    _story_signatures(story)
    return story


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        workdir: Path | None = typer.Option(
            None, "--workdir", help="Folder for the demo's files (default: a new temporary folder, kept)."
        ),
        size: str = typer.Option("1536x1280", help="Phantom size as ROWSxCOLS."),
    ) -> None:
        """Run the whole story on an embedded phantom: sign, tamper, verify."""
        try:
            rows, cols = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise typer.BadParameter("size must look like 1536x1280") from None
        if not (64 <= rows <= 8192 and 64 <= cols <= 8192):
            raise typer.BadParameter("each side must be between 64 and 8192 pixels")
        folder = workdir or Path(tempfile.mkdtemp(prefix="radproof-demo-"))
        story = run_demo(folder, rows=rows, cols=cols)
        raise typer.Exit(int(Exit.OK) if _summary(story) else int(Exit.FAILED))
