"""A Slack-like incoming webhook on 127.0.0.1 for tests: it records every POST and answers `ok`, or the
statuses it is told to answer first."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """Records each request (`attempts`) and each accepted message (`messages`, the decoded JSON)."""

    def __init__(self) -> None:
        self.attempts: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self._answers: deque[int] = deque()
        self._always: int | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> WebhookReceiver:
        handler = type("Handler", (_Handler,), {"receiver": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        """Shaped like a Slack webhook URL: its path is the secret."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/services/T0TEST/B0TEST/secret-token-123"

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order; then `ok` again."""
        with self._lock:
            self._answers.extend(statuses)

    def always(self, status: int | None) -> None:
        """Answer every request with this status (None: back to normal)."""
        self._always = status

    def wait_for_messages(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """The accepted messages once there are `count` of them (or all there are after `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return list(self.messages)

    def _next_status(self) -> int:
        with self._lock:
            if self._always is not None:
                return self._always
            return self._answers.popleft() if self._answers else 200


class _Handler(BaseHTTPRequestHandler):
    receiver: WebhookReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        status = self.receiver._next_status()
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        self.receiver.attempts.append({"path": self.path, "status": status, "body": payload})
        if status == 200 and payload is not None:
            self.receiver.messages.append(payload)
        text = b"ok" if status == 200 else b"server_error"
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args) -> None:
        pass


def refused_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/T0TEST/B0TEST/down"
