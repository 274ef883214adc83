"""The one record of a checked file: JSON round trip, field order, validation, mapping view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radproof.check import Evidence, VerdictKind, check
from radproof.records import FileRecord, RecordStatus
from radproof.scan import read_records


def test_a_verdicts_record_round_trips_through_json_in_the_results_files_order() -> None:
    verdict = check(Evidence(path="a.png"))
    record = FileRecord.of(verdict)
    assert record.ok and record.verdict is VerdictKind.UNVERIFIED and record.passed is True
    line = json.loads(json.dumps(record.to_json()))
    assert list(line)[:4] == ["path", "source", "sha256", "verdict"] and list(line)[-1] == "status"
    again = FileRecord.from_json(line)
    assert again == record and again["reasons"] == record["reasons"] and dict(again) == line


def test_error_records_carry_the_reason_and_no_verdict() -> None:
    record = FileRecord.failed("b.dcm", "not a DICOM file")
    assert record.to_json() == {
        "path": "b.dcm",
        "source": None,
        "sha256": None,
        "status": "error",
        "error": "not a DICOM file",
    }
    assert record.verdict is None and record.passed is None and not record.ok
    with pytest.raises(ValueError, match="error's message"):
        FileRecord(path="c.dcm", status=RecordStatus.ERROR)


@pytest.mark.parametrize(
    "line",
    [{"status": "ok"}, {"path": "x", "status": "maybe"}, {"path": "x", "status": "ok", "bytes": "12"}, {"path": 3}],
)
def test_objects_that_are_not_records_are_skipped_and_said_so(tmp_path: Path, line: dict[str, object]) -> None:
    out = tmp_path / "r.jsonl"
    good = {"path": "y.png", "source": None, "sha256": "ab" * 32, "bytes": 5, "mtime_ns": 1, "status": "ok"}
    out.write_text(json.dumps(line) + "\n" + json.dumps(good) + "\n")
    problems: list[str] = []
    records = list(read_records(out, problems))
    assert [r.path for r in records] == ["y.png"] and records[0].size == 5
    assert len(problems) == 1 and "line 1" in problems[0] and "not a radproof record" in problems[0]
