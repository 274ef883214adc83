"""Options shared by ``radproof check`` and ``radproof scan``: configuration, trust, key, profile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML configuration file (default: $RADPROOF_CONFIG).")
]
TrustOpt = Annotated[Path | None, typer.Option("--trust", help="CA certificate (PEM) that signatures must chain to.")]
CrlOpt = Annotated[
    Path | None,
    typer.Option("--crl", help="Certificate revocation list of that CA (default: crl.pem beside the --trust file)."),
]
TsaTrustOpt = Annotated[
    Path | None,
    typer.Option(
        "--tsa-trust",
        help="CA certificate(s) of timestamp authorities (PEM). Without it, signing times are not trusted "
        "and certificates are checked as of now.",
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", help="Watermark key file (passphrase: --passphrase-file or RADPROOF_PASSPHRASE)."),
]
PassOpt = Annotated[Path | None, typer.Option("--passphrase-file", help="File holding the watermark key's passphrase.")]
ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", help="Verdict rules: default, pacs, detector-only, legacy (see docs/check.md)."),
]
PhiOpt = Annotated[bool, typer.Option("--show-phi", help="Show patient identifiers in the HTML report.")]


def settings_from_options(
    config: Path | None,
    *,
    trust: Path | None,
    crl: Path | None,
    key: Path | None,
    profile: str | None,
    show_phi: bool,
    scan: dict[str, Any] | None = None,
    tsa: Path | None = None,
) -> Any:
    """The configuration with command-line options on top."""
    from radproof.config import load_settings

    settings = load_settings(config)
    return settings.with_overrides(
        trust={"ca": [trust] if trust else None, "crl": [crl] if crl else None, "tsa": [tsa] if tsa else None},
        watermark={"key": key},
        check={"profile": profile},
        report={"show_phi": True if show_phi else None},
        scan=scan or {},
    )


def passphrase_for(settings: Any, passphrase_file: Path | None) -> bytes | None:
    """The watermark key's passphrase, when a key is configured and the watermark layer is used."""
    if settings.watermark.key is None or not settings.check.policy().use_watermark:
        return None
    from radproof.cli._common import read_passphrase

    return read_passphrase(passphrase_file, what=f"watermark key {settings.watermark.key}")
