"""What ``radproof check`` says about forged and edited images: a table of attacks and verdicts.

Not a speed benchmark: it builds the attacks of tests/adversarial (with DCMTK, pydicom and radproof)
once, then asks one or more radproof source trees for their verdict, so that a change in what
``authentic`` means can be shown side by side with an older release::

    python -m benchmarks trust_attacks                       # this tree only
    git worktree add /tmp/old c0bbc6f
    python benchmarks/trust_attacks.py --compare /tmp/old/src  # before | after

Only options every compared version knows are used (``--trust``, ``--crl``, ``--profile``); the
detector is switched off, since these attacks are on provenance.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pydicom

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def build(root: Path) -> list[tuple[str, Path, list[str]]]:
    """The attacks: (what was done, the file, extra check options)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from pydicom.sequence import Sequence
    from pydicom.uid import RLELossless
    from tests.adversarial.conftest import (
        BITS,
        CA_PW,
        FAST,
        ID_PW,
        dcmsign_sign,
        make_timestamp_token,
        odd_certificate,
    )

    from radproof.imaging.phantom import simulate
    from radproof.provenance import Role, init_ca, issue_identity, load_identity, sign_dataset, sign_file

    for name in ("ca", "rogue-ca", "tsa-ca"):
        init_ca(root / name, f"{name} authority", CA_PW, key_bits=BITS, encryption=FAST)

    def issue(folder: str, ca: str, who: str, **kw: object) -> Path:
        issue_identity(
            root / folder, root / ca, who, Role.TECHNOLOGIST, ID_PW, CA_PW, key_bits=BITS, encryption=FAST, **kw
        )  # type: ignore[arg-type]
        return root / folder

    tech, rogue = issue("tech", "ca", "Alice Tech"), issue("rogue", "rogue-ca", "Alice Tech")
    now = dt.datetime.now(dt.UTC)
    brief = issue(
        "brief", "ca", "Gina Brief", not_before=now - dt.timedelta(minutes=8), not_after=now - dt.timedelta(minutes=2)
    )
    server = odd_certificate(root / "server", root / "ca", "pacs.example.org", ekus=[ExtendedKeyUsageOID.SERVER_AUTH])
    short = odd_certificate(root / "short", root / "ca", "Frank Short", bits=1024)
    self_tsa = odd_certificate(root / "selftsa", root / "ca", "Self TSA", ekus=[ExtendedKeyUsageOID.TIME_STAMPING])

    ds = simulate(rows=48, cols=40, seed=11)
    ds.InstitutionName = "St Elsewhere"
    original = root / "original.dcm"
    ds.save_as(original, enforce_file_format=True)
    signed = sign_file(original, root / "signed.dcm", load_identity(tech, ID_PW))

    def edited(name: str, change: Callable[[pydicom.Dataset], None], src: Path = signed) -> Path:
        d = pydicom.dcmread(src)
        change(d)
        d.save_as(root / name)
        return root / name

    def bogus(d: pydicom.Dataset, cert: Path) -> None:
        item = pydicom.Dataset()
        item.MACIDNumber, item.DigitalSignatureUID = 9, pydicom.uid.generate_uid()
        item.DigitalSignatureDateTime, item.CertificateType = "20260101120000", "X509_1993_SIG"
        der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(serialization.Encoding.DER)
        item.CertificateOfSigner, item.Signature = der, os.urandom(256)
        params = pydicom.Dataset()
        params.MACIDNumber, params.MACAlgorithm = 9, "SHA256"
        params.MACCalculationTransferSyntaxUID = "1.2.840.10008.1.2.1"
        params.DataElementsSigned = [0x00100010, 0x7FE00010]
        d.DigitalSignaturesSequence = Sequence([*d.get("DigitalSignaturesSequence", []), item])
        d.MACParametersSequence = Sequence([*d.get("MACParametersSequence", []), params])

    def rle(d: pydicom.Dataset) -> None:
        d.compress(RLELossless)

    inverse = edited("inverse.dcm", lambda d: setattr(d, "VOILUTFunction", "SIGMOID"))
    countersigned = sign_file(inverse, root / "countersigned.dcm", load_identity(rogue, ID_PW))
    un = edited("un-src.dcm", lambda d: d.add_new(0x00281056, "UN", b"SIGMOID "))
    data = un.read_bytes().replace(
        b"\x28\x00\x56\x10CS\x08\x00SIGMOID ", b"\x28\x00\x56\x10UN\x00\x00\x08\x00\x00\x00SIGMOID "
    )
    (root / "un.dcm").write_bytes(data)
    back_then = now - dt.timedelta(minutes=5)
    stamped = pydicom.dcmread(original)
    sign_dataset(stamped, load_identity(brief, ID_PW), now=back_then)
    item = stamped.DigitalSignaturesSequence[0]
    item.CertifiedTimestampType = "CMS_TSP"
    item.CertifiedTimestamp = make_timestamp_token(bytes(item.Signature), back_then, self_tsa)
    stamped.save_as(root / "self-stamped.dcm")
    future = pydicom.dcmread(original)
    sign_dataset(future, load_identity(tech, ID_PW), now=now + dt.timedelta(days=2))
    future.save_as(root / "future.dcm")
    revoked = issue("revoked", "ca", "Carol Revoked")
    back = pydicom.dcmread(original)
    sign_dataset(back, load_identity(revoked, ID_PW), now=now - dt.timedelta(minutes=5))
    back.save_as(root / "backdated-revoked.dcm")
    from radproof.provenance import revoke_identity

    revoke_identity(revoked, root / "ca", CA_PW)
    data = signed.read_bytes()
    at = data.index(b"\x10\x00\x10\x00PN")
    forged_name = b"\x10\x00\x10\x00PN" + (8).to_bytes(2, "little") + b"Evil^Dr "
    (root / "doubled.dcm").write_bytes(data[:at] + forged_name + data[at:])
    lone = root / "anchor"
    lone.mkdir()
    (lone / "ca.pem").write_bytes((root / "ca" / "ca.pem").read_bytes())

    return [
        ("genuine signed image (control)", signed, []),
        (
            "PatientName edited after signing",
            edited("renamed.dcm", lambda d: setattr(d, "PatientName", "Other^Patient")),
            [],
        ),
        ("VOI LUT function added after signing", inverse, []),
        (
            "ImageLaterality added after signing",
            edited("laterality.dcm", lambda d: setattr(d, "ImageLaterality", "L")),
            [],
        ),
        ("the same, countersigned by a stranger", countersigned, []),
        (
            "DCMTK signature over the pixel data only",
            dcmsign_sign(original, root / "pixels.dcm", tech, "+m2", "-t", "7fe0,0010"),
            [],
        ),
        ("protected attribute smuggled in with VR UN", root / "un.dcm", []),
        ("lossless RLE transcode of a signed image", edited("rle.dcm", rle), []),
        ("a second, forged PatientName before the signed one", root / "doubled.dcm", []),
        (
            "bogus signature by a stranger on a genuine image",
            edited("bogus.dcm", lambda d: bogus(d, rogue / "cert.pem")),
            [],
        ),
        (
            "bogus signature carrying the trusted certificate",
            edited("forged.dcm", lambda d: bogus(d, tech / "cert.pem")),
            [],
        ),
        (
            "signed by a stranger (valid, untrusted)",
            sign_file(original, root / "stranger.dcm", load_identity(rogue, ID_PW)),
            [],
        ),
        ("expired signer, self-made timestamp 'before expiry'", root / "self-stamped.dcm", []),
        ("signing time two days in the future", root / "future.dcm", []),
        ("revoked signer, signing time backdated", root / "backdated-revoked.dcm", []),
        ("genuine image, no CRL, pacs profile", signed, ["--profile", "pacs", "--trust", str(lone / "ca.pem")]),
        ("serverAuth-only certificate", dcmsign_sign(original, root / "server.dcm", server, "+m2"), []),
        ("SHA-1 MAC (dcmsign +ms)", dcmsign_sign(original, root / "sha1.dcm", tech, "+ms"), []),
        ("MD5 MAC (dcmsign +mm)", dcmsign_sign(original, root / "md5.dcm", tech, "+mm"), []),
        ("RSA-1024 signer", dcmsign_sign(original, root / "short.dcm", short, "+m2"), []),
    ]


def verdict(src: Path | None, path: Path, ca: Path, extra: list[str]) -> str:
    """The verdict of the radproof in ``src`` (None: this tree), or the error it gave."""
    env = {**os.environ, "RADPROOF_CHECK__USE_DETECTOR": "false"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    args = ["--trust", str(ca), *extra] if "--trust" not in extra else extra
    done = subprocess.run(
        [sys.executable, "-m", "radproof", "check", str(path), "--json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tempfile.gettempdir(),
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return f"error (exit {done.returncode})"
    record = json.loads(lines[-1])
    if record.get("verdict") is None:
        return f"input error (exit {done.returncode})"
    return str(record["verdict"])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", type=Path, action="append", default=[], help="another radproof src/ folder")
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        attacks = build(root)
        trees: list[tuple[str, Path | None]] = [(str(p), p) for p in opts.compare] + [("this tree", None)]
        print("| attack | " + " | ".join(name for name, _ in trees) + " |")
        print("|---|" + "---|" * len(trees))
        for name, path, extra in attacks:
            cells = [verdict(src, path, root / "ca" / "ca.pem", extra) for _, src in trees]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
