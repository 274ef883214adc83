"""The gateway's decision, on its own: (dataset, verdict, settings) -> action. No socket anywhere."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from radproof.check import Evidence, VerdictKind, check
from radproof.config import GatewayAction, load_settings
from radproof.gateway.decision import decide, missing_identity


def _dataset() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.SOPInstanceUID = "1.2.3.4"
    return ds


def test_the_defaults_forward_only_what_is_authentic_and_hold_the_rest() -> None:
    settings = load_settings().gateway
    assert settings.actions.authentic is GatewayAction.FORWARD
    for kind in VerdictKind:
        if kind is not VerdictKind.AUTHENTIC:
            assert settings.actions.for_verdict(kind) is GatewayAction.QUARANTINE, kind
    unverified = check(Evidence(path="x.dcm"))
    decision = decide(_dataset(), unverified, settings)
    assert decision.action is GatewayAction.QUARANTINE and decision.accepted and decision.alert
    assert "unverified" in decision.reason


def test_a_failed_check_is_never_forwarded_silently() -> None:
    settings = load_settings().gateway
    decision = decide(_dataset(), None, settings, error="the pixel data cannot be decoded")
    assert decision.action is GatewayAction.QUARANTINE and "cannot be decoded" in decision.reason


@pytest.mark.parametrize("action", list(GatewayAction))
def test_each_verdict_takes_its_configured_action(action: GatewayAction) -> None:
    settings = load_settings().with_overrides(gateway={"actions": {"unverified": str(action)}}).gateway
    decision = decide(_dataset(), check(Evidence(path="x.dcm")), settings)
    assert decision.action is action
    assert decision.accepted == (action is not GatewayAction.REJECT)
    assert decision.alert == (action is not GatewayAction.FORWARD)


def test_environment_variables_reach_the_gateway_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADPROOF_GATEWAY__PORT", "11999")
    monkeypatch.setenv("RADPROOF_GATEWAY__UPSTREAM__HOST", "pacs.example")
    monkeypatch.setenv("RADPROOF_GATEWAY__ACTIONS__SYNTHETIC", "reject")
    gateway = load_settings().gateway
    assert gateway.port == 11999 and gateway.upstream.host == "pacs.example"
    assert gateway.actions.synthetic is GatewayAction.REJECT


def test_bad_gateway_settings_are_refused_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from radproof.errors import ConfigError

    monkeypatch.setenv("RADPROOF_GATEWAY__ACTIONS__TAMPERED", "drop")
    with pytest.raises(ConfigError, match="tampered"):
        load_settings()
    monkeypatch.delenv("RADPROOF_GATEWAY__ACTIONS__TAMPERED")
    monkeypatch.setenv("RADPROOF_GATEWAY__AE_TITLE", "A_TITLE_FAR_TOO_LONG")
    with pytest.raises(ConfigError, match="ae_title"):
        load_settings()


def test_an_instance_without_identity_cannot_be_tracked() -> None:
    ds = _dataset()
    assert missing_identity(ds) is None
    del ds.SOPInstanceUID
    assert "SOPInstanceUID" in (missing_identity(ds) or "")
