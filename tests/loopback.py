"""Peers on the loopback for tests that need one on the network: a small HTTP service (a TSA, an OCSP
responder) and a syslog collector.

Subclass :class:`DerService`, say how a request body becomes the answer, and ``with serve(Handler) as url``;
:class:`SyslogCollector` keeps every message it receives over TCP (RFC 6587 octet counting).
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class DerService(http.server.BaseHTTPRequestHandler):
    """Answers each POST with :meth:`answer` (None: HTTP 500), silently."""

    content_type = "application/octet-stream"

    def answer(self, body: bytes) -> bytes | None:
        raise NotImplementedError

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        data = self.answer(body)
        if data is None:
            self.send_response(500)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(handler: type[DerService], path: str = "/") -> Iterator[str]:
    """Run ``handler`` on 127.0.0.1 (a free port) while in the block; yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()


class SyslogCollector:
    """A syslog receiver on the loopback: TCP, RFC 6587 octet counting."""

    def __init__(self, port: int = 0) -> None:
        self.messages: list[bytes] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen()
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while b" " in buf:
                    length, rest = buf.split(b" ", 1)
                    if len(rest) < int(length):
                        break
                    self.messages.append(rest[: int(length)])
                    buf = rest[int(length) :]

    def close(self) -> None:
        self._sock.close()
