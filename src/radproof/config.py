"""The one configuration model of radproof: a TOML file plus RADPROOF_* environment variables.

Precedence, highest first: values passed in code (command-line options), environment variables
(``RADPROOF_CHECK__PROFILE=pacs``: section and key joined by a double underscore), the TOML file
(``--config FILE`` or ``RADPROOF_CONFIG``), then the defaults below.

.. code-block:: toml

    [check]
    profile = "pacs"                 # default | pacs | detector-only
    min_watermark_confidence = 0.6

    [trust]
    ca = "/etc/radproof/ca.pem"
    crl = "/etc/radproof/ca.crl"      # default: crl.pem beside the CA file
    tsa = "/etc/radproof/tsa-ca.pem"  # who may vouch for signing times

    [watermark]
    key = "/etc/radproof/watermark.key"

    [scan]
    workers = 4
    batch_size = 16

    [detector]
    model = "/etc/radproof/detector"  # a folder written by `radproof adapt` (default: the shipped one)

    [gateway]                          # the C-STORE proxy in front of a PACS (docs/gateway.md)
    ae_title = "RADPROOF"
    port = 11112
    allowed_callers = ["MODALITY1"]
    spool = "/var/lib/radproof/spool"
    quarantine = "/var/lib/radproof/quarantine"
    [gateway.upstream]
    ae_title = "ORTHANC"
    host = "127.0.0.1"
    port = 4242
    [gateway.actions]                  # what each verdict leads to
    unverified = "quarantine"

Other parts of radproof add their own section here; every section is a plain pydantic model.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from radproof.check import PROFILES, Policy, VerdictKind, policy_for_profile
from radproof.errors import ConfigError

CONFIG_ENV = "RADPROOF_CONFIG"

__all__ = [
    "CONFIG_ENV",
    "AuditSettings",
    "CheckSettings",
    "DetectorSettings",
    "GatewayAction",
    "GatewaySettings",
    "ReportSettings",
    "ScanSettings",
    "Settings",
    "TrustSettings",
    "WatermarkSettings",
    "load_settings",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _CheckBase(_Section):
    """``[check]``: the verdict rules (see docs/check.md). Unset keys come from the profile.

    Every field of :class:`~radproof.check.Policy` is a key here (declared once, on the policy);
    tags and verdicts are written as text (``protected_add = ["PatientAge"]``, ``fail_on = ["tampered"]``).
    """

    profile: str = "default"

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in PROFILES:
            raise ValueError(f"unknown check profile {value!r}; choose one of {', '.join(PROFILES)}")
        return value

    def policy(self) -> Policy:
        """The :class:`~radproof.check.Policy` these settings describe."""
        values = self.model_dump(exclude={"profile"}, exclude_none=True)
        for name in ("protected_add", "protected_remove"):
            if name in values:
                values[name] = frozenset(_parse_tag(text, name) for text in values[name])
        if "fail_on" in values:
            values["fail_on"] = frozenset(VerdictKind(v) for v in values["fail_on"])
        try:
            return policy_for_profile(self.profile, **values)
        except ValueError as exc:
            raise ConfigError(f"[check]: {exc}") from None


# How a policy field is written in TOML when it differs from the policy's own type.
_WRITTEN_AS: dict[str, Any] = {
    "protected_add": list[str],
    "protected_remove": list[str],
    "fail_on": list[VerdictKind],
}
# Probabilities, checked when the file is read (the policy checks them again when it is built).
_UNIT_INTERVAL = frozenset({"synthetic_threshold", "real_threshold", "min_watermark_confidence"})


def _policy_fields() -> dict[str, Any]:
    """One optional settings field per :class:`~radproof.check.Policy` field (None: the profile decides)."""
    types = get_type_hints(Policy)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(Policy):
        bounded = f.name in _UNIT_INTERVAL
        field = Field(default=None, ge=0.0 if bounded else None, le=1.0 if bounded else None)
        fields[f.name] = (_WRITTEN_AS.get(f.name, types[f.name]) | None, field)
    return fields


if TYPE_CHECKING:

    class CheckSettings(_CheckBase):
        def __getattr__(self, name: str) -> Any: ...

else:
    CheckSettings = create_model(
        "CheckSettings", __base__=_CheckBase, __module__=__name__, __doc__=_CheckBase.__doc__, **_policy_fields()
    )


def _parse_tag(text: str, where: str) -> int:
    """A DICOM keyword (``PatientName``) or tag (``(0010,0010)``, ``00100010``) as an int."""
    from pydicom.datadict import tag_for_keyword

    cleaned = text.strip().strip("()").replace(",", "").replace(" ", "")
    tag = tag_for_keyword(text.strip())
    if tag is not None:
        return int(tag)
    if len(cleaned) == 8:
        try:
            return int(cleaned, 16)
        except ValueError:
            pass
    raise ConfigError(f"[check] {where}: {text!r} is neither a DICOM keyword nor a tag like (0010,0010)")


class TrustSettings(_Section):
    """``[trust]``: trust anchors for signature verification, and for timestamp authorities."""

    ca: list[Path] = Field(default_factory=list, description="CA certificate files (PEM)")
    crl: list[Path] = Field(
        default_factory=list, description="certificate revocation lists (default: crl.pem beside each CA file)"
    )
    tsa: list[Path] = Field(default_factory=list, description="anchors for RFC 3161 timestamp authorities (PEM)")
    allow_leaf_anchors: bool = Field(default=False, description="accept a signer's own certificate as an anchor")
    ocsp: bool = Field(default=True, description="ask the OCSP responder a certificate names when no CRL settles it")

    @field_validator("ca", "crl", "tsa", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if value is None or value == "":
            return []
        if isinstance(value, str | Path):
            return [value]
        return value


class WatermarkSettings(_Section):
    """``[watermark]``: the secret key used to read watermarks (passphrase from RADPROOF_PASSPHRASE)."""

    key: Path | None = None


class DetectorSettings(_Section):
    """``[detector]``: which detector judges the pixels (see docs/detector.md, "Commissioning")."""

    model: Path | None = Field(default=None, description="detector folder; None = the shipped detector")


class ScanSettings(_Section):
    """``[scan]``: archive scans."""

    workers: int = Field(default=0, ge=0, description="local worker processes; 0 = one per CPU core")
    batch_size: int = Field(default=0, ge=0, description="files per task; 0 = chosen from the file count")
    scheduler: str | None = Field(default=None, description="Dask scheduler address, tcp://HOST:PORT")
    previews: bool = Field(default=True, description="keep thumbnails and overlays for the HTML report")
    max_file_bytes: int = Field(default=2 * 1024**3, gt=0)


class ReportSettings(_Section):
    """``[report]``: the HTML report."""

    show_phi: bool = False
    max_details: int = Field(default=200, ge=0, description="images with a detail section (flagged first)")


class GatewayAction(StrEnum):
    """What the gateway does with an image, by its verdict (docs/gateway.md)."""

    FORWARD = "forward"  # send it on to the archive
    FORWARD_AND_ALERT = "forward-and-alert"  # send it on, and raise a security alert
    QUARANTINE = "quarantine"  # accept it (the sender sees success), hold it for review, alert
    REJECT = "reject"  # refuse it: the sender sees a failure status and keeps its copy


class TlsSettings(_Section):
    """DICOM TLS (PS3.15 B.1, TLS 1.2 or later) for one side of the gateway. Off unless a certificate
    (listening side) or ``enabled`` (towards the archive) is set."""

    enabled: bool = Field(default=False, description="towards the archive: connect with TLS")
    certificate: Path | None = Field(default=None, description="our certificate chain (PEM)")
    key: Path | None = Field(default=None, description="its private key (PEM, encrypted or not)")
    key_passphrase_file: Path | None = Field(default=None, description="the key's passphrase, if encrypted")
    ca: Path | None = Field(default=None, description="CA certificates the peer's certificate must chain to")
    require_peer_certificate: bool = Field(
        default=False, description="listening side: mutual TLS, a caller without a certificate is refused"
    )


class UpstreamSettings(_Section):
    """``[gateway.upstream]``: the archive (PACS) the gateway forwards to."""

    ae_title: str = Field(default="ORTHANC", min_length=1, max_length=16)
    host: str = "127.0.0.1"
    port: int = Field(default=4242, gt=0, lt=65536)
    tls: TlsSettings = Field(default_factory=TlsSettings)


class GatewayActions(_Section):
    """``[gateway.actions]``: the action for each verdict. No default drops an image silently."""

    authentic: GatewayAction = GatewayAction.FORWARD
    unverified: GatewayAction = GatewayAction.QUARANTINE
    suspect: GatewayAction = GatewayAction.QUARANTINE
    synthetic: GatewayAction = GatewayAction.QUARANTINE
    tampered: GatewayAction = GatewayAction.QUARANTINE
    #: An image the check could not judge (unreadable pixels, a layer failing on it).
    error: GatewayAction = GatewayAction.QUARANTINE

    def for_verdict(self, verdict: VerdictKind | None) -> GatewayAction:
        """The action for ``verdict`` (None: the check failed)."""
        action: GatewayAction = getattr(self, "error" if verdict is None else str(verdict))
        return action


class GatewaySettings(_Section):
    """``[gateway]``: the C-STORE proxy in front of a PACS (docs/gateway.md)."""

    ae_title: str = Field(default="RADPROOF", min_length=1, max_length=16)
    host: str = Field(default="127.0.0.1", description="address to listen on (0.0.0.0: every interface)")
    port: int = Field(default=11112, gt=0, lt=65536)
    allowed_callers: list[str] = Field(
        default_factory=list, description="calling AE titles accepted; empty: any caller (not for production)"
    )
    allowed_addresses: list[str] = Field(default_factory=list, description="peer IP addresses accepted; empty: any")
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    actions: GatewayActions = Field(default_factory=GatewayActions)
    spool: Path = Field(default=Path("radproof-gateway/spool"), description="where received images wait")
    quarantine: Path = Field(default=Path("radproof-gateway/quarantine"), description="where held images go")
    journal: Path | None = Field(default=None, description="the state journal (SQLite); default: in the spool")
    spool_limit_bytes: int = Field(default=20 * 1024**3, gt=0, description="past it, senders are told to wait")
    max_associations: int = Field(default=8, gt=0)
    stow_port: int | None = Field(
        default=None, gt=0, lt=65536, description="also serve STOW-RS (POST /studies) on this port, same host"
    )
    forward_associations: int = Field(default=2, gt=0, le=16, description="associations forwarding side by side")
    max_pdu_bytes: int = Field(default=262_144, ge=0, description="largest PDU received (0: unlimited)")
    timeout_seconds: float = Field(default=30.0, gt=0, description="network, association and DIMSE timeouts")
    retry_seconds: float = Field(default=5.0, gt=0, description="first wait before forwarding again; doubles")
    retry_max_seconds: float = Field(default=300.0, gt=0)
    log_patient_names: bool = Field(default=False, description="patient names in log lines (off: UIDs only)")
    identity: Path | None = Field(
        default=None, description="a device identity: the gateway signs what it verified before forwarding it"
    )
    identity_passphrase_file: Path | None = Field(
        default=None, description="that key's passphrase (else $RADPROOF_GATEWAY_PASSPHRASE)"
    )

    @field_validator("ae_title", "allowed_callers")
    @classmethod
    def _ae_titles(cls, value: Any) -> Any:
        for title in [value] if isinstance(value, str) else value:
            if not title.strip() or len(title) > 16 or "\\" in title or not title.isascii():
                raise ValueError(f"{title!r} is not an AE title (1-16 ASCII characters, no backslash)")
        return value

    def journal_path(self) -> Path:
        return self.journal if self.journal is not None else self.spool / "journal.sqlite"


class AuditSettings(_Section):
    """``[audit]``: the audit trail (docs/gateway.md, "Audit trail")."""

    log: Path | None = Field(default=None, description="the hash-chained log; default: audit.jsonl beside the journal")
    syslog: str | None = Field(default=None, description="ATNA collector, tcp://HOST:PORT or tls://HOST:PORT")
    syslog_ca: Path | None = Field(default=None, description="CA file the TLS collector's certificate chains to")
    identity: Path | None = Field(default=None, description="identity folder whose key seals the log")
    passphrase_file: Path | None = Field(
        default=None, description="that key's passphrase (else $RADPROOF_AUDIT_PASSPHRASE)"
    )
    seal_every: int = Field(default=100, gt=0, description="records between two seals")


class Settings(BaseSettings):
    """Every setting radproof reads. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="RADPROOF_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    check: CheckSettings = Field(default_factory=CheckSettings)
    trust: TrustSettings = Field(default_factory=TrustSettings)
    watermark: WatermarkSettings = Field(default_factory=WatermarkSettings)
    scan: ScanSettings = Field(default_factory=ScanSettings)
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)

    def with_overrides(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some keys of some sections replaced (None values are ignored).

        >>> settings.with_overrides(scan={"workers": 2}, trust={"ca": ["ca.pem"]})
        """
        data = self.model_dump()
        for name, values in sections.items():
            if name not in data:
                raise ConfigError(f"unknown configuration section [{name}]")
            data[name] = {**data[name], **{k: v for k, v in values.items() if v is not None}}
        try:
            return Settings.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, "options")) from None


def load_settings(config_file: str | os.PathLike[str] | None = None) -> Settings:
    """The settings from ``config_file`` (or ``$RADPROOF_CONFIG``) and the RADPROOF_* environment.

    Raises
    ------
    ConfigError
        The file is missing, is not valid TOML, or holds an unknown key or a bad value.
    """
    path = config_file if config_file is not None else os.environ.get(CONFIG_ENV) or None
    file_data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            file_data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"configuration file {p} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {p}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"configuration file {p} is not valid TOML: {exc}") from None
        unknown = sorted(set(file_data) - set(Settings.model_fields))
        if unknown:
            raise ConfigError(
                f"configuration file {p}: unknown section(s) {', '.join(unknown)}; "
                f"known: {', '.join(Settings.model_fields)}"
            )
        file_data = _resolve_paths(file_data, p.parent)
    try:
        return _build(file_data)
    except ValidationError as exc:
        where = f"configuration file {path} or RADPROOF_* variables" if path else "RADPROOF_* variables"
        raise ConfigError(_explain(exc, where)) from None


class _FileSource(PydanticBaseSettingsSource):
    """The TOML file's values, below the environment in precedence."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _build(file_data: dict[str, Any]) -> Settings:
    class _Layered(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _FileSource(settings_cls, file_data))

    layered = _Layered()
    # A plain Settings (picklable: it travels to worker processes and Dask workers).
    return Settings.model_validate(layered.model_dump())


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative paths in the file are relative to the file's folder."""

    def fix(value: Any) -> Any:
        if isinstance(value, str) and value and not Path(value).is_absolute():
            return str(base / value)
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    paths = (
        ("trust", ("ca", "crl", "tsa")),
        ("watermark", ("key",)),
        ("detector", ("model",)),
        ("gateway", ("spool", "quarantine", "journal", "identity", "identity_passphrase_file")),
        ("audit", ("log", "syslog_ca", "identity", "passphrase_file")),
    )
    for section, keys in paths:
        if isinstance(out.get(section), dict):
            for key in keys:
                if key in out[section]:
                    out[section][key] = fix(out[section][key])
    gateway = out.get("gateway")
    if isinstance(gateway, dict):
        upstream = gateway.get("upstream")
        for tls in (gateway.get("tls"), upstream.get("tls") if isinstance(upstream, dict) else None):
            if isinstance(tls, dict):
                for key in ("certificate", "key", "key_passphrase_file", "ca"):
                    if key in tls:
                        tls[key] = fix(tls[key])
    return out


def _explain(exc: ValidationError, where: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return f"invalid settings in {where}: " + "; ".join(parts)


def profiles() -> list[str]:
    """Names of the check profiles."""
    return list(PROFILES)
