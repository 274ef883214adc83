"""Add a PS3.15 digital signature (Base/Creator RSA profile) to a DICOM dataset or file."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import secrets
import stat
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydicom
from cryptography.hazmat.primitives.asymmetric import rsa
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from radproof.dicom_encoding import element_order_problem
from radproof.errors import InputError, PolicyError
from radproof.fileio import atomic_write_bytes, read_input_bytes
from radproof.provenance import dicom_signature as stream
from radproof.provenance.codes import MIN_RSA_BITS, PURPOSE_SCHEME, MacAlgorithm, Purpose
from radproof.provenance.identity import Identity

#: From a signature value to the DER TimeStampToken over it (see radproof.provenance.timestamp).
Timestamper = Callable[[bytes], bytes]

CERTIFICATE_TYPE = "X509_1993_SIG"
_UNDEFINED_LENGTH = 0xFFFFFFFF
_ITEM_HEADER_16 = b"\xfe\xff\x00\xe0\x10\x00\x00\x00"  # item tag, length 16
_SPLICE_MIN = 64 * 1024  # below this, encoding the value is cheap: the plain path
TIMESTAMP_TYPE = "CMS_TSP"


def sign_dataset(
    ds: Dataset,
    identity: Identity,
    purpose: Purpose = Purpose.SOURCE,
    tsa: Timestamper | None = None,
    *,
    algorithm: MacAlgorithm = MacAlgorithm.SHA256,
    now: dt.datetime | None = None,
) -> None:
    """Add one signature over every signable top-level element of ``ds``, in place.

    Earlier signatures stay; the new one does not cover them (the Digital Signatures Sequence is never
    signed), so a radiologist can countersign what a technologist signed.

    Parameters
    ----------
    ds
        The dataset; its ``file_meta.TransferSyntaxUID`` decides the MAC transfer syntax
        (the file's own when compressed, Explicit VR Little Endian otherwise).
    identity
        Certificate and key (see :func:`radproof.provenance.load_identity`).
    purpose
        Digital Signature Purpose Code (CID 7007).
    tsa
        Asked for an RFC 3161 Certified Timestamp over the signature value: a callable from the
        signature bytes to a DER TimeStampToken, such as
        ``TimestampAuthority(url, radproof.netio.post_timestamp_query)``.
    algorithm
        MAC algorithm; SHA-256 or stronger (weaker ones raise :class:`~radproof.errors.PolicyError`).
    """
    when = now or dt.datetime.now(dt.UTC)
    _check_policy(identity, algorithm, when)
    mac_id = _next_mac_id(ds)
    stream.pad_odd_fragments(ds)
    signed_tags = stream.eligible_tags(ds)
    if not signed_tags:
        raise InputError("the dataset has no elements a signature could cover")

    item = Dataset()
    item.MACIDNumber = mac_id
    item.DigitalSignatureUID = generate_uid()
    item.DigitalSignatureDateTime = _dicom_datetime(when)
    item.CertificateType = CERTIFICATE_TYPE
    code = Dataset()
    code.CodeValue = purpose.value
    code.CodingSchemeDesignator = PURPOSE_SCHEME
    code.CodeMeaning = purpose.meaning
    item.DigitalSignaturePurposeCodeSequence = Sequence([code])

    hasher = hashlib.new(algorithm.hashlib_name)
    try:
        for chunk in stream.mac_stream(ds, signed_tags, item):
            hasher.update(chunk)
    except stream.MalformedElement as exc:
        raise InputError(f"cannot sign: {exc}") from None
    signature = identity.key.sign_digest(hasher.digest(), algorithm)

    item.CertificateOfSigner = _der(identity)
    item.Signature = signature
    if tsa is not None:
        item.CertifiedTimestampType = TIMESTAMP_TYPE
        item.CertifiedTimestamp = tsa(signature)

    params = Dataset()
    params.MACIDNumber = mac_id
    params.MACCalculationTransferSyntaxUID = stream.stream_transfer_syntax(ds)
    params.MACAlgorithm = algorithm.value
    params.DataElementsSigned = [pydicom.tag.Tag(t) for t in signed_tags]

    _sequence(ds, stream.DIGITAL_SIGNATURES_SEQUENCE).append(item)
    _sequence(ds, stream.MAC_PARAMETERS_SEQUENCE).append(params)


def sign_file(
    in_path: str | Path,
    out_path: str | Path | None,
    identity: Identity,
    purpose: Purpose = Purpose.SOURCE,
    tsa: Timestamper | None = None,
    *,
    in_place: bool = False,
    algorithm: MacAlgorithm = MacAlgorithm.SHA256,
) -> Path:
    """Sign a DICOM file and write the result atomically; returns the path written.

    The input is never modified unless ``in_place`` is true (then ``out_path`` must be None or the input).
    Compressed pixel data is kept exactly as it is.
    """
    source = Path(in_path)
    if out_path is None:
        if not in_place:
            raise InputError("give an output path (-o OUT), or ask for --in-place to overwrite the input")
        target = source
    else:
        target = Path(out_path)
        if not in_place and target.exists() and target.resolve() == source.resolve():
            raise InputError(f"{target} is the input file; use --in-place to overwrite it")
    ds = read_for_signature(source, str(source))
    sign_dataset(ds, identity, purpose, tsa, algorithm=algorithm)
    atomic_write_bytes(target, b"".join(dataset_chunks(ds)))
    return target


def read_for_signature(data: bytes | Path, label: str) -> FileDataset:
    """Parse a DICOM file (bytes, or a path read once without an extra copy) without touching its values.

    Element values stay exactly as read, so that they hash byte for byte as they are in the file.
    """
    if isinstance(data, Path):
        source: Any = _open_input(data)  # opened once: the preamble check and pydicom share it
        head = _head(source, data)
    else:
        source = io.BytesIO(data)
        head = data[:132]
    with source:
        return _parse(source, head, label)


@contextmanager
def open_for_verification(path: Path, label: str) -> Iterator[tuple[FileDataset, stream.FileValues]]:
    """Parse a DICOM file for verification, leaving its big values in the file (open while in the block).

    Like :func:`read_for_signature`, except that values of :data:`~.dicom_signature.DEFER_SIZE` and more
    (pixel data) are not read: :func:`~.dicom_signature.mac_stream` hashes them from the file through the
    :class:`~.dicom_signature.FileValues` given with the dataset, a chunk at a time.
    """
    fh = _open_input(path)
    with fh:
        ds = _parse(fh, _head(fh, path), label, defer_size=stream.DEFER_SIZE)
        try:
            stream.load_unstreamed(ds, fh)
        except Exception as exc:
            raise InputError(f"{label}: not a readable DICOM file ({_short(exc)})") from None
        yield ds, stream.FileValues(fh)


def _parse(source: Any, head: bytes, label: str, defer_size: int | None = None) -> FileDataset:
    problem = element_order_problem(source)
    if problem:
        raise InputError(f"{label}: {problem}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(source, force=head[128:132] != b"DICM", defer_size=defer_size)
        except Exception as exc:
            raise InputError(f"{label}: not a readable DICOM file ({_short(exc)})") from None
    if len(ds) == 0:
        raise InputError(f"{label}: no DICOM elements found")
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        implicit = ds.is_implicit_VR if ds.is_implicit_VR is not None else True
        little = ds.is_little_endian if ds.is_little_endian is not None else True
        uid = "1.2.840.10008.1.2" if implicit else ("1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")
        if not hasattr(ds, "file_meta") or ds.file_meta is None:
            ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(uid)
    return ds


def _open_input(path: Path) -> CappedReader:
    if not path.is_file():
        read_input_bytes(path)  # raises the InputError that says why (missing, a folder, a FIFO, no permission)
    return _open(path)


def _open(path: Path) -> CappedReader:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # replaced by a FIFO or a device after the check
        fh.close()
        raise InputError(f"{path}: not a regular file")
    return CappedReader(fh)


class CappedReader(io.BufferedIOBase):
    """A file opened for reading whose reads never ask for more than the file still holds.

    A corrupt length field makes pydicom ask for gigabytes; a plain file object allocates what is
    asked for before finding that the file is shorter. Capped, a 10 kB file costs 10 kB.
    """

    def __init__(self, fh: io.BufferedReader) -> None:
        super().__init__()
        self._fh = fh
        self._size = os.fstat(fh.fileno()).st_size
        self.name = fh.name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fh.fileno()

    def read(self, size: int | None = -1) -> bytes:
        left = max(0, self._size - self._fh.tell())
        return self._fh.read(left if size is None or size < 0 else min(size, left))

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        left = max(0, self._size - self._fh.tell())
        return self._fh.readinto(view[: min(len(view), left)])

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()
        super().close()


def _head(fh: CappedReader, path: Path) -> bytes:
    """The preamble and prefix (132 bytes), leaving the file at its start."""
    try:
        head = fh.read(132)
        fh.seek(0)
    except OSError as exc:
        fh.close()
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    return head


def dataset_bytes(ds: Dataset) -> bytes:
    """Encode a signed dataset as a Part 10 file in its own transfer syntax (raw values kept as read)."""
    buffer = io.BytesIO()
    complete = getattr(ds, "preamble", None) is not None and "MediaStorageSOPClassUID" in ds.file_meta
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds.save_as(buffer, enforce_file_format=not complete)
        except Exception as exc:
            raise InputError(f"cannot write the signed file ({_short(exc)})") from None
    return buffer.getvalue()


def dataset_chunks(ds: Dataset) -> list[bytes | memoryview]:
    """The bytes of :func:`dataset_bytes`, in pieces, with the pixel data value passed through uncopied.

    pydicom copies every value several times while encoding; for a radiograph that is megabytes of pixel data
    copied for nothing. Here pydicom encodes the file with a 16-byte stand-in for the pixel data value, and the
    real value (exactly as read from the input) is put back in its place; the result is byte for byte what
    :func:`dataset_bytes` gives. Anything unusual (pixel data already decoded, big endian, odd length, a
    stand-in that cannot be found exactly once) takes the plain path.
    """
    raw = ds.get_item(stream.PIXEL_DATA)
    if not (
        isinstance(raw, RawDataElement)
        and raw.is_little_endian
        and isinstance(raw.value, bytes)
        and len(raw.value) >= _SPLICE_MIN
        and len(raw.value) % 2 == 0
        and raw.VR in (None, "OB", "OW")
        and ds.file_meta.get("TransferSyntaxUID") != pydicom.uid.DeflatedExplicitVRLittleEndian
    ):
        return [dataset_bytes(ds)]
    token = secrets.token_bytes(16)
    undefined = raw.length == _UNDEFINED_LENGTH
    # Encapsulated pixel data must start with an item: the stand-in is one item holding the token.
    stand_in = _ITEM_HEADER_16 + token if undefined else token
    ds[stream.PIXEL_DATA] = raw._replace(value=stand_in, length=_UNDEFINED_LENGTH if undefined else len(stand_in))
    try:
        encoded = dataset_bytes(ds)
    finally:
        ds[stream.PIXEL_DATA] = raw
    at = encoded.find(token)
    if at < 16 or encoded.find(token, at + 1) != -1:
        return [dataset_bytes(ds)]
    view = memoryview(encoded)
    tag = struct.pack("<HH", stream.PIXEL_DATA >> 16, stream.PIXEL_DATA & 0xFFFF)
    if undefined:
        # tag, VR, 00 00, FFFFFFFF, then the value (items), then the sequence delimiter pydicom adds.
        start = at - len(_ITEM_HEADER_16)
        if encoded[start - 4 : start] != b"\xff\xff\xff\xff" or encoded[start:at] != _ITEM_HEADER_16:
            return [dataset_bytes(ds)]
        return [view[:start], memoryview(raw.value), view[at + len(token) :]]
    # Defined length: the 4-byte length field sits right before the value (explicit OB/OW and implicit VR).
    length_at = at - 4
    explicit_tag, implicit_tag = encoded[length_at - 8 : length_at - 4], encoded[length_at - 4 : length_at]
    if encoded[length_at:at] != struct.pack("<I", len(token)) or tag not in (explicit_tag, implicit_tag):
        return [dataset_bytes(ds)]
    return [view[:length_at], struct.pack("<I", len(raw.value)), memoryview(raw.value), view[at + len(token) :]]


def _check_policy(identity: Identity, algorithm: MacAlgorithm, when: dt.datetime) -> None:
    if not algorithm.strong:
        raise PolicyError(f"{algorithm.value} is too weak for a new signature: use SHA256, SHA384 or SHA512")
    public = identity.certificate.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise PolicyError("the signer certificate does not hold an RSA key; the RSA profiles need one")
    bits = min(public.key_size, identity.key.key_size)
    if bits < MIN_RSA_BITS:
        raise PolicyError(f"a {bits}-bit RSA key is too short for a new signature (at least {MIN_RSA_BITS})")
    cert = identity.certificate
    if when < cert.not_valid_before_utc:
        raise PolicyError(f"the signer certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if when > cert.not_valid_after_utc:
        raise PolicyError(f"the signer certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}; issue a new one")


def _next_mac_id(ds: Dataset) -> int:
    used: set[int] = set()
    for tag in (stream.MAC_PARAMETERS_SEQUENCE, stream.DIGITAL_SIGNATURES_SEQUENCE):
        if tag in ds:
            for entry in ds[tag].value or []:
                if "MACIDNumber" in entry:
                    used.add(int(entry.MACIDNumber))
    mac_id = 0
    while mac_id in used:
        mac_id += 1
    if mac_id > 0xFFFF:
        raise InputError("the dataset already holds the maximum number of signatures")
    return mac_id


def _sequence(ds: Dataset, tag: int) -> Sequence:
    if tag not in ds:
        ds.add_new(tag, "SQ", Sequence())
    value = ds[tag].value
    if not isinstance(value, Sequence):
        raise InputError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is not a sequence; the file is corrupt")
    return value


def _der(identity: Identity) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return identity.certificate.public_bytes(serialization.Encoding.DER)


def _dicom_datetime(when: dt.datetime) -> str:
    when = when.astimezone(dt.UTC)
    return when.strftime("%Y%m%d%H%M%S.%f") + "+0000"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
