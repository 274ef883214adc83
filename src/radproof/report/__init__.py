"""Verdicts -> one self-contained HTML report (inline CSS, images as data: URIs, inline SVG plots).

>>> from radproof.report import write_report
>>> write_report(records, "report.html")                    # records: check/scan JSON dicts
>>> write_report(records, "report.html", previews=folder)   # thumbnails kept by a scan

Patient identifiers (the ``patient`` block a scan keeps with --show-phi) are shown only when
``show_phi`` is true. The page loads nothing from the network.
"""

from __future__ import annotations

from radproof.report.html import build_report, write_report

__all__ = ["build_report", "write_report"]
