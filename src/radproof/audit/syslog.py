"""Audit messages over syslog: RFC 5424 messages, TCP with octet counting (RFC 6587), TLS (RFC 5425) as an option.

A message is first written to an outbox folder (fsync), then sent by a background thread; it is
removed only once the collector's connection took it. A collector that is down leaves the messages
waiting, in order, until it is back: nothing is lost, and a restart sends what is still waiting.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import ssl
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from radproof.errors import ConfigError
from radproof.fileio import atomic_write_bytes

log = logging.getLogger("radproof.audit")

#: local4 (facility 20) x 8 + notice (5): what IHE ATNA collectors are usually configured for.
PRIORITY = 20 * 8 + 5
MSGID = "IHE+RFC-3881"


def rfc5424(xml: bytes, *, app: str = "radproof", host: str | None = None, when: dt.datetime | None = None) -> bytes:
    """One RFC 5424 syslog message carrying ``xml`` (BOM-prefixed UTF-8, as the RFC asks)."""
    stamp = (when or dt.datetime.now(dt.UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    name = (host or socket.gethostname() or "-")[:255]
    header = f"<{PRIORITY}>1 {stamp} {name} {app} {os.getpid()} {MSGID} - "
    return header.encode("ascii", "replace") + b"\xef\xbb\xbf" + xml


class SyslogOutbox:
    """Sends queued messages to ``target`` (``tcp://HOST:PORT`` or ``tls://HOST:PORT``) in order."""

    def __init__(self, target: str, folder: Path, *, ca_file: Path | None = None, retry_seconds: float = 2.0) -> None:
        parts = urlsplit(target)
        if parts.scheme not in ("tcp", "tls") or not parts.hostname or not parts.port:
            raise ConfigError(f"syslog target {target!r} must be tcp://HOST:PORT or tls://HOST:PORT")
        self.host, self.port, self.tls = parts.hostname, parts.port, parts.scheme == "tls"
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._ca_file = ca_file
        self._retry = retry_seconds
        self._sock: socket.socket | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._counter = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="radproof-syslog", daemon=True)
        self._thread.start()

    def put(self, message: bytes) -> Path:
        """Queue one message durably; it is sent as soon as the collector takes it."""
        with self._lock:
            self._counter += 1
            name = f"{time.time_ns():020d}-{self._counter:06d}.msg"
        path = self.folder / name
        atomic_write_bytes(path, message, mode=0o600)
        self._wake.set()
        return path

    def waiting(self) -> int:
        return len(list(self.folder.glob("*.msg")))

    def close(self, *, flush_seconds: float = 5.0) -> None:
        deadline = time.monotonic() + flush_seconds
        while self.waiting() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=flush_seconds)
        self._disconnect()

    def _run(self) -> None:
        while not self._stop.is_set():
            pending = sorted(self.folder.glob("*.msg"))
            if not pending:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            for path in pending:
                if self._stop.is_set() or not self._send(path):
                    break
            else:
                continue
            self._stop.wait(self._retry)

    def _send(self, path: Path) -> bool:
        try:
            message = path.read_bytes()
        except FileNotFoundError:
            return True
        try:
            sock = self._connect()
            sock.sendall(f"{len(message)} ".encode("ascii") + message)  # RFC 6587 octet counting
        except OSError as exc:
            log.warning("audit collector %s:%s unreachable (%s); %d message(s) wait", self.host, self.port,
                        exc, self.waiting())  # fmt: skip
            self._disconnect()
            return False
        path.unlink(missing_ok=True)
        return True

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        raw = socket.create_connection((self.host, self.port), timeout=10)
        if self.tls:
            context = ssl.create_default_context(cafile=str(self._ca_file) if self._ca_file else None)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            raw = context.wrap_socket(raw, server_hostname=self.host)
        self._sock = raw
        return raw

    def _disconnect(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
