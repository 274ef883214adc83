"""The policy inside Orthanc (its Python plugin, Debian's orthanc-python): refused with a status, held for review."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from radproof.cli import main

from .conftest import STORESCU, Captures, Orthanc, free_port

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPython.so")


class PluginOrthanc(Orthanc):
    """Orthanc with radproof's filter loaded."""

    config_file: Path

    def launch(self) -> None:
        import radproof

        script = Path(radproof.__file__).parent / "gateway" / "orthanc_plugin.py"
        config = {
            "Name": "radproof-plugin-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False,
            "Plugins": [str(PLUGIN)],
            "PythonScript": str(script),
            "PythonVerbose": False,
        }
        (self.folder / "orthanc.json").write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("RADPROOF_")}
        src = str(Path(radproof.__file__).parents[1])
        env["RADPROOF_CONFIG"] = str(self.config_file)
        env["RADPROOF_SITE_PACKAGES"] = os.pathsep.join([src, *site.getsitepackages()])
        log = (self.folder / "orthanc.log").open("ab")
        orthanc = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        self.process = subprocess.Popen([orthanc, str(self.folder / "orthanc.json")], stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/system")
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        raise RuntimeError((self.folder / "orthanc.log").read_text()[-3000:])


@pytest.fixture
def plugin_orthanc(tmp_path: Path, captures: Captures) -> Iterator[PluginOrthanc]:
    if not PLUGIN.exists():
        pytest.skip("Orthanc's Python plugin is not installed (apt-get install orthanc-python)")
    if sys.version_info[:2] != (3, 11):
        pytest.skip("Debian's orthanc-python embeds Python 3.11; radproof's packages must match it")
    config = tmp_path / "radproof.toml"
    config.write_text(
        f"""
[trust]
ca = "{captures.ca}"
[check]
use_watermark = false
use_detector = false
[gateway]
quarantine = "held"
journal = "held/journal.sqlite"
[gateway.upstream]
port = 1
"""
    )
    server = PluginOrthanc(free_port(), free_port(), tmp_path / "orthanc")
    server.folder.mkdir()
    server.config_file = config
    server.launch()
    yield server
    server.stop()


def test_orthanc_refuses_what_the_policy_holds_and_the_review_can_release_it(
    plugin_orthanc: PluginOrthanc, captures: Captures, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def send(path: Path) -> subprocess.CompletedProcess[str]:
        command = [STORESCU, "-aet", "MODALITY1", "-aec", "ORTHANC", "127.0.0.1", str(plugin_orthanc.dicom_port)]
        return subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=60)

    assert send(captures.signed).returncode == 0
    refused = send(captures.unsigned)
    assert refused.returncode != 0 or "0xc000" in (refused.stdout + refused.stderr).lower()
    assert plugin_orthanc.instance_uids() == {captures.signed_uid}  # not silently stored, not silently dropped
    (report,) = (tmp_path / "held").glob("*.json")
    assert json.loads(report.read_text())["check"]["verdict"] == "unverified"
    config = str(plugin_orthanc.config_file)
    os.environ["RADPROOF_GATEWAY__UPSTREAM__PORT"] = str(plugin_orthanc.dicom_port)
    try:
        capsys.readouterr()
        assert main(["gateway", "quarantine", "list", "--config", config, "--json"]) == 0
        (held,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        uid = held["sop_instance_uid"]
        assert main(["gateway", "quarantine", "release", uid, "--config", config, "--reason", "known phantom"]) == 0
    finally:
        del os.environ["RADPROOF_GATEWAY__UPSTREAM__PORT"]
    assert uid in plugin_orthanc.instance_uids()  # let through once, after review
