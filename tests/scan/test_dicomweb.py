"""Scanning a DICOMweb server (QIDO-RS + WADO-RS) against a real Orthanc with its DICOMweb plugin."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from scan_helpers import SizeProcessor

from radproof.config import load_settings
from radproof.errors import InputError
from radproof.scan import read_records, scan_paths
from radproof.scan.dicomweb import list_instances, multipart_parts

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[bytes]]]:
    """Orthanc on loopback with DICOMweb, holding three phantom instances; yields (base URL, their bytes)."""
    if not Path(ORTHANC).exists() or not PLUGIN.exists():
        pytest.skip("Orthanc with its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb)")
    from radproof.imaging.phantom import simulate

    root = tmp_path_factory.mktemp("orthanc")
    http, dicom = free_port(), free_port()
    config = {
        "Name": "radproof-test",
        "StorageDirectory": str(root / "db"),
        "IndexDirectory": str(root / "db"),
        "HttpPort": http,
        "DicomPort": dicom,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    log = (root / "orthanc.log").open("wb")
    proc = subprocess.Popen([ORTHANC, str(root / "orthanc.json")], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/system", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Orthanc did not start: {(root / 'orthanc.log').read_text()[-2000:]}")
                time.sleep(0.2)
        blobs = []
        for seed in range(3):
            path = root / f"p{seed}.dcm"
            simulate(rows=96, cols=80, seed=seed).save_as(path, enforce_file_format=True)
            blobs.append(path.read_bytes())
            req = urllib.request.Request(f"{base}/instances", data=blobs[-1], method="POST")
            urllib.request.urlopen(req, timeout=10).read()
        yield f"{base}/dicom-web", blobs
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_qido_lists_every_instance_with_paging(orthanc: tuple[str, list[bytes]]) -> None:
    base, blobs = orthanc
    items = list(list_instances(f"dicomweb+{base}", page=2))
    assert len(items) == len(blobs) == len({i.locator for i in items})
    assert all(i.locator.startswith(f"{base}/studies/") and i.source == base for i in items)


def test_scan_fetches_with_wado_and_resumes(orthanc: tuple[str, list[bytes]], tmp_path: Path) -> None:
    base, blobs = orthanc
    out = tmp_path / "remote.jsonl"
    summary = scan_paths([f"dicomweb+{base}"], load_settings(), out=out, workers=2, processor=SizeProcessor())
    assert summary.found == 3 and summary.checked == 3 and summary.errors == 0
    hashes = {r["sha256"] for r in read_records(out)}
    # Orthanc serves back exactly the bytes it received.
    assert hashes == {hashlib.sha256(b).hexdigest() for b in blobs}
    again = scan_paths([f"dicomweb+{base}"], load_settings(), out=out, workers=1, processor=SizeProcessor())
    assert again.checked == 0 and again.resumed == 3


def test_full_check_over_dicomweb(orthanc: tuple[str, list[bytes]], tmp_path: Path) -> None:
    base, _ = orthanc
    summary = scan_paths([f"dicomweb+{base}"], load_settings(), out=tmp_path / "r.jsonl", workers=1)
    assert summary.errors == 0 and sum(summary.verdicts.values()) == 3
    record = summary.records[0]
    assert record["signature"]["status"] == "unsigned" and record["format"] == "dicom"


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot reach the DICOMweb server"):
        scan_paths([f"dicomweb+http://127.0.0.1:{free_port()}/dicom-web"], load_settings(), out=tmp_path / "x.jsonl")


def test_multipart_parsing() -> None:
    body = (
        b"--xyz\r\nContent-Type: application/dicom\r\n\r\nDATA1\r\n"
        b"--xyz\r\nContent-Type: application/dicom\r\n\r\nDATA2\r\n--xyz--\r\n"
    )
    assert multipart_parts(body, 'multipart/related; type="application/dicom"; boundary=xyz') == [b"DATA1", b"DATA2"]
    with pytest.raises(InputError):
        multipart_parts(body, "application/json")
