"""STOW-RS in front of the archive (DICOMweb, PS3.18 10.5): ``POST /studies`` through the gateway's policy.

Each instance of the ``multipart/related; type="application/dicom"`` body goes through
:meth:`Gateway.receive <radproof.gateway.server.Gateway.receive>` like a C-STORE. The answer lists
what will reach the archive in Referenced SOP Sequence (0008,1199) and every other instance in Failed
SOP Sequence (0008,1198) with a Failure Reason (0008,1197) and, in Error Comment (0000,0902), why
(held in the quarantine, refused, or not readable): a client is never told "stored" for an image
the archive will not have. HTTP 200 when all were accepted, 202 when some were not, 409 when none.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pydicom
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from radproof.gateway.decision import CANNOT_UNDERSTAND, OUT_OF_RESOURCES
from radproof.gateway.journal import State
from radproof.gateway.server import Gateway

#: Largest request body accepted (the whole multipart message).
MAX_BODY = 2 * 1024**3
_HELD = (State.QUARANTINED, State.REJECTED)


def create_app(gateway: Gateway, *, calling_ae: str = "STOW-RS") -> FastAPI:
    """The STOW-RS application for ``gateway`` (serve it with uvicorn; the web app mounts it later)."""
    app = FastAPI(title="radproof STOW-RS", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/studies")
    @app.post("/studies/{study}")
    async def store(request: Request, study: str | None = None) -> JSONResponse:
        parts = _parts(request.headers.get("content-type", ""), await _body(request))
        referenced: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for data in parts:
            item, ok = _one(gateway, data, calling_ae, study)
            (referenced if ok else failed).append(item)
        answer: dict[str, Any] = {}
        if referenced:
            answer["00081199"] = {"vr": "SQ", "Value": referenced}
        if failed:
            answer["00081198"] = {"vr": "SQ", "Value": failed}
        code = 200 if not failed else (202 if referenced else 409)
        return JSONResponse(answer, status_code=code, media_type="application/dicom+json")

    return app


async def _body(request: Request) -> bytes:
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_BODY:
        raise HTTPException(413, "the request is larger than the gateway accepts")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY:
            raise HTTPException(413, "the request is larger than the gateway accepts")
        chunks.append(chunk)
    return b"".join(chunks)


def _parts(content_type: str, body: bytes) -> list[bytes]:
    """The bodies of a multipart/related message's parts (their headers dropped)."""
    if not content_type.lower().startswith("multipart/related"):
        raise HTTPException(415, 'send multipart/related; type="application/dicom"')
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if found is None:
        raise HTTPException(400, "the multipart/related content type names no boundary")
    delimiter = b"--" + found.group(1).encode("latin-1")
    out = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, payload = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        if b"application/dicom" not in head.lower() and b"content-type" in head.lower():
            continue
        out.append(payload[:-2] if payload.endswith(b"\r\n") else payload)
    if not out:
        raise HTTPException(400, "the request holds no application/dicom part")
    return out


def _one(gateway: Gateway, data: bytes, calling_ae: str, study: str | None) -> tuple[dict[str, Any], bool]:
    try:
        ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), force=True)
    except Exception:
        return _item("", "", CANNOT_UNDERSTAND, "not a DICOM instance"), False
    sop_class, uid = str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", "")).strip()
    if study is not None and str(ds.get("StudyInstanceUID", "")) != study:
        return _item(sop_class, uid, 0xA900, "the instance belongs to another study than the URL names"), False
    status = gateway.receive(ds, data, calling_ae)
    code = int(status.Status)
    if code != 0x0000:
        comment = str(status.get("ErrorComment", "")) or ("spool full" if code == OUT_OF_RESOURCES else "refused")
        return _item(sop_class, uid, code, comment), False
    sha = hashlib.sha256(data).hexdigest()
    entry = next((e for e in gateway.journal.find(uid) if e.sha256 == sha), None)
    if entry is not None and entry.state in _HELD:
        return _item(sop_class, uid, 0xC000, f"held in the quarantine: {entry.reason}"), False
    return _item(sop_class, uid, None, None), True


def _item(sop_class: str, uid: str, failure: int | None, why: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "00081150": {"vr": "UI", "Value": [sop_class]} if sop_class else {"vr": "UI"},
        "00081155": {"vr": "UI", "Value": [uid]} if uid else {"vr": "UI"},
    }
    if failure is not None:
        item["00081197"] = {"vr": "US", "Value": [failure]}
        item["00000902"] = {"vr": "LO", "Value": [(why or "")[:64]]}
    return item
