"""STOW-RS through the gateway: stored, held and refused instances each reported, none silently."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi.testclient import TestClient

from radproof.gateway.server import Gateway
from radproof.gateway.stow import create_app

from .conftest import Captures, Orthanc
from .test_proxy import settings_for, wait_for


def _multipart(*files: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + f.read_bytes() + b"\r\n"
        for f in files
    )
    return (
        body + b"--" + boundary.encode() + b"--\r\n",
        f'multipart/related; type="application/dicom"; boundary={boundary}',
    )


def test_stow_reports_every_refused_instance_with_a_reason(
    tmp_path: Path, orthanc: Orthanc, captures: Captures
) -> None:
    orthanc.clear()
    gateway = Gateway(settings_for(tmp_path, orthanc, captures))
    gateway.start()
    try:
        client = TestClient(create_app(gateway))
        body, kind = _multipart(captures.signed, captures.unsigned, captures.tampered)
        answer = client.post("/studies", content=body, headers={"Content-Type": kind})
        assert answer.status_code == 202 and answer.headers["content-type"].startswith("application/dicom+json")
        stored = answer.json()["00081199"]["Value"]
        failed = answer.json()["00081198"]["Value"]
        assert [s["00081155"]["Value"][0] for s in stored] == [captures.signed_uid]
        reasons = sorted(f["00000902"]["Value"][0] for f in failed)
        assert len(failed) == 2 and all(f["00081197"]["Value"][0] == 0xC000 for f in failed)
        assert reasons[0].startswith("held in the quarantine") and "refused" in reasons[1]
        assert wait_for(lambda: orthanc.instance_uids() == {captures.signed_uid})
        # Nothing acceptable at all: 409; not multipart: 415.
        body, kind = _multipart(captures.unsigned)
        assert client.post("/studies", content=body, headers={"Content-Type": kind}).status_code == 409
        assert client.post("/studies", content=b"x", headers={"Content-Type": "application/dicom"}).status_code == 415
        wrong_study, kind = _multipart(captures.signed)
        assert client.post("/studies/1.2.3", content=wrong_study, headers={"Content-Type": kind}).status_code == 409
    finally:
        gateway.stop()


def test_the_gateway_command_serves_stow_beside_dicom(tmp_path: Path, orthanc: Orthanc, captures: Captures) -> None:
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    from .conftest import free_port, gateway_config

    orthanc.clear()
    dicom, web = free_port(), free_port()
    config = gateway_config(
        tmp_path / "gw.toml",
        captures.ca,
        upstream={"port": orthanc.dicom_port},
        port=dicom,
        stow_port=web,
        spool="spool",
        quarantine="quarantine",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADPROOF_")}
    process = subprocess.Popen([sys.executable, "-m", "radproof", "gateway", "--config", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        body, kind = _multipart(captures.signed)
        request = urllib.request.Request(f"http://127.0.0.1:{web}/studies", data=body, headers={"Content-Type": kind})

        def posted() -> bool:
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        assert wait_for(posted, timeout=30)
        assert wait_for(lambda: orthanc.instance_uids() == {captures.signed_uid})
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
