"""A small HTTP service on the loopback for tests that need a peer on the network (a TSA, an OCSP responder).

Subclass :class:`DerService`, say how a request body becomes the answer, and ``with serve(Handler) as url``.
"""

from __future__ import annotations

import http.server
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
