"""The configuration model: TOML file, RADPROOF_* variables, precedence and clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from radproof.check import VerdictKind
from radproof.config import Settings, load_settings
from radproof.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "radproof.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("RADPROOF_") and name != "RADPROOF_SHARED":
            monkeypatch.delenv(name)


def test_defaults_without_file() -> None:
    s = load_settings()
    assert s.check.profile == "default" and s.scan.workers == 0 and s.trust.ca == []
    assert s.check.policy().fail_on == {VerdictKind.TAMPERED, VerdictKind.SYNTHETIC}


def test_file_values_and_relative_paths(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        '[check]\nprofile = "pacs"\n[trust]\nca = "keys/ca.pem"\n[watermark]\nkey = "/abs/wm.key"\n'
        '[detector]\nmodel = "site-detector"\n',
    )
    s = load_settings(cfg)
    assert s.check.policy().require_trusted_signature is True
    assert s.trust.ca == [tmp_path / "keys" / "ca.pem"]
    assert s.watermark.key == Path("/abs/wm.key")
    assert s.detector.model == tmp_path / "site-detector"


def test_environment_beats_file_and_merges_sections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path, '[check]\nprofile = "pacs"\nmin_watermark_confidence = 0.7\n[scan]\nworkers = 4\n')
    monkeypatch.setenv("RADPROOF_CHECK__PROFILE", "detector-only")
    monkeypatch.setenv("RADPROOF_PASSPHRASE", "not a setting")
    s = load_settings(cfg)
    policy = s.check.policy()
    assert policy.use_signature is False and policy.min_watermark_confidence == 0.7
    assert s.scan.workers == 4


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADPROOF_CONFIG", str(write(tmp_path, "[report]\nshow_phi = true\n")))
    assert load_settings().report.show_phi is True


def test_overrides_and_pickling() -> None:
    s = load_settings().with_overrides(scan={"workers": 2, "scheduler": None}, check={"fail_on": ["tampered"]})
    assert s.scan.workers == 2 and s.check.policy().fail_on == {VerdictKind.TAMPERED}
    again = pickle.loads(pickle.dumps(s))
    assert isinstance(again, Settings) and again == s


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[check\n", "not valid TOML"),
        ("[checks]\nprofile = 'pacs'\n", "unknown section"),
        ("[check]\nprofile = 'hospital'\n", "check.profile"),
        ("[check]\nsynthetic_threshold = 2\n", "synthetic_threshold"),
        ("[scan]\nworkerz = 2\n", "scan.workerz"),
        ("[check]\nreal_threshold = 0.9\nsynthetic_threshold = 0.5\n", "real_threshold"),
    ],
)
def test_bad_files_raise_config_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text)).check.policy()


def test_missing_file_and_bad_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    monkeypatch.setenv("RADPROOF_SCAN__WORKERS", "many")
    with pytest.raises(ConfigError, match=r"scan\.workers"):
        load_settings()


def test_every_policy_field_is_a_check_key_declared_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """[check] is derived from the policy: a new policy field is configurable without a second declaration."""
    import dataclasses

    from radproof.check import Policy
    from radproof.config import CheckSettings

    assert set(CheckSettings.model_fields) == {"profile"} | {f.name for f in dataclasses.fields(Policy)}
    monkeypatch.setenv("RADPROOF_CHECK__REQUIRE_WATERMARK", "true")
    monkeypatch.setenv("RADPROOF_CHECK__PROTECTED_ADD", '["PatientAge"]')
    policy = load_settings().check.policy()
    assert policy.require_watermark is True and 0x00101010 in policy.protected_add
    assert pickle.loads(pickle.dumps(load_settings())).check.require_watermark is True
