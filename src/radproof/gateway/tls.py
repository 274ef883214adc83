"""DICOM TLS contexts for the gateway: TLS 1.2 or later, certificates checked (PS3.15 B.1, BCP 195)."""

from __future__ import annotations

import ssl

from radproof.config import TlsSettings
from radproof.errors import ConfigError


def server_context(tls: TlsSettings) -> ssl.SSLContext | None:
    """The listening side's context, or None when no certificate is configured (plain TCP)."""
    if tls.certificate is None:
        if tls.require_peer_certificate:
            raise ConfigError("[gateway.tls] require_peer_certificate needs a certificate and key for the gateway")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_own(context, tls, "[gateway.tls]")
    if tls.ca is not None:
        _load_ca(context, tls, "[gateway.tls]")
        context.verify_mode = ssl.CERT_REQUIRED if tls.require_peer_certificate else ssl.CERT_OPTIONAL
    elif tls.require_peer_certificate:
        raise ConfigError("[gateway.tls] require_peer_certificate needs ca: whom the callers' certificates chain to")
    return context


def client_context(tls: TlsSettings) -> ssl.SSLContext | None:
    """The context for connections to the archive, or None when TLS is not enabled towards it."""
    if not tls.enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.ca is not None:
        _load_ca(context, tls, "[gateway.upstream.tls]")
    if tls.certificate is not None:
        _load_own(context, tls, "[gateway.upstream.tls]")
    return context


def _load_own(context: ssl.SSLContext, tls: TlsSettings, where: str) -> None:
    password = None
    if tls.key_passphrase_file is not None:
        try:
            password = tls.key_passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{where} key_passphrase_file cannot be read: {exc.strerror}") from None
    try:
        context.load_cert_chain(str(tls.certificate), str(tls.key) if tls.key else None, password=password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where} certificate or key cannot be used: {exc}") from None


def _load_ca(context: ssl.SSLContext, tls: TlsSettings, where: str) -> None:
    try:
        context.load_verify_locations(cafile=str(tls.ca))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where} ca cannot be read: {exc}") from None
