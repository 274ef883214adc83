"""``radproof detect``, ``evaluate``, ``train`` and ``adapt``: the deepfake detector's commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from radproof.cli._common import Exit, console, err_console, print_json_line, shown


def register(app: typer.Typer) -> None:
    app.command("detect")(detect_command)
    app.command("evaluate")(evaluate_command)
    app.command("train")(train_command)
    app.command("adapt")(adapt_command)


def detect_command(
    files: Annotated[
        list[Path], typer.Argument(help="Radiographs to examine (DICOM, PNG, JPEG, TIFF), or folders (recursive).")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per file (JSON Lines).")] = False,
    explain: Annotated[
        Path | None, typer.Option("--explain", help="Write a heatmap PNG per file into this folder.")
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="Detector folder (default: [detector] model of the configuration, else shipped)."),
    ] = None,
) -> None:
    """Estimate whether radiographs are AI-generated. Exit 1 when any is judged synthetic."""
    from radproof.detect import Detector
    from radproof.detect.explain import write_heatmap
    from radproof.errors import InputError

    if explain is not None:
        if explain.exists() and not explain.is_dir():
            raise InputError(f"--explain {explain} is not a folder")
        explain.mkdir(parents=True, exist_ok=True)
    if model is None:
        # The same detector as `check` and `scan`: [detector] model in the configuration, or
        # RADPROOF_DETECTOR__MODEL (what `radproof adapt` tells a site to set).
        from radproof.config import load_settings

        model = load_settings().detector.model
    detector = Detector.load(model)
    files = _expand_folders(files)
    used: set[str] = set()  # heatmap names: two a.png in different folders must not overwrite each other
    code = Exit.OK
    for path, result in zip(files, detector.detect_files(files), strict=True):
        if isinstance(result, InputError):
            code = Exit.USAGE
            if json_out:
                print_json_line({"path": str(path), "error": str(result)})
            else:
                err_console.print(f"[bold red]error:[/] {shown(result)}")
            continue
        if result.verdict == "synthetic" and code == Exit.OK:
            code = Exit.FAILED
        heat = write_heatmap(result, explain, _unique(path.name, used)) if explain is not None else None
        if json_out:
            print_json_line(result.to_dict())
            continue
        colour = {"real": "green", "synthetic": "red"}.get(result.verdict, "yellow")
        console.print(
            f"[bold]{shown(path)}[/]: [{colour}]{result.verdict}[/] "
            f"(synthetic probability {result.synthetic_probability:.2f})",
            soft_wrap=True,
        )
        for e in result.evidence[:3]:
            console.print(f"  - {shown(e['reference'])} ({e['direction']})", soft_wrap=True)
        for h in result.hints:
            console.print(f"  * {h.severity}: {shown(h.message)}", soft_wrap=True)
        if heat is not None:
            console.print(f"  heatmap: {shown(heat)}", soft_wrap=True)
    raise typer.Exit(int(code))


def _unique(name: str, used: set[str]) -> str:
    candidate, k = name, 1
    while candidate in used:
        k += 1
        candidate = f"{name}-{k}"
    used.add(candidate)
    return candidate


def _expand_folders(targets: list[Path]) -> list[Path]:
    """Files as given (a missing one is reported in turn); folders replaced by the images under them."""
    from radproof.imaging.folders import image_paths

    out: list[Path] = []
    for target in targets:
        out += image_paths([target]) if target.is_dir() else [target]
    return out


def evaluate_command(
    manifest: Annotated[Path, typer.Argument(help="CSV with path,label[,set,generator,body_part].")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")] = False,
    per_set: Annotated[
        int, typer.Option("--per-set", help="Images per set in the perturbation suite (0 skips it).")
    ] = 40,
    protocol: Annotated[
        bool, typer.Option("--protocol/--no-protocol", help="Leave-one-generator-out and leave-one-set-out folds.")
    ] = True,
    model: Annotated[Path | None, typer.Option("--model", help="Detector folder (default: the shipped one).")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Also write the tables as Markdown here.")] = None,
) -> None:
    """Detector metrics on labelled data: protocol folds, shipped-detector metrics, perturbation suite."""
    from radproof.detect.lab.report import render_markdown, run_evaluation

    results = run_evaluation(
        manifest, detector_dir=model, per_set=per_set, protocol=protocol, progress=None if json_out else _progress
    )
    if markdown is not None:
        from radproof.fileio import atomic_write_bytes

        atomic_write_bytes(markdown, render_markdown(results).encode("utf-8"))
    if json_out:
        print_json_line(results)
    else:
        console.print(render_markdown(results), markup=False, soft_wrap=True)  # set names are user text
    raise typer.Exit(int(Exit.OK))


def _progress(message: str) -> None:
    err_console.print(f"[dim]{shown(message)}[/]")


def train_command(
    manifest: Annotated[Path, typer.Argument(help="CSV with path,label[,set,generator,body_part].")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for detector.json (+ detector.onnx).")],
    cnn: Annotated[
        bool, typer.Option("--cnn/--no-cnn", help="Also train the learned model (needs the train extra).")
    ] = False,
    model_file: Annotated[
        Path | None, typer.Option("--model-file", help="Use this trained ONNX network instead of training one.")
    ] = None,
    pairs: Annotated[
        Path | None, typer.Option("--pairs", help="Prepared training pairs (.npz) for the network.")
    ] = None,
    taef2: Annotated[
        Path | None, typer.Option("--taef2", help="Folder with taef2_encoder.pth / taef2_decoder.pth.")
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs of the network.")] = 160,
    autoencoder_steps: Annotated[
        int,
        typer.Option("--autoencoder-steps", help="Training steps of each small autoencoder (decoder family)."),
    ] = 1500,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            help="torch device for training (cpu, cuda); the default recipe wants a GPU (minutes, not hours).",
        ),
    ] = "cpu",
) -> None:
    """Rebuild the detector from a manifest: real reference statistics, calibration, optional network."""
    from radproof.detect.lab.training import train_detector

    summary: dict[str, Any] = train_detector(
        manifest,
        output,
        cnn=cnn,
        model_file=model_file,
        pairs=pairs,
        taef2=taef2,
        epochs=epochs,
        autoencoder_steps=autoencoder_steps,
        device=device,
        progress=_progress,
    )
    console.print(json.dumps(summary, indent=2, ensure_ascii=True), markup=False, soft_wrap=True)
    raise typer.Exit(int(Exit.OK))


def adapt_command(
    paths: Annotated[list[Path], typer.Argument(help="Real radiographs of the site: files or folders (recursive).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the adapted detector.")],
    model: Annotated[
        Path | None, typer.Option("--model", help="Detector folder to adapt (default: the shipped one).")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Name of the site (recorded in the detector).")] = "site",
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Commission the detector at a site: refit it with the site's own real radiographs.

    Give at least 20 images (40 or more from each processing chain is better), all known to be real.
    The network is kept; reference and calibration are refitted.

    Use the result with `radproof detect --model DIR`, or set \\[detector] model in the configuration.
    """
    from radproof.detect.lab.adapt import adapt_detector

    def progress(k: int, n: int) -> None:
        if not json_out and k and k % 50 == 0:
            _progress(f"  {k}/{n} images measured")

    summary = adapt_detector(paths, output, base=model, site=name, progress=progress)
    if json_out:
        print_json_line(summary)
        raise typer.Exit(int(Exit.OK))
    console.print(
        f"adapted detector written to [bold]{shown(output)}[/]: {summary['used']} of {summary['images']} "
        f"images of {shown(name)} used",
        soft_wrap=True,
    )
    console.print(
        f"  site images judged synthetic (at {summary['judged_at']} px, where most of them are judged): "
        f"{summary['site_flagged_before']:.1%} before, "
        f"{summary['site_flagged_after']:.1%} after (images the fit has seen)",
        soft_wrap=True,
    )
    unseen = summary["site_flagged_unseen"]
    if unseen is not None:
        console.print(
            f"  site images judged synthetic by a detector adapted on the other half of them (the estimate "
            f"for new images of the site): {unseen:.1%}",
            soft_wrap=True,
        )
    console.print(
        f"  development fakes judged synthetic: {summary['development_fakes_flagged_before']:.1%} before, "
        f"{summary['development_fakes_flagged_after']:.1%} after",
        soft_wrap=True,
    )
    for skipped in summary["skipped"]:
        err_console.print(f"  skipped {shown(skipped['path'])}: {shown(skipped['reason'])}", soft_wrap=True)
    raise typer.Exit(int(Exit.OK))
