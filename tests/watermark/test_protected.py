"""The protected header attributes: one list, a repeating-group predicate and a canonical digest."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radproof.imaging import load
from radproof.provenance.protected import (
    PIXEL_DATA_TAGS,
    REQUIRED_TAGS,
    is_protected,
    is_repeating_group,
    protected_digest,
    protected_tags,
)
from radproof.watermark.dicom_marking import encode_dicom, new_instance_header


def _header() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "12345"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.Laterality = "L"
    ds.PixelSpacing = [0.1, 0.1]
    ds.WindowCenter = 2048
    ds.StationName = "CR1"  # not protected
    view = Dataset()
    view.CodeValue = "R-10206"
    view.CodingSchemeDesignator = "SRT"
    ds.ViewCodeSequence = Sequence([view])
    ds.add_new(0x60000010, "US", 512)  # overlay rows
    return ds


def test_required_tags_cover_identity_display_and_geometry() -> None:
    for keyword in (
        "PatientName",
        "PatientID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "PhotometricInterpretation",
        "BitsStored",
        "PixelData",
        "PixelSpacing",
        "ImagerPixelSpacing",
        "Laterality",
        "ImageLaterality",
        "ViewPosition",
        "BodyPartExamined",
        "VOILUTSequence",
        "ModalityLUTSequence",
        "PresentationLUTShape",
        "GraphicAnnotationSequence",
        "FrameOfReferenceUID",
    ):
        assert pydicom.datadict.tag_for_keyword(keyword) in REQUIRED_TAGS, keyword
    assert pydicom.datadict.tag_for_keyword("StationName") not in REQUIRED_TAGS
    assert PIXEL_DATA_TAGS <= REQUIRED_TAGS


def test_repeating_groups() -> None:
    assert is_repeating_group(0x60003000) and is_repeating_group(0x601E0010) and is_repeating_group(0x50000010)
    assert not is_repeating_group(0x60010010)  # odd group: private
    assert not is_repeating_group(0x60200010)  # beyond the repeating range
    assert is_protected(0x60023000) and is_protected(0x00100010)
    assert not is_protected(0x00081010)
    assert is_protected(0x00081010, tags={0x00081010}) and not is_protected(0x00100010, tags={0x00081010})


def test_protected_tags_lists_what_is_present() -> None:
    tags = protected_tags(_header())
    assert tags == sorted(tags)
    assert 0x00100010 in tags and 0x60000010 in tags and 0x00540220 in tags
    assert 0x00081010 not in tags


@pytest.mark.parametrize(
    "edit",
    [
        lambda ds: setattr(ds, "PatientName", "Doe^John"),
        lambda ds: setattr(ds, "Laterality", "R"),
        lambda ds: setattr(ds, "PixelSpacing", [0.2, 0.2]),
        lambda ds: delattr(ds, "WindowCenter"),
        lambda ds: setattr(ds.ViewCodeSequence[0], "CodeValue", "R-10214"),
        lambda ds: ds.add_new(0x60003000, "OW", b"\xff\x00" * 8),  # an overlay drawn in
        lambda ds: ds.__delitem__(0x60000010),  # an overlay removed
        lambda ds: setattr(ds, "PresentationLUTShape", "INVERSE"),  # added
    ],
)
def test_digest_sees_every_edit_of_a_protected_attribute(edit) -> None:  # type: ignore[no-untyped-def]
    ds = _header()
    before = protected_digest(ds)
    edit(ds)
    assert protected_digest(ds) != before


def test_digest_ignores_other_attributes_and_pixels() -> None:
    ds = _header()
    before = protected_digest(ds)
    ds.StationName = "CR2"
    ds.add_new(0x00691010, "LO", "private")
    ds.PixelData = b"\0" * 16
    assert protected_digest(ds) == before
    assert protected_digest(ds, tags={0x00081010}) != protected_digest(_header(), tags={0x00081010})


def test_digest_is_independent_of_the_encoding_read() -> None:
    ds = _header()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.SmallestImagePixelValue = 0  # ambiguous VR (US or SS)
    ds.PixelRepresentation = 0
    ds.BitsAllocated = 16
    ds.SamplesPerPixel = 1
    ds.Rows, ds.Columns = 2, 2
    ds.PhotometricInterpretation = "MONOCHROME2"
    implicit = io.BytesIO()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(implicit, enforce_file_format=True)
    implicit.seek(0)
    read_back = pydicom.dcmread(implicit)
    assert protected_digest(read_back) == protected_digest(ds)


@pytest.mark.shared_data
def test_digest_survives_the_marked_file_round_trip(shared_dicoms: list[Path], tmp_path: Path) -> None:
    for path in shared_dicoms[:6]:
        image = load(path)
        assert image.dataset is not None
        header = new_instance_header(image.dataset, ("robust", "fragile"), fragile_block=64)
        out = tmp_path / path.name
        out.write_bytes(encode_dicom(header, image.pixels))
        reloaded = load(out).dataset
        assert reloaded is not None
        assert protected_digest(reloaded) == protected_digest(header), path.name
