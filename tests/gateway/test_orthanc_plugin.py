"""The policy inside Orthanc (its Python plugin, Debian's orthanc-python): refused with a status, held for review."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from radproof.cli import main

from .conftest import STORESCU, Captures, Orthanc, free_port, gateway_config

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPython.so")


@pytest.fixture
def plugin_orthanc(tmp_path: Path, captures: Captures) -> Iterator[tuple[Orthanc, Path]]:
    """Orthanc with radproof's filter loaded, and the radproof configuration it runs under."""
    if not PLUGIN.exists():
        pytest.skip("Orthanc's Python plugin is not installed (apt-get install orthanc-python)")
    if sys.version_info[:2] != (3, 11):
        pytest.skip("Debian's orthanc-python embeds Python 3.11; radproof's packages must match it")
    config = gateway_config(
        tmp_path / "radproof.toml", captures.ca, upstream={"port": 1}, quarantine="held", journal="held/journal.sqlite"
    )
    import radproof

    server = Orthanc(free_port(), free_port(), tmp_path / "orthanc")
    server.folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADPROOF_")}
    env["RADPROOF_CONFIG"] = str(config)
    env["RADPROOF_SITE_PACKAGES"] = os.pathsep.join([str(Path(radproof.__file__).parents[1]), *site.getsitepackages()])
    script = Path(radproof.__file__).parent / "gateway" / "orthanc_plugin.py"
    server.start(extra={"Plugins": [str(PLUGIN)], "PythonScript": str(script), "PythonVerbose": False}, env=env)
    yield server, config
    server.stop()


def test_orthanc_refuses_what_the_policy_holds_and_the_review_can_release_it(
    plugin_orthanc: tuple[Orthanc, Path], captures: Captures, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orthanc, config_file = plugin_orthanc

    def send(path: Path) -> subprocess.CompletedProcess[str]:
        command = [STORESCU, "-aet", "MODALITY1", "-aec", "ORTHANC", "127.0.0.1", str(orthanc.dicom_port)]
        return subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=60)

    assert send(captures.signed).returncode == 0
    refused = send(captures.unsigned)
    assert refused.returncode != 0 or "0xc000" in (refused.stdout + refused.stderr).lower()
    assert orthanc.instance_uids() == {captures.signed_uid}  # not silently stored, not silently dropped
    (report,) = (tmp_path / "held").glob("*.json")
    assert json.loads(report.read_text())["check"]["verdict"] == "unverified"
    config = str(config_file)
    os.environ["RADPROOF_GATEWAY__UPSTREAM__PORT"] = str(orthanc.dicom_port)
    try:
        capsys.readouterr()
        assert main(["gateway", "quarantine", "list", "--config", config, "--json"]) == 0
        (held,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        uid = held["sop_instance_uid"]
        assert main(["gateway", "quarantine", "release", uid, "--config", config, "--reason", "known phantom"]) == 0
    finally:
        del os.environ["RADPROOF_GATEWAY__UPSTREAM__PORT"]
    assert uid in orthanc.instance_uids()  # let through once, after review
