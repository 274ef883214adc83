"""Gateway throughput: DCMTK storescu -> Orthanc directly, against storescu -> radproof gateway -> Orthanc.

Both in this run on this machine, with the same images and the same senders:
- ``--images`` signed DX phantoms (12-bit in 16-bit words; sizes cycle 1024^2 .. 2236^2, 2-10 MB);
- ``--senders`` concurrent ``/usr/bin/storescu`` processes, each with its share of the files;
- direct: until Orthanc answered every C-STORE; through the gateway: until every instance is filed,
  in Orthanc or held by the policy (the gateway answers after spooling and checking; forwarding
  follows); how many reached Orthanc and the journal's states are printed;
- ``--policy signature`` (signature verified, no watermark or detector) or ``full`` (every layer).

Printed: wall seconds, images/s and MB/s each way, the ratio gateway / direct, and the gateway's
seconds per image. Orthanc (Debian's package) and DCMTK must be installed.

    .venv/bin/python benchmarks/gateway.py [--images 1000] [--senders 4] [--policy signature|full]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

STORESCU = "/usr/bin/storescu"
SIZES = [(1024, 1024), (1536, 1536), (2048, 2048), (2236, 2236)]
PW = b"benchmark passphrase"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Orthanc:
    def __init__(self, folder: Path) -> None:
        self.folder, self.dicom, self.http = folder, _port(), _port()
        config = {
            "Name": "bench",
            "StorageDirectory": str(folder / "db"),
            "IndexDirectory": str(folder / "db"),
            "HttpPort": self.http,
            "DicomPort": self.dicom,
            "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False,
            "DicomAlwaysAllowFind": True,
            "Plugins": [],
        }
        (folder / "orthanc.json").write_text(json.dumps(config))
        orthanc = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        log = (folder / "orthanc.log").open("ab")
        self.process = subprocess.Popen([orthanc, str(folder / "orthanc.json")], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.count()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("Orthanc did not start")

    def count(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/statistics", timeout=5) as answer:
            return int(json.loads(answer.read())["CountInstances"])

    def clear(self) -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/instances", timeout=30) as answer:
            ids = json.loads(answer.read())
        for i in ids:
            request = urllib.request.Request(f"http://127.0.0.1:{self.http}/instances/{i}", method="DELETE")
            urllib.request.urlopen(request, timeout=30).close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _images(root: Path, count: int) -> tuple[Path, list[Path]]:
    from radproof.imaging.phantom import simulate
    from radproof.provenance import Role, init_ca, issue_identity, load_identity
    from radproof.provenance.signer import sign_file

    init_ca(root / "ca", "Bench CA", PW)
    issue_identity(root / "tech", root / "ca", "Bench Tech", Role.TECHNOLOGIST, PW, PW)
    tech = load_identity(root / "tech", PW)
    bases = []
    for i, (rows, cols) in enumerate(SIZES):
        simulate(rows, cols, seed=i).save_as(root / f"base{i}.dcm", enforce_file_format=True)
        bases.append(root / f"base{i}.dcm")
    import pydicom
    from pydicom.uid import generate_uid

    (root / "in").mkdir()
    files = []
    for i in range(count):
        ds = pydicom.dcmread(bases[i % len(bases)])
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(root / "unsigned.dcm", enforce_file_format=True)
        files.append(sign_file(root / "unsigned.dcm", root / "in" / f"{i:05d}.dcm", tech))
    return root / "ca" / "ca.pem", files


def _send(port: int, called: str, files: list[Path], senders: int) -> float:
    shares = [files[i::senders] for i in range(senders)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [STORESCU, "-aet", "MODALITY1", "-aec", called, "127.0.0.1", str(port), *map(str, share)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for share in shares
        if share
    ]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError(f"storescu failed: {codes}")
    return time.perf_counter() - start


def _status(config: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "radproof", "gateway", "status", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--policy", choices=("signature", "full"), default="signature")
    args = parser.parse_args(argv)
    if not Path(STORESCU).exists() or not (shutil.which("Orthanc") or Path("/usr/sbin/Orthanc").exists()):
        print("needs DCMTK (storescu) and Orthanc: apt-get install dcmtk orthanc", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="radproof-gw-bench-") as tmp:
        root = Path(tmp)
        print(f"making {args.images} signed DX phantoms ...", flush=True)
        ca, files = _images(root, args.images)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        (root / "orthanc").mkdir()
        orthanc = Orthanc(root / "orthanc")
        try:
            direct = _send(orthanc.dicom, "ORTHANC", files, args.senders)
            assert orthanc.count() == len(files)
            orthanc.clear()
            port = _port()
            layers = "" if args.policy == "full" else "use_watermark = false\nuse_detector = false\n"
            (root / "gw.toml").write_text(
                f'[trust]\nca = "{ca}"\n[check]\n{layers}[gateway]\nport = {port}\nallowed_callers = ["MODALITY1"]\n'
                f'spool = "spool"\nquarantine = "quarantine"\nmax_associations = {args.senders + 2}\n'
                f"[gateway.upstream]\nport = {orthanc.dicom}\n"
            )
            gateway = subprocess.Popen(
                [sys.executable, "-m", "radproof", "gateway", "--config", str(root / "gw.toml")],
                stdout=subprocess.DEVNULL,
                stderr=(root / "gateway.log").open("ab"),
            )
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    with socket.socket() as s:
                        if s.connect_ex(("127.0.0.1", port)) == 0:
                            break
                    time.sleep(0.1)
                start = time.perf_counter()
                acknowledged = _send(port, "RADPROOF", files, args.senders)
                # Done when nothing waits to be forwarded (what the policy holds never reaches Orthanc).
                while _status(root / "gw.toml")["waiting"] and time.perf_counter() - start < 3600:
                    time.sleep(0.2)
                through = time.perf_counter() - start
                states = _status(root / "gw.toml")["states"]
                archived = orthanc.count()
            finally:
                gateway.terminate()
                gateway.wait(timeout=60)
        finally:
            orthanc.stop()
    n = len(files)
    print(f"{n} images, {megabytes:.0f} MB, {args.senders} senders, policy {args.policy}")
    print(f"gateway outcome: {archived} in Orthanc; journal states {states}")
    print(f"direct to Orthanc          {direct:7.2f} s  {n / direct:6.1f} images/s  {megabytes / direct:6.1f} MB/s")
    print(f"gateway, all acknowledged  {acknowledged:7.2f} s  {n / acknowledged:6.1f} images/s")
    print(f"gateway, all filed         {through:7.2f} s  {n / through:6.1f} images/s  {megabytes / through:6.1f} MB/s")
    print(f"ratio gateway / direct     {direct / through:7.2f} (throughput)   {through / n * 1000:.0f} ms per image")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
