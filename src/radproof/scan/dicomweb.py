"""A small DICOMweb client for scans: list instances with QIDO-RS, fetch each with WADO-RS.

A server is named ``dicomweb+http://HOST:PORT/dicom-web`` on the command line. Listing pages
through ``/instances`` with ``limit``/``offset``; each instance becomes a
:class:`~radproof.scan.discover.ScanItem` whose locator is its WADO-RS URL, fetched by the worker
that checks it (so a Dask worker downloads what it checks). Only the standard library is used.
Authentication is not supported yet: scan a read-only endpoint reachable without credentials.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from radproof.errors import InputError
from radproof.scan.discover import DICOMWEB_PREFIXES, ScanItem

PAGE = 500
TIMEOUT_S = 60.0

_STUDY, _SERIES, _SOP = "0020000D", "0020000E", "00080018"


def base_url(target: str) -> str:
    """``dicomweb+http://h/p`` -> ``http://h/p`` (no trailing slash)."""
    for prefix in DICOMWEB_PREFIXES:
        if target.startswith(prefix):
            return target[len("dicomweb+") :].rstrip("/")
    if target.startswith(("http://", "https://")):
        return target.rstrip("/")
    raise InputError(f"{target}: a DICOMweb server is given as dicomweb+http://HOST:PORT/PATH")


def list_instances(target: str, *, page: int = PAGE) -> Iterator[ScanItem]:
    """Every instance on the server, as WADO-RS URLs, via QIDO-RS ``/instances`` (paged)."""
    base = base_url(target)
    offset = 0
    seen: set[str] = set()
    while True:
        query = urllib.parse.urlencode({"limit": page, "offset": offset, "includefield": "00080016"})
        rows = _get_json(f"{base}/instances?{query}")
        if not rows:
            return
        new = 0
        for row in rows:
            study, series, sop = (_value(row, t) for t in (_STUDY, _SERIES, _SOP))
            if not (study and series and sop):
                continue
            url = f"{base}/studies/{study}/series/{series}/instances/{sop}"
            if url in seen:
                continue
            seen.add(url)
            new += 1
            yield ScanItem(locator=url, source=base)
        if len(rows) < page or new == 0:
            return
        offset += len(rows)


def fetch_instance(url: str, *, max_bytes: int) -> bytes:
    """One instance as Part 10 bytes (WADO-RS, ``multipart/related; type="application/dicom"``)."""
    if not url.startswith(("http://", "https://")):
        raise InputError(f"{url}: not an http(s) URL")
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    request = urllib.request.Request(url, headers={"Accept": accept})  # noqa: S310 (http(s) checked above)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (only http(s) URLs)
            content_type = response.headers.get("Content-Type", "")
            body: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise InputError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise InputError(f"{url}: cannot reach the DICOMweb server ({_why(exc)})") from None
    if len(body) > max_bytes:
        raise InputError(f"{url}: instance is larger than the limit of {max_bytes} bytes")
    if content_type.lower().startswith("application/dicom"):
        return body
    parts = multipart_parts(body, content_type)
    if not parts:
        raise InputError(f"{url}: the server's answer holds no DICOM part")
    return parts[0]


def multipart_parts(body: bytes, content_type: str) -> list[bytes]:
    """The bodies of a ``multipart/related`` message (RFC 2046), headers removed."""
    boundary = None
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        raise InputError(f"DICOMweb answer is not multipart (Content-Type {content_type!r})")
    delimiter = b"--" + boundary.encode("latin-1")
    parts: list[bytes] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        _head, sep, payload = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        if payload.endswith(b"\r\n"):
            payload = payload[:-2]
        parts.append(payload)
    return parts


def _get_json(url: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Accept": "application/dicom+json"})  # noqa: S310 (base_url: http(s))
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (only http(s) URLs)
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise InputError(f"{url}: the DICOMweb server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise InputError(f"cannot reach the DICOMweb server at {url} ({_why(exc)})") from None
    if not raw.strip():
        return []
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise InputError(f"{url}: the answer is not DICOM JSON") from None
    if not isinstance(data, list):
        raise InputError(f"{url}: the answer is not a list of DICOM JSON objects")
    return [row for row in data if isinstance(row, dict)]


def _value(row: dict[str, Any], tag: str) -> str | None:
    element = row.get(tag) or row.get(tag.lower())
    if not isinstance(element, dict):
        return None
    values = element.get("Value")
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    return None


def _why(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)[:160]
