"""Loopback HTTP servers for the benchmark: the five provider APIs over a synthetic catalog, and an
OpenAI-compatible chat endpoint for the `llm` inferencer.

Lean on purpose: every answer is encoded once when a catalog is loaded, so that at 100,000 models the
server costs the sync (which runs in another process) nothing but socket time. The provider server
pages like the real APIs — OpenRouter by `links.next`, Gemini by `nextPageToken` — records when each
request started and ended (to show that the five providers are fetched concurrently), and answers a few
control requests from the benchmark worker: switch to the mutated catalog, label the next phase, answer
with a remote API's latency.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from benchmarks.catalog import Catalog

PREFIXES = {
    "google": "/google/v1beta",
    "mistral": "/mistral/v1",
    "openrouter": "/openrouter/api/v1",
    "groq": "/groq/openai/v1",
    "ollama": "/ollama",
}
KEY_VARIABLES = {
    "google": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "groq": "GROQ_API_KEY",
}
# OpenRouter's `links.next` is a path on its own host, `/api/v1/models?offset=…&limit=…`.
OPENROUTER_PAGE = 500
# What the client asks for (pageSize=1000) and the Gemini API's maximum: catalogs beyond 1,000 Gemini
# models (from about 14,000 models in all) page with `nextPageToken`.
GOOGLE_PAGE = 1000


@dataclass(frozen=True)
class Answers:
    """Every response body of one catalog, encoded."""

    google: list[bytes]
    mistral: bytes
    openrouter: list[bytes]
    groq: bytes
    ollama_tags: bytes
    ollama_shows: dict[str, bytes]


def encode(catalog: Catalog) -> Answers:
    def dumps(document: Any) -> bytes:
        return json.dumps(document, separators=(",", ":")).encode()

    google = []
    for start in range(0, max(1, len(catalog.google)), GOOGLE_PAGE):
        page: dict[str, Any] = {"models": catalog.google[start : start + GOOGLE_PAGE]}
        if start + GOOGLE_PAGE < len(catalog.google):
            page["nextPageToken"] = _token(start + GOOGLE_PAGE)
        google.append(dumps(page))
    openrouter = []
    total = len(catalog.openrouter)
    for start in range(0, max(1, total), OPENROUTER_PAGE):
        following = start + OPENROUTER_PAGE
        link = f"/api/v1/models?{urlencode({'offset': following, 'limit': OPENROUTER_PAGE})}"
        openrouter.append(dumps({
            "data": catalog.openrouter[start:following],
            "total_count": total,
            "links": {"next": link if following < total else None},
        }))
    return Answers(
        google=google,
        mistral=dumps({"object": "list", "data": [entry for group in catalog.mistral for entry in group]}),
        openrouter=openrouter,
        groq=dumps({"object": "list", "data": catalog.groq}),
        ollama_tags=dumps({"models": catalog.ollama_tags}),
        ollama_shows={name: dumps(show) for name, show in catalog.ollama_shows.items()},
    )


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


@dataclass(frozen=True)
class Request:
    phase: str
    provider: str
    started: float  # time.monotonic(), the same clock in every process of the machine
    ended: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Loopback:
    """A threaded HTTP server on 127.0.0.1 whose handler class reaches its owner as `self.owner`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _Server(("127.0.0.1", 0), type("Handler", (handler,), {"owner": self}))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"


