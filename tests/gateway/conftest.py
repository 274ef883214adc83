"""A real Orthanc (Debian's package) on the loopback, a small PKI, and signed and unsigned captures."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from radproof.imaging.phantom import simulate
from radproof.provenance import Role, init_ca, issue_identity, load_identity, sign_dataset

PW = b"gateway test passphrase"
ORTHANC_AE = "ORTHANC"
GATEWAY_AE = "RADPROOF"
STORESCU = "/usr/bin/storescu"  # DCMTK's, not the console script pynetdicom puts in the venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Orthanc:
    """An Orthanc server started for the tests: its DICOM port, its REST address, and its process."""

    dicom_port: int
    http_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, *, extra: dict[str, object] | None = None, env: dict[str, str] | None = None) -> None:
        """Start Orthanc (``extra``: more configuration, plugins; ``env``: its environment)."""
        orthanc = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        config: dict[str, object] = {
            "Name": "radproof-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": ORTHANC_AE,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAlwaysAllowFind": True,
            "DicomModalities": {"radproof": [GATEWAY_AE, "127.0.0.1", 104]},
            "Plugins": [],
            **(extra or {}),
        }
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config))
        log = (self.folder / "orthanc.log").open("ab")
        self.process = subprocess.Popen([orthanc, str(path)], stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                self.get("/system")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"Orthanc did not start:\n{(self.folder / 'orthanc.log').read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def get(self, route: str) -> object:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{route}", timeout=5) as answer:
            return json.loads(answer.read())

    def instance_uids(self) -> set[str]:
        uids = set()
        for instance in self.get("/instances?expand") or []:  # type: ignore[union-attr]
            uids.add(str(instance["MainDicomTags"]["SOPInstanceUID"]))  # type: ignore[index]
        return uids

    def clear(self) -> None:
        for instance in self.get("/instances") or []:  # type: ignore[union-attr]
            request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/instances/{instance}", method="DELETE")
            urllib.request.urlopen(request, timeout=5).close()


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    if not (shutil.which("Orthanc") or Path("/usr/sbin/Orthanc").exists()):
        pytest.skip("Orthanc is not installed (apt-get install orthanc)")
    server = Orthanc(free_port(), free_port(), tmp_path_factory.mktemp("orthanc"))
    server.start()
    yield server
    server.stop()


@dataclass(frozen=True)
class Captures:
    ca: Path
    signed: Path
    unsigned: Path
    tampered: Path

    @property
    def signed_uid(self) -> str:
        return str(pydicom.dcmread(self.signed, stop_before_pixels=True).SOPInstanceUID)


@pytest.fixture(scope="session")
def captures(tmp_path_factory: pytest.TempPathFactory) -> Captures:
    root = tmp_path_factory.mktemp("captures")
    init_ca(root / "ca", "Gateway Test CA", PW, key_bits=2048)
    issue_identity(root / "tech", root / "ca", "J. Smith, RT", Role.TECHNOLOGIST, PW, PW, key_bits=2048)
    tech = load_identity(root / "tech", PW)
    signed = simulate(256, 256, seed=11)
    sign_dataset(signed, tech)
    signed.save_as(root / "signed.dcm", enforce_file_format=True)
    simulate(256, 256, seed=12).save_as(root / "unsigned.dcm", enforce_file_format=True)
    tampered = simulate(256, 256, seed=13)
    sign_dataset(tampered, tech)
    tampered.PatientID = "SOMEONE-ELSE"  # changed after signing
    tampered.save_as(root / "tampered.dcm", enforce_file_format=True)
    return Captures(root / "ca" / "ca.pem", root / "signed.dcm", root / "unsigned.dcm", root / "tampered.dcm")


def storescu(port: int, *files: Path, calling: str = "MODALITY1") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STORESCU, "-aet", calling, "-aec", GATEWAY_AE, "127.0.0.1", str(port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def gateway_config(path: Path, ca: Path, *, upstream: dict[str, object], **gateway: object) -> Path:
    """A TOML configuration for a test gateway: signatures only (no watermark, no detector)."""

    def table(values: dict[str, object]) -> str:
        return "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())

    path.write_text(
        f"[trust]\nca = {json.dumps(str(ca))}\n[check]\nuse_watermark = false\nuse_detector = false\n"
        f"[gateway]\n{table(gateway)}[gateway.upstream]\n{table(upstream)}"
    )
    return path
