"""Many files verified on every core, in input order, each file's failure its own."""

from __future__ import annotations

from pathlib import Path

import pydicom

from radproof.errors import RadproofError
from radproof.provenance import TrustStore, load_identity, sign_file, verify_file
from radproof.provenance.batch import verify_files
from radproof.provenance.verifier import VerificationResult

from .conftest import ID_PW, Pki


def _batch(pki: Pki, dicom_files: dict[str, Path], root: Path) -> list[Path]:
    tech = load_identity(pki.tech, ID_PW)
    rogue = load_identity(pki.rogue, ID_PW)
    paths: list[Path] = []
    for i in range(12):
        out = root / f"{i:02d}.dcm"
        sign_file(dicom_files["explicit"], out, rogue if i == 5 else tech)
        paths.append(out)
    edited = pydicom.dcmread(paths[3])
    edited.PatientName = "Changed^After^Signing"
    edited.save_as(paths[3], enforce_file_format=True)
    (root / "07.dcm").write_bytes(b"not DICOM")
    paths.append(dicom_files["implicit"])  # unsigned
    return paths


def _timeless(result: VerificationResult) -> dict[str, object]:
    """The JSON of a result without the moment it was checked at (each run has its own "now")."""
    out = result.to_dict()
    out["signatures"] = [{k: v for k, v in s.items() if k != "trust_time"} for s in out["signatures"]]
    return out


def test_forked_workers_give_what_one_process_gives_in_input_order(
    pki: Pki, dicom_files: dict[str, Path], tmp_path: Path
) -> None:
    paths = _batch(pki, dicom_files, tmp_path)
    trust = TrustStore.from_files(pki.ca_pem)
    alone = list(verify_files(paths, trust, workers=1))
    forked = list(verify_files(paths, trust, workers=3))
    assert len(forked) == len(paths)
    for path, one, many in zip(paths, alone, forked, strict=True):
        if isinstance(one, RadproofError):
            assert isinstance(many, RadproofError) and str(many) == str(one)
            continue
        assert not isinstance(many, RadproofError)
        assert many.path == str(path) and _timeless(many) == _timeless(one) == _timeless(verify_file(path, trust))
    statuses = [r.status if not isinstance(r, RadproofError) else "error" for r in forked]
    assert statuses[3] == "invalid" and statuses[5] == "invalid" and statuses[7] == "error"
    assert statuses[-1] == "unsigned" and statuses.count("valid") == 9
