"""The detector's coded values (verdicts, hint severities) are enums, checked where results are made."""

from __future__ import annotations

import json

import pytest

from radproof.detect import Detection, DetectorVerdict, Hint, HintSeverity


def test_a_detection_takes_only_known_verdicts_and_writes_them_as_plain_text() -> None:
    made = Detection(None, 0.7, "synthetic", (), (Hint("c2pa", "decisive", "declared"),))
    assert made.verdict is DetectorVerdict.SYNTHETIC
    assert made.hints[0].severity is HintSeverity.DECISIVE
    text = json.dumps(made.to_dict())
    assert '"verdict": "synthetic"' in text and '"severity": "decisive"' in text
    assert type(made.to_dict()["verdict"]) is str
    with pytest.raises(ValueError, match="fake"):
        Detection(None, 0.7, "fake", (), ())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alarming"):
        Hint("c2pa", "alarming", "declared")  # type: ignore[arg-type]
