"""Building the HTML report from check records with Jinja2 templates (package data)."""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from radproof import __version__
from radproof.fileio import atomic_write_bytes
from radproof.report import images, plots

Previews = Path | Mapping[str, Mapping[str, bytes]] | None

_SEVERITY = {"tampered": 0, "synthetic": 1, "error": 2, "suspect": 3, "unverified": 4, "authentic": 5}


def build_report(
    records: Iterable[Mapping[str, Any]],
    *,
    show_phi: bool = False,
    previews: Previews = None,
    max_details: int = 200,
    title: str = "radproof report",
) -> str:
    """The report page as a string (see :func:`write_report`)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    rows = [_row(dict(r), show_phi=show_phi) for r in records]
    rows.sort(key=lambda r: (_SEVERITY.get(r["verdict"], 9), r["path"]))
    counts = Counter(r["verdict"] for r in rows)
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    scores: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by_source[r["source"]][r["verdict"]] += 1
        if r["probability"] is not None:
            scores[r["verdict"]].append(r["probability"])
    for i, r in enumerate(rows):
        pics = _previews_for(r, previews)
        if "thumb" not in pics and i < max(max_details, 500):
            pics.update(_render_thumbnail(r["path"]))
        r["images"] = {name: images.data_uri(data) for name, data in pics.items()}
        r["detail"] = i < max_details

    env = Environment(
        loader=PackageLoader("radproof.report", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template("report.html")
    return template.render(
        title=title,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        rows=rows,
        total=len(rows),
        counts=[(v, counts.get(v, 0)) for v in plots.ORDER if counts.get(v, 0)]
        + [(v, n) for v, n in counts.items() if v not in plots.ORDER],
        failed=sum(1 for r in rows if r["passed"] is False),
        colors=plots.VERDICT_COLORS,
        histogram=plots.score_histogram(scores) if scores else None,
        sources=plots.verdicts_by_source(by_source) if len(by_source) >= 1 else None,
        show_phi=show_phi,
        hidden_details=max(0, len(rows) - max_details),
    )


def write_report(
    records: Iterable[Mapping[str, Any]],
    out_path: str | os.PathLike[str],
    *,
    show_phi: bool = False,
    previews: Previews = None,
    max_details: int = 200,
    title: str = "radproof report",
) -> Path:
    """Write one self-contained HTML file summarising check records.

    Parameters
    ----------
    records
        Check records (``Verdict.to_dict()`` or lines of a scan's JSON Lines file).
    out_path
        The HTML file to write (atomically).
    show_phi
        Show the patient identifiers a record carries (``patient`` block); hidden otherwise.
    previews
        Thumbnails and overlays: a scan's previews folder (files ``<sha256>.<name>.png``), or a
        mapping path -> {name: PNG bytes}. Images without one get a thumbnail rendered from
        their file, when it can be read.
    max_details
        Images that get a detail section, most serious first.
    """
    html = build_report(records, show_phi=show_phi, previews=previews, max_details=max_details, title=title)
    return atomic_write_bytes(out_path, html.encode("utf-8"))


def _row(rec: dict[str, Any], *, show_phi: bool) -> dict[str, Any]:
    status = rec.get("status", "ok")
    verdict = str(rec.get("verdict")) if status == "ok" and rec.get("verdict") else "error"
    path = str(rec.get("path", ""))
    detector = rec.get("detector") or None
    prob = None
    if isinstance(detector, Mapping) and detector.get("synthetic_probability") is not None:
        try:
            prob = float(detector["synthetic_probability"])
        except (TypeError, ValueError):
            prob = None
    signature = rec.get("signature") or None
    signers = []
    if isinstance(signature, Mapping):
        signers = [s.get("signer") for s in signature.get("signatures") or () if isinstance(s, Mapping)]
    watermark = rec.get("watermark") or None
    blocks = watermark.get("tampered_blocks") if isinstance(watermark, Mapping) else None
    return {
        "path": path,
        "name": _name(path),
        "folder": _folder(path),
        "source": str(rec.get("source") or _folder(path) or "."),
        "sha256": rec.get("sha256"),
        "verdict": verdict,
        "passed": rec.get("passed"),
        "reasons": list(rec.get("reasons") or ([rec["error"]] if rec.get("error") else [])),
        "error": rec.get("error"),
        "signature": signature,
        "signers": ", ".join(str(s) for s in signers if s),
        "watermark": watermark,
        "tampered_count": blocks if isinstance(blocks, int) else len(blocks) if blocks else 0,
        "detector": detector,
        "probability": prob,
        "declared_synthetic": rec.get("declared_synthetic"),
        "layer_errors": rec.get("errors") or {},
        "patient": rec.get("patient") if show_phi else None,
        "shape": rec.get("shape"),
        "format": rec.get("format"),
    }


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or path


def _folder(path: str) -> str:
    if path.startswith(("http://", "https://")):
        return path.split("/studies/", 1)[0]
    return str(Path(path).parent)


def _previews_for(row: Mapping[str, Any], previews: Previews) -> dict[str, bytes]:
    if previews is None:
        return {}
    if isinstance(previews, Path | str):
        folder = Path(previews)
        sha = row.get("sha256")
        out: dict[str, bytes] = {}
        if not isinstance(sha, str) or not folder.is_dir():
            return out
        for name in ("thumb", "heatmap", "tamper"):
            p = folder / f"{sha}.{name}.png"
            if p.is_file():
                out[name] = p.read_bytes()
        return out
    return dict(previews.get(str(row.get("path")), {}))


def _render_thumbnail(path: str) -> dict[str, bytes]:
    """A thumbnail rendered from the file itself, for records that came without previews."""
    if not path or path.startswith(("http://", "https://")) or not Path(path).is_file():
        return {}
    from radproof.errors import RadproofError
    from radproof.imaging import load
    from radproof.imaging.overlays import png

    try:
        return {"thumb": png(images.thumbnail(load(path)))}
    except (RadproofError, ValueError, OSError):
        return {}
