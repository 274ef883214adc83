"""Inline SVG plots for the HTML report (no plotting library, no network at view time)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import escape

#: Colours of the verdicts, shared by the plots and the page's CSS.
VERDICT_COLORS = {
    "authentic": "#1a7f37",
    "unverified": "#6e7781",
    "suspect": "#bf8700",
    "synthetic": "#8250df",
    "tampered": "#cf222e",
    "error": "#24292f",
}
ORDER = ["authentic", "unverified", "suspect", "synthetic", "tampered", "error"]


def score_histogram(scores_by_verdict: Mapping[str, Sequence[float]], *, bins: int = 20) -> str:
    """A stacked histogram of detector probabilities (0..1), coloured by verdict, as an SVG string."""
    width, height, left, bottom, top = 560, 220, 40, 30, 10
    counts = {v: [0] * bins for v in ORDER}
    for verdict, scores in scores_by_verdict.items():
        row = counts.setdefault(verdict, [0] * bins)
        for s in scores:
            row[min(bins - 1, max(0, int(float(s) * bins)))] += 1
    totals = [sum(row[i] for row in counts.values()) for i in range(bins)]
    peak = max(totals) if totals and max(totals) > 0 else 1
    plot_w, plot_h = width - left - 10, height - bottom - top
    bar_w = plot_w / bins
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="Distribution of synthetic probability">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
    ]
    for i in range(bins):
        y = float(top + plot_h)
        for verdict in [*ORDER, *(v for v in counts if v not in ORDER)]:
            n = counts.get(verdict, [0] * bins)[i]
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            color = VERDICT_COLORS.get(verdict, "#57606a")
            parts.append(
                f'<rect x="{left + i * bar_w + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{escape(verdict)}: {n}</title></rect>'
            )
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + plot_w * tick
        parts.append(f'<text x="{x:.1f}" y="{height - 10}" font-size="11" text-anchor="middle">{tick:.2f}</text>')
    parts.append(f'<text x="{left - 6}" y="{top + 10}" font-size="11" text-anchor="end">{peak}</text>')
    parts.append(f'<text x="{left - 6}" y="{top + plot_h}" font-size="11" text-anchor="end">0</text>')
    parts.append("</svg>")
    return "".join(parts)


def verdicts_by_source(counts: Mapping[str, Mapping[str, int]]) -> str:
    """Horizontal stacked bars: one per source folder, segments per verdict, as an SVG string."""
    rows = list(counts.items())[:40]
    label_w, bar_w, row_h = 220, 320, 22
    height = max(1, len(rows)) * row_h + 10
    width = label_w + bar_w + 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="Verdicts by source folder">'
    ]
    for r, (source, by_verdict) in enumerate(rows):
        total = sum(by_verdict.values()) or 1
        y = 5 + r * row_h
        label = source if len(source) <= 34 else "…" + source[-33:]
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">{escape(label)}</text>')
        x = float(label_w)
        for verdict in [*ORDER, *(v for v in by_verdict if v not in ORDER)]:
            n = by_verdict.get(verdict, 0)
            if not n:
                continue
            w = bar_w * n / total
            color = VERDICT_COLORS.get(verdict, "#57606a")
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" fill="{color}">'
                f"<title>{escape(verdict)}: {n}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 14}" font-size="11">{total}</text>')
    parts.append("</svg>")
    return "".join(parts)