class ProviderServer(_Loopback):
    """The five provider APIs on 127.0.0.1 serving `base`, or `mutated` once the worker asks for it."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.phase = ""
        # Seconds each answer waits before it is sent, as a remote API's round trip would.
        self.latency = 0.0
        self._variants: dict[str, Answers] = {}
        self._current: Answers | None = None
        self._lock = threading.Lock()
        super().__init__(_ProviderHandler)

    def environment(self) -> dict[str, str]:
        """Base URLs and (dummy) keys that point the registry at this server."""
        env = {f"CORE_{p.upper()}_BASE_URL": self.origin + PREFIXES[p] for p in KEY_VARIABLES}
        env["OLLAMA_HOST"] = self.origin + PREFIXES["ollama"]
        env.update({variable: f"bench-{provider}-key" for provider, variable in KEY_VARIABLES.items()})
        return env

    def load(self, base: Catalog, mutated: Catalog) -> None:
        self._variants = {"base": encode(base), "mutated": encode(mutated)}
        self.use("base")

    def use(self, variant: str) -> None:
        with self._lock:
            self._current = self._variants[variant]

    def take_requests(self) -> list[Request]:
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def answers(self) -> Answers:
        assert self._current is not None, "no catalog loaded"
        return self._current

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class _ProviderHandler(BaseHTTPRequestHandler):
    owner: ProviderServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        started = time.monotonic()
        split = urlsplit(self.path)
        query = parse_qs(split.query)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if split.path.startswith("/_control/"):
            return self._control(split.path.removeprefix("/_control/"), query)
        provider = next((p for p, prefix in PREFIXES.items() if split.path.startswith(prefix + "/")), None)
        if provider is None:
            return self._send(404, b'{"error": "not found"}')
        status, answer = self._answer(provider, split.path[len(PREFIXES[provider]) :], query, body)
        if self.owner.latency:
            time.sleep(self.owner.latency)
        self._send(status, answer)
        self.owner.record(Request(self.owner.phase, provider, started, time.monotonic()))

    def _answer(self, provider: str, endpoint: str, query: dict[str, list[str]], body: bytes) -> tuple[int, bytes]:
        answers = self.owner.answers()
        if provider == "ollama":
            if endpoint == "/api/tags":
                return 200, answers.ollama_tags
            show = answers.ollama_shows.get(json.loads(body or b"{}").get("model"))
            return (200, show) if show is not None else (404, b'{"error": "model not found"}')
        if endpoint != "/models":
            return 404, b'{"error": "not found"}'
        if provider == "google":
            token = query.get("pageToken", [""])[0]
            offset = int(base64.urlsafe_b64decode(token).decode().removeprefix("offset:")) if token else 0
            return 200, answers.google[offset // GOOGLE_PAGE]
        if provider == "openrouter":
            return 200, answers.openrouter[int(query.get("offset", ["0"])[0]) // OPENROUTER_PAGE]
        return 200, answers.mistral if provider == "mistral" else answers.groq

    def _control(self, command: str, query: dict[str, list[str]]) -> None:
        if command == "use":
            self.owner.use(query["variant"][0])
        elif command == "phase":
            self.owner.phase = query["name"][0]
        elif command == "latency":
            self.owner.latency = float(query["seconds"][0])
        else:
            return self._send(404, b'{"error": "unknown control"}')
        self._send(200, b'{"ok": true}')

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FakeLLM(_Loopback):
    """`POST /v1/chat/completions` answering like a well-behaved model: a valid value for exactly the
    fields asked about each model, never a price. `GET /_control/calls` says how many calls it served."""

    VALUES: dict[str, Any] = {
        "context_window": 32768,
        "max_output_tokens": 4096,
        "modalities": {"input": ["text"], "output": ["text"]},
        "family": "benchfam",
        "parameter_size": "7B",
    }

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        super().__init__(_LlmHandler)

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def environment(self) -> dict[str, str]:
        return {
            "CORE_INFERENCER": "llm",
            "CORE_LLM_BASE_URL": self.base_url,
            "CORE_LLM_API_KEY": "bench-llm-key",
            "CORE_LLM_MODEL": "bench/fake-model",
        }

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        answers = []
        for item in json.loads(request["messages"][-1]["content"])["models"]:
            answer: dict[str, Any] = {"id": item["id"], "confidence": 0.8}
            for name in item["fields"]:
                if name.startswith("capabilities."):
                    answer.setdefault("capabilities", {})[name.removeprefix("capabilities.")] = True
                else:
                    answer[name] = self.VALUES[name]
            answers.append(answer)
        content = json.dumps({"models": answers})
        return {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
        }


class _LlmHandler(BaseHTTPRequestHandler):
    owner: FakeLLM
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._send(200, {"calls": self.owner.calls})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        self._send(200, self.owner.answer(body))

    def _send(self, status: int, document: Any) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
