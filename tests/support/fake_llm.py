"""A real HTTP server on 127.0.0.1 that speaks OpenAI's `POST /v1/chat/completions`, for the `llm` inferencer.

By default it answers like a well-behaved model: for every model in the request, a valid answer to exactly
the fields asked (see `well_behaved`). A test scripts other behaviour by replacing `answer` with a function
from the list of requested items to the reply's message content (a string, sent as is — so malformed JSON is
easy), or `reply` for the whole HTTP answer (status and body). Every request is recorded.

The `fake_llm` fixture starts the server, points CORE_INFERENCER / CORE_LLM_* at it with small HTTP limits,
and yields the FakeLLM controller.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

API_KEY = "llm-test-key-4d1f"
MODEL = "fake/registry-helper"

# What the well-behaved model says about any model: plausible, in range, and no prices.
WELL_BEHAVED_VALUES: dict[str, Any] = {
    "context_window": 32768,
    "max_output_tokens": 4096,
    "modalities": {"input": ["text"], "output": ["text"]},
    "family": "fakefam",
    "parameter_size": "7B",
}


def well_behaved(items: list[dict[str, Any]]) -> str:
    """A valid answer for every requested model, filling exactly the fields asked for."""
    answers = []
    for item in items:
        answer: dict[str, Any] = {"id": item["id"], "confidence": 0.8}
        for name in item["fields"]:
            if name.startswith("capabilities."):
                answer.setdefault("capabilities", {})[name.removeprefix("capabilities.")] = True
            else:
                answer[name] = WELL_BEHAVED_VALUES[name]
        answers.append(answer)
    return json.dumps({"models": answers})


def completion(content: str, *, prompt_tokens: int = 100, completion_tokens: int = 50) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class FakeLLM:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        # The key the endpoint accepts; a test may swap in its own canary (and CORE_LLM_API_KEY with it).
        self.api_key = API_KEY
        self.answer: Callable[[list[dict[str, Any]]], str] = well_behaved
        # Full control when set: request body → (HTTP status, JSON-able body).
        self.reply: Callable[[dict[str, Any]], tuple[int, Any]] | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def requested_ids(self) -> list[str]:
        """Every model id asked about, over all requests, in order."""
        return [item["id"] for body in self.requests for item in self.items(body)]

    @staticmethod
    def items(body: dict[str, Any]) -> list[dict[str, Any]]:
        return json.loads(body["messages"][-1]["content"])["models"]

    def start(self) -> FakeLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _respond(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            self.requests.append({**body, "_authorization": headers.get("authorization"), "_headers": headers})
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"message": "Invalid API Key", "code": "invalid_api_key"}}
        if self.reply is not None:
            return self.reply(body)
        return 200, completion(self.answer(self.items(body)))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length))
                status, payload = fake._respond(body, {k.lower(): v for k, v in self.headers.items()})
                self._send(status, payload)

            def _send(self, status: int, payload: Any) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def fake_llm(monkeypatch) -> Iterator[FakeLLM]:
    """A running fake OpenAI-compatible endpoint, with CORE_INFERENCER=llm and CORE_LLM_* pointing at it."""
    fake = FakeLLM().start()
    for name, value in {
        "CORE_INFERENCER": "llm",
        "CORE_LLM_BASE_URL": fake.base_url,
        "CORE_LLM_API_KEY": fake.api_key,
        "CORE_LLM_MODEL": MODEL,
        "CORE_LLM_TIMEOUT": "5",
        "CORE_HTTP_MAX_ATTEMPTS": "2",
        "CORE_HTTP_MAX_RETRY_WAIT": "0.05",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield fake
    finally:
        fake.stop()
