"""A physics-based chest radiograph phantom, written as a DICOM DX object.

The simulator traces parallel rays through a few analytic 3-D shapes (body, lungs, heart, spine,
ribs, clavicles), applies Beer-Lambert attenuation, draws Poisson-distributed quanta, blurs them
with a scintillator point-spread function, adds electronic noise, and log-transforms the signal to
14-bit "For Presentation" values, as a digital radiography detector does.

The output is for demonstrations and tests only. Every object is marked as simulated in the
header (patient name, image comments, series description, manufacturer) so that it can never be
mistaken for a patient image.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

from radproof.imaging.radiograph import Photometric, Radiograph, SourceFormat

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
PHANTOM_MARK = "SIMULATED PHANTOM - NOT A PATIENT IMAGE"

# Linear attenuation coefficients (1/cm) at an effective energy of about 60 keV.
_MU_SOFT = 0.21
_MU_LUNG = 0.06
_MU_BONE = 0.45


@dataclass(frozen=True)
class Exposure:
    """Acquisition parameters recorded in the header and used by the simulation."""

    kvp: float = 120.0
    mas: float = 2.5
    incident_quanta: float = 4000.0  # mean quanta per pixel without attenuation
    electronic_noise: float = 4.0  # standard deviation, in quanta
    psf_sigma_px: float = 0.8  # scintillator blur (Gaussian sigma, pixels)


def _ellipsoid_path(
    x: npt.NDArray[np.float32], y: npt.NDArray[np.float32], cx: float, cy: float, a: float, b: float, c: float
) -> npt.NDArray[np.float32]:
    """Chord length (same units as c) of rays along z through an ellipsoid with semi-axes a, b, c."""
    r = 1.0 - ((x - cx) / a) ** 2 - ((y - cy) / b) ** 2
    out: npt.NDArray[np.float32] = (2.0 * c * np.sqrt(np.clip(r, 0.0, None))).astype(np.float32)
    return out


def _tube_path(distance: npt.NDArray[np.float32], radius: float) -> npt.NDArray[np.float32]:
    """Chord length of rays through a cylinder of ``radius`` at ``distance`` from its axis."""
    out: npt.NDArray[np.float32] = (2.0 * np.sqrt(np.clip(radius**2 - distance**2, 0.0, None))).astype(np.float32)
    return out


def line_integrals(
    rows: int, cols: int, *, rng: np.random.Generator, width_cm: float = 40.0
) -> npt.NDArray[np.float32]:
    """Sum of mu * path length (dimensionless) for each detector pixel of a PA chest projection."""
    scale = width_cm / cols  # cm per pixel
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    x = (xx - cols / 2.0) * scale
    y = (yy - rows / 2.0) * scale
    jitter = rng.uniform(-0.6, 0.6, size=8)

    body = _ellipsoid_path(x, y, 0.0, 2.0, 16.5 + jitter[0], 24.0, 11.0)
    lung_l = _ellipsoid_path(x, y, -7.0 + jitter[1] * 0.3, -1.5, 5.6, 11.5 + jitter[2], 7.5)
    lung_r = _ellipsoid_path(x, y, 7.2 + jitter[3] * 0.3, -1.0, 5.8, 12.0 + jitter[4], 7.5)
    heart = _ellipsoid_path(x, y, -2.0 + jitter[5] * 0.4, 4.5, 5.5, 5.0, 5.0)
    mu = _MU_SOFT * body + (_MU_LUNG - _MU_SOFT) * (lung_l + lung_r) + 0.03 * heart

    # Spine: vertebral column as a cylinder along y, with vertebral bodies modulating its density.
    spine = _tube_path(np.abs(x - 0.2 * jitter[6]), 1.6)
    vertebrae = 0.85 + 0.15 * np.cos(2 * np.pi * y / 2.4)
    mu += (_MU_BONE - _MU_SOFT) * spine * vertebrae

    # Ribs: curved tubes sweeping down and out from the spine on each side.
    for k in range(10):
        y0 = -13.0 + 2.35 * k + 0.2 * rng.standard_normal()
        for side in (-1.0, 1.0):
            u = side * x
            curve = y0 + 0.055 * (u - 1.0) ** 2 - 0.9
            d = np.abs(y - curve) / np.sqrt(1.0 + (0.11 * (u - 1.0)) ** 2)
            visible = (u > 1.2) & (u < 15.5)
            mu += np.where(visible, (_MU_BONE - _MU_SOFT) * 0.7 * _tube_path(d.astype(np.float32), 0.55), 0.0)

    # Clavicles.
    for side in (-1.0, 1.0):
        u = side * x
        curve = -15.0 + 0.02 * (u - 6.0) ** 2
        d = np.abs(y - curve)
        visible = (u > 1.0) & (u < 14.0)
        mu += np.where(visible, (_MU_BONE - _MU_SOFT) * _tube_path(d.astype(np.float32), 0.7), 0.0)

    total: npt.NDArray[np.float32] = mu.astype(np.float32)
    return total


def simulate_pixels(
    rows: int = 1536,
    cols: int = 1280,
    *,
    seed: int = 0,
    bits: int = 14,
    exposure: Exposure | None = None,
) -> npt.NDArray[np.uint16]:
    """Simulated For Presentation pixel values (uint16, ``bits`` significant bits, MONOCHROME2)."""
    if not 8 <= bits <= 16:
        raise ValueError("bits must be between 8 and 16")
    if rows < 16 or cols < 16:
        raise ValueError("the phantom needs at least 16 x 16 pixels")
    exp = exposure or Exposure()
    rng = np.random.default_rng(seed)
    mu_l = line_integrals(rows, cols, rng=rng)
    expected = exp.incident_quanta * np.exp(-mu_l)
    quanta = rng.poisson(expected).astype(np.float32)
    blurred = ndimage.gaussian_filter(quanta, exp.psf_sigma_px)
    signal = blurred + rng.normal(0.0, exp.electronic_noise, size=blurred.shape).astype(np.float32)
    signal = np.maximum(signal, 1.0)
    # Log transform: value grows with attenuation, so bone is bright (MONOCHROME2).
    attenuation = np.log(exp.incident_quanta) - np.log(signal)
    top = (1 << bits) - 1
    # Range of -log(I/I0) the detector maps onto its output: up to log(I0) (one quantum), so that
    # nothing saturates, as on a detector whose dynamic range covers the whole chest.
    lo, hi = -0.2, float(np.log(exp.incident_quanta)) + 0.2
    values = np.clip((attenuation - lo) / (hi - lo), 0.0, 1.0) * top
    # Collimation: a narrow unexposed margin, as on a real detector.
    margin = max(2, min(rows, cols) // 64)
    values[:margin, :] = values[-margin:, :] = top
    values[:, :margin] = values[:, -margin:] = top
    out: npt.NDArray[np.uint16] = np.rint(values).astype(np.uint16)
    return out


def simulate(
    rows: int = 1536,
    cols: int = 1280,
    *,
    seed: int = 0,
    bits: int = 14,
    exposure: Exposure | None = None,
    pixel_spacing_mm: float | None = None,
    when: _dt.datetime | None = None,
) -> FileDataset:
    """A complete DICOM DX (For Presentation) object holding a simulated chest radiograph.

    Parameters
    ----------
    rows, cols
        Image size in pixels.
    seed
        Seed for anatomy jitter and noise; the same seed gives the same pixels and UIDs.
    bits
        Bits stored (8-16); 14 is typical of flat-panel detectors.
    """
    exp = exposure or Exposure()
    pixels = simulate_pixels(rows, cols, seed=seed, bits=bits, exposure=exp)
    spacing = pixel_spacing_mm if pixel_spacing_mm is not None else 400.0 / cols
    when = when or _dt.datetime(2026, 1, 1, 9, 0, 0) + _dt.timedelta(minutes=seed % 100000)
    entropy = [f"radproof-phantom-{seed}-{rows}x{cols}-{bits}"]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(DX_FOR_PRESENTATION)
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[*entropy, "sop"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid(entropy_srcs=["radproof-implementation"])
    meta.ImplementationVersionName = "RADPROOF_010"

    ds = FileDataset("phantom.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    _fill_header(ds, meta, pixels, bits=bits, spacing=spacing, exposure=exp, when=when, entropy=entropy)
    return ds


def _fill_header(
    ds: FileDataset,
    meta: FileMetaDataset,
    pixels: npt.NDArray[np.uint16],
    *,
    bits: int,
    spacing: float,
    exposure: Exposure,
    when: _dt.datetime,
    entropy: list[str],
) -> None:
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = time
    ds.AccessionNumber = ""
    ds.Modality = "DX"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "radproof (simulated)"
    ds.ManufacturerModelName = "radproof phantom simulator"
    ds.DeviceSerialNumber = "PHANTOM"
    ds.SoftwareVersions = "radproof 0.1.0"
    ds.InstitutionName = "radproof phantom"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Simulated chest phantom"
    ds.SeriesDescription = "radproof phantom (simulated, not a patient)"
    ds.PatientName = "PHANTOM^SIMULATED"
    ds.PatientID = "RADPROOF-PHANTOM"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientIdentityRemoved = "YES"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.ImageComments = PHANTOM_MARK
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.KVP = f"{exposure.kvp:g}"
    ds.ExposureTime = "10"
    ds.XRayTubeCurrent = str(round(exposure.mas * 100))
    ds.Exposure = str(round(exposure.mas))
    ds.ExposureInuAs = round(exposure.mas * 1000)
    ds.ExposureIndex = round(exposure.incident_quanta / 10)
    ds.TargetExposureIndex = 400.0
    ds.DeviationIndex = round(10 * np.log10(exposure.incident_quanta / 10 / 400.0), 2)
    ds.DistanceSourceToDetector = "1800"
    ds.DetectorType = "SCINTILLATOR"
    ds.DetectorConfiguration = "AREA"
    ds.DetectorID = "PHANTOM-DET-1"
    ds.ImagerPixelSpacing = [f"{spacing:.4f}", f"{spacing:.4f}"]
    ds.PixelSpacing = [f"{spacing:.4f}", f"{spacing:.4f}"]
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[*entropy, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[*entropy, "series"])
    ds.StudyID = "1"
    ds.SeriesNumber = "1"
    ds.InstanceNumber = "1"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "IDENTITY"
    m = max(2, min(pixels.shape) // 64) + 1
    inner = pixels[m:-m:4, m:-m:4]
    lo, hi = np.percentile(inner[inner > np.percentile(inner, 20)], [1, 99.5])
    ds.WindowCenter = f"{(lo + hi) / 2:.0f}"
    ds.WindowWidth = f"{max(hi - lo, 1):.0f}"
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"


def simulate_radiograph(rows: int = 1536, cols: int = 1280, *, seed: int = 0, bits: int = 14) -> Radiograph:
    """The phantom as a Radiograph value (header attached), without writing a file."""
    ds = simulate(rows, cols, seed=seed, bits=bits)
    pixels = np.frombuffer(ds.PixelData, dtype="<u2").reshape(rows, cols).copy()
    spacing = float(ds.PixelSpacing[0])
    header: Any = ds
    return Radiograph(
        pixels=pixels,
        bits_stored=bits,
        photometric=Photometric.MONOCHROME2,
        pixel_spacing=(spacing, spacing),
        window=(float(ds.WindowCenter), float(ds.WindowWidth)),
        source_format=SourceFormat.DICOM,
        dataset=header,
    )


def is_phantom(ds: Any) -> bool:
    """True when a dataset carries radproof's phantom mark."""
    return str(getattr(ds, "ImageComments", "")) == PHANTOM_MARK
