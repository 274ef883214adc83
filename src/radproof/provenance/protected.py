"""The header attributes that matter: one list for the whole product.

An attribute is protected when changing it changes **what a reader sees** (the pixels and how they
are turned into an image: the Image Pixel module, rescale, LUTs, windows, presentation LUT shape,
overlays, graphic annotations, flips and rotations), **what the image measures** (pixel spacing and
its calibration, magnification, geometry), **what it shows** (laterality, view, body part, anatomic
region, frame of reference) or **whom and which examination it belongs to** (patient and study
identity, series, SOP and source instances, dates and times, the equipment that made it). A change
to any of these can make a genuine picture testify to something false: the left knee becomes the
right one, one patient's fracture another's, a 2 cm lesion a 4 cm one.

Every layer that vouches for an image's header uses this module:

* the signature verifier requires a signature to cover every protected attribute present
  (:data:`REQUIRED_TAGS` and :func:`is_protected`, which also matches the repeating overlay and
  curve groups);
* the fragile watermark binds :func:`protected_digest` into its binding record, so that a marked,
  unsigned image whose header was edited afterwards is not reported as matching.

A policy may protect another set: every function takes ``tags`` (default :data:`REQUIRED_TAGS`).
The repeating groups (overlays 60xx, curves 50xx) are always protected.

:func:`protected_digest` is versioned (:data:`DIGEST_VERSION`): a digest recorded under one list
only matches a digest computed under the same list, so changing :data:`REQUIRED_TAGS` needs a new
version (readers then keep the old list to check old records).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import struct
from collections.abc import Collection

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr_element, write_data_element
from pydicom.valuerep import AMBIGUOUS_VR

__all__ = [
    "DIGEST_VERSION",
    "PIXEL_DATA_TAGS",
    "REQUIRED_TAGS",
    "is_protected",
    "is_repeating_group",
    "protected_digest",
    "protected_tags",
]

DIGEST_VERSION = 1

_KEYWORDS = (
    # SOP Common, General Image: which object this is, what kind, when, derived from what
    "SpecificCharacterSet",  # how every text value below is to be read
    "SOPClassUID",
    "SOPInstanceUID",
    "ImageType",
    "InstanceNumber",
    "ContentDate",
    "ContentTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "AcquisitionDateTime",
    "DerivationDescription",
    "DerivationCodeSequence",
    "SourceImageSequence",
    "ImageComments",
    "PresentationIntentType",
    "BurnedInAnnotation",
    "RecognizableVisualFeatures",
    "LossyImageCompression",
    "LossyImageCompressionRatio",
    "LossyImageCompressionMethod",
    "QualityControlImage",
    "IconImageSequence",
    # Patient: whose image
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "TypeOfPatientID",
    "OtherPatientIDsSequence",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientSex",
    "PatientAge",
    "PatientIdentityRemoved",
    # General Study: which examination
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "IssuerOfAccessionNumberSequence",
    "StudyID",
    "StudyDescription",
    # General Series: what was imaged, and how the patient lay
    "SeriesInstanceUID",
    "SeriesDate",
    "SeriesTime",
    "Modality",
    "Laterality",
    "BodyPartExamined",
    "PatientPosition",
    "ViewPosition",
    # General Equipment: which device made it
    "Manufacturer",
    "ManufacturerModelName",
    "DeviceSerialNumber",
    "InstitutionName",
    # Frame of Reference
    "FrameOfReferenceUID",
    "PositionReferenceIndicator",
    # Image Pixel (and multi-frame): how the stored bytes become pixels
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PlanarConfiguration",
    "PixelAspectRatio",
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "AlphaPaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "AlphaPaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
    "PaletteColorLookupTableUID",
    "ICCProfile",
    "ColorSpace",
    "PixelPaddingValue",
    "PixelPaddingRangeLimit",
    "NumberOfFrames",
    "FrameIncrementPointer",
    "PixelData",
    "FloatPixelData",
    "DoubleFloatPixelData",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    # Orientation, view and anatomy: what the picture shows, which side
    "ImageLaterality",
    "PatientOrientation",
    "ViewCodeSequence",
    "ViewModifierCodeSequence",
    "AnatomicRegionSequence",
    "AnatomicRegionModifierSequence",
    "PrimaryAnatomicStructureSequence",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "FieldOfViewShape",
    "FieldOfViewDimensions",
    "FieldOfViewOrigin",
    "FieldOfViewRotation",
    "FieldOfViewHorizontalFlip",
    "ImageRotation",
    "ImageHorizontalFlip",
    # Spacing and calibration: what the picture measures
    "PixelSpacing",
    "ImagerPixelSpacing",
    "NominalScannedPixelSpacing",
    "PixelSpacingCalibrationType",
    "PixelSpacingCalibrationDescription",
    "EstimatedRadiographicMagnificationFactor",
    "DistanceSourceToDetector",
    "DistanceSourceToPatient",
    "SliceThickness",
    "SpacingBetweenSlices",
    # Modality LUT, VOI LUT, Presentation LUT: how pixel values become grey levels
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "ModalityLUTSequence",
    "VOILUTSequence",
    "WindowCenter",
    "WindowWidth",
    "WindowCenterWidthExplanation",
    "VOILUTFunction",
    "SoftcopyVOILUTSequence",
    "PixelIntensityRelationship",
    "PixelIntensityRelationshipSign",  # -1 shows the image inverted
    "PixelPresentation",
    "RecommendedViewingMode",
    "PresentationLUTShape",
    "PresentationLUTSequence",
    "MaskSubtractionSequence",
    # Display shutters: what part of the image a viewer blanks out
    "ShutterShape",
    "ShutterLeftVerticalEdge",
    "ShutterRightVerticalEdge",
    "ShutterUpperHorizontalEdge",
    "ShutterLowerHorizontalEdge",
    "CenterOfCircularShutter",
    "RadiusOfCircularShutter",
    "VerticesOfThePolygonalShutter",
    "ShutterPresentationValue",
    "ShutterPresentationColorCIELabValue",
    "ShutterOverlayGroup",
    # Multi-frame functional groups: per-frame spacing, LUTs and transformations live here
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
    "PixelDataProviderURL",  # pixels fetched from elsewhere
    "SeriesDescription",
    # Annotations drawn over the image
    "GraphicAnnotationSequence",
    "DisplayedAreaSelectionSequence",
)


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - guarded by the tests
        raise ValueError(f"unknown DICOM keyword {keyword}")
    return int(tag)


REQUIRED_TAGS: frozenset[int] = frozenset(_tag(k) for k in _KEYWORDS)
"""Tags of the protected attributes (the repeating overlay and curve groups come on top: see
:func:`is_protected`)."""

PIXEL_DATA_TAGS: frozenset[int] = frozenset(
    _tag(k)
    for k in (
        "PixelData",
        "FloatPixelData",
        "DoubleFloatPixelData",
        "ExtendedOffsetTable",
        "ExtendedOffsetTableLengths",
    )
)
"""Protected, but never part of :func:`protected_digest`: the pixels are bound by whoever uses the
digest (a signature over the pixel data, the fragile watermark's hash of the original pixels)."""

# Groups that repeat with an even offset 0x00-0x1E: overlays (60xx) and the retired curves (50xx).
_REPEATING_BASES = (0x6000, 0x5000)


def is_repeating_group(tag: int) -> bool:
    """True for any element of an overlay group (6000-601E, even) or a curve group (5000-501E, even)."""
    group = tag >> 16
    return any(base <= group <= base + 0x1E and not group & 1 for base in _REPEATING_BASES)


def is_protected(tag: int, tags: Collection[int] | None = None) -> bool:
    """True when the attribute with this tag is protected (by ``tags``, default :data:`REQUIRED_TAGS`)."""
    return int(tag) in (REQUIRED_TAGS if tags is None else tags) or is_repeating_group(int(tag))


def protected_tags(ds: Dataset, tags: Collection[int] | None = None) -> list[int]:
    """Tags of the protected attributes present at the top level of ``ds``, sorted."""
    return sorted(t for t in _tags_of(ds) if is_protected(t, tags))


def protected_digest(ds: Dataset, tags: Collection[int] | None = None) -> bytes:
    """SHA-256 over a canonical encoding of the protected attributes of ``ds`` (top level).

    Each protected tag is encoded in ascending order: present elements as tag, VR and value in
    Explicit VR Little Endian (sequences item by item, every element of an item, independent of how
    their lengths were written), absent ones as an explicit "absent" record, so that removing an
    attribute changes the digest as surely as editing it. Elements of the overlay and curve groups
    present in ``ds`` follow. The pixel data elements (:data:`PIXEL_DATA_TAGS`) are left out.
    """
    chosen = REQUIRED_TAGS if tags is None else frozenset(int(t) for t in tags)
    encodings = _encodings(ds)
    h = hashlib.sha256(f"radproof-protected-v{DIGEST_VERSION}\0".encode())
    for tag in sorted(chosen - PIXEL_DATA_TAGS):
        if tag in ds:
            h.update(_encode(ds, tag, encodings, []))
        else:
            h.update(struct.pack("<HH", tag >> 16, tag & 0xFFFF) + b"--")
    for tag in sorted(t for t in _tags_of(ds) if is_repeating_group(t) and t not in chosen):
        h.update(_encode(ds, tag, encodings, []))
    return h.digest()


def _tags_of(ds: Dataset) -> list[int]:
    return [int(t) for t in list(ds.keys())]


def _encodings(ds: Dataset) -> list[str] | None:
    value = ds.get("SpecificCharacterSet")
    if value is None:
        return None
    return [str(v) for v in value] if not isinstance(value, str) else [value]


def _encode(ds: Dataset, tag: int, encodings: list[str] | None, ancestors: list[Dataset]) -> bytes:
    elem = ds[tag]
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if elem.VR == "SQ":
        items = list(elem.value or [])
        out = [head, b"SQ", struct.pack("<I", len(items))]
        for item in items:
            out.append(b"item")
            out.extend(_encode(item, int(t), encodings, [ds, *ancestors]) for t in sorted(_tags_of(item)))
            out.append(b"end.")
        return b"".join(out)
    if elem.VR in AMBIGUOUS_VR:
        # Resolve "US or SS", "OB or OW" and the like from the pixel description, as a writer would,
        # on a copy: a digest leaves its input alone.
        elem = copy.deepcopy(elem)
        with contextlib.suppress(AttributeError):  # unresolvable: encode as it stands
            correct_ambiguous_vr_element(elem, ds, True, [ds, *ancestors])
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_data_element(fp, elem, encodings)
    return fp.getvalue()
