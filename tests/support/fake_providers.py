"""A real HTTP server on 127.0.0.1 that speaks the five providers' list-models APIs, for tests.

Each provider lives under its own path prefix (see PREFIXES), so one server stands in for all of them:
the `fake_providers` fixture points the base-URL variables at it, sets a distinct canary key per keyed
provider and small HTTP limits, and yields the `FakeProviders` controller. The served data are copies of
the real samples (tests/fixtures/providers/), loaded fresh per test and freely mutable. The server pages
like the real APIs, checks auth headers the way each provider does, records every request, and can be
told to misbehave (`fail`) — for every request or only the first N — with the providers' real error
shapes, timeouts, resets, broken bodies, pagination loops and cross-host redirects.

A second listener (`other_origin`, at `localhost` on another port) plays "another host" for redirects: it serves the same APIs, never
injects faults, and its requests are recorded with `server="other"`.
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"

PREFIXES = {
    "google": "/google/v1beta",
    "mistral": "/mistral/v1",
    "openrouter": "/openrouter/api/v1",
    "groq": "/groq/openai/v1",
    "ollama": "/ollama",
}
# Where each provider's API lives on its real host: OpenRouter's `links.next` paths are relative to this.
REAL_PREFIXES = {"openrouter": "/api/v1"}

KEY_VARIABLES = {
    "google": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "groq": "GROQ_API_KEY",
}

# Small limits so that fault tests take milliseconds: retries wait at most 50 ms. The timeout stays
# generous for ordinary answers; tests of timeouts pass their own, shorter HttpLimits.
TEST_HTTP_ENV = {
    "CORE_HTTP_TIMEOUT": "2",
    "CORE_HTTP_MAX_ATTEMPTS": "3",
    "CORE_HTTP_MAX_SECONDS": "10",
    "CORE_HTTP_MAX_RETRY_WAIT": "0.05",
    "CORE_HTTP_MAX_BODY_BYTES": str(4 * 1024 * 1024),
    "CORE_HTTP_MAX_PAGES": "50",
}

GOOGLE_DEFAULT_PAGE_SIZE = 4  # the real default is 50; small here so that every test pages
FAULT_KINDS = frozenset(
    {
        "status",
        "timeout",
        "raw",
        "reset",
        "html",
        "truncated",
        "wrong_shape",
        "empty",
        "oversized",
        "loop",
        "redirect",
        "trickle",
    }
)

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Please sign in</h1></body></html>"
)
GATEWAY_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    b"<hr><center>nginx</center></body></html>"
)


@cache
def _fixture_bytes(name: str) -> bytes:
    data = (FIXTURES / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


def load_fixture(name: str) -> Any:
    """A fresh, mutable copy of one fixture file (tests/fixtures/providers/<name>, .gz allowed)."""
    return json.loads(_fixture_bytes(name))


@dataclass
class RecordedRequest:
    server: str  # "main", or "other" for the redirect target
    provider: str | None
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass
class Fault:
    kind: str
    remaining: int | None  # None: every matching request
    endpoint: str | None  # only requests whose path ends with this
    options: dict[str, Any] = field(default_factory=dict)


class FakeProviders:
    """Controller of the fake server: its data, its faults and the requests it received."""

    def __init__(self) -> None:
        self.keys = {provider: f"canary-{provider}-{uuid.uuid4().hex[:16]}" for provider in KEY_VARIABLES}
        self.data: dict[str, Any] = {
            "google": load_fixture("google_models.json")["models"],
            "mistral": load_fixture("mistral_models.json")["data"],
            "openrouter": load_fixture("openrouter_models.json.gz")["data"],
            "groq": load_fixture("groq_models.json")["data"],
            "ollama": load_fixture("ollama_tags.json")["models"],
        }
        self.shows: dict[str, Any] = load_fixture("ollama_show.json")
        # Largest page the server hands out; None = no paging. OpenRouter pages only when asked (limit).
        self.page_size: dict[str, int | None] = {"google": GOOGLE_DEFAULT_PAGE_SIZE, "openrouter": None}
        self.requests: list[RecordedRequest] = []
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._servers: list[ThreadingHTTPServer] = []

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> FakeProviders:
        for role in ("main", "other"):
            handler = type(f"{role.title()}Handler", (_Handler,), {"fake": self, "role": role})
            server = _Server(("127.0.0.1", 0), handler)
            # A short poll interval keeps shutdown (once per test) from waiting the default 0.5 s.
            threading.Thread(
                target=server.serve_forever, args=(0.02,), name=f"fake-providers-{role}", daemon=True
            ).start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()

    @property
    def port(self) -> int:
        return self._servers[0].server_address[1]

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other_origin(self) -> str:
        """The redirect target: a different host name and port (same machine)."""
        return f"http://localhost:{self._servers[1].server_address[1]}"

    def url(self, provider: str) -> str:
        """The base URL of a provider on this server (what CORE_<P>_BASE_URL / OLLAMA_HOST is set to)."""
        return self.origin + PREFIXES[provider]

    def environment(self) -> dict[str, str]:
        env = {f"CORE_{p.upper()}_BASE_URL": self.url(p) for p in ("google", "mistral", "openrouter", "groq")}
        env["OLLAMA_HOST"] = self.url("ollama")
        env.update({KEY_VARIABLES[p]: key for p, key in self.keys.items()})
        env.update(TEST_HTTP_ENV)
        return env

    # ------------------------------------------------------------------------------------- data

    def items(self, provider: str) -> list[Any]:
        """The live item list of a provider (Ollama: the /api/tags models); mutate it freely."""
        return self.data[provider]

    def set_items(self, provider: str, items: list[Any]) -> None:
        self.data[provider] = items

    def model(self, provider: str, model_id: str) -> dict[str, Any]:
        """The served item with this id (Google: with or without `models/`; Ollama: tag name)."""
        for item in self.data[provider]:
            if isinstance(item, dict) and model_id in _item_ids(provider, item):
                return item
        raise KeyError(f"{provider} serves no model {model_id!r}")

    def remove_model(self, provider: str, model_id: str) -> None:
        self.data[provider].remove(self.model(provider, model_id))

    # ------------------------------------------------------------------------------------- faults

    def fail(
        self,
        provider: str,
        kind: str,
        *,
        times: int | None = None,
        endpoint: str | None = None,
        **options: Any,
    ) -> None:
        """Make the provider misbehave — for every request, or only the first `times` ones.

        kinds: status (status=, retry_after=, retry_delay=), timeout (seconds=), reset, html, truncated,
        wrong_shape (document=), empty, oversized (size=, declare_length=), loop, redirect (same_host=,
        status=), trickle (interval=: a 200 whose body arrives one byte at a time, never ending),
        raw (body=, status=, content_type=, headers=: any answer at all).
        `endpoint` limits the fault to paths ending with it (e.g. "/api/show")."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {sorted(FAULT_KINDS)}")
        with self._lock:
            self._faults.setdefault(provider, []).append(Fault(kind, times, endpoint, options))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, provider: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults.get(provider, []):
                if fault.endpoint and not path.endswith(fault.endpoint):
                    continue
                if fault.remaining is None:
                    return fault
                if fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
        return None

    # ------------------------------------------------------------------------------------ requests

    def requests_to(self, provider: str, *, server: str | None = "main") -> list[RecordedRequest]:
        """The recorded requests for one provider (on one server; None = both)."""
        with self._lock:
            return [
                r for r in self.requests if r.provider == provider and (server is None or r.server == server)
            ]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _item_ids(provider: str, item: dict[str, Any]) -> set[str]:
    if provider == "google":
        name = str(item.get("name", ""))
        return {name, name.removeprefix("models/")}
    if provider == "ollama":
        return {str(item.get("name")), str(item.get("model"))}
    return {str(item.get("id"))}


# ----------------------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # Clients hang up on purpose in fault tests (timeouts, size limits); that is not a test failure.
        pass


class _Handler(BaseHTTPRequestHandler):
    fake: FakeProviders
    role: str

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    # -------------------------------------------------------------------------------- dispatch

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        provider = next((p for p, prefix in PREFIXES.items() if split.path.startswith(prefix + "/")), None)
        query = parse_qs(split.query, keep_blank_values=True)
        self.fake._record(
            RecordedRequest(
                self.role,
                provider,
                self.command,
                split.path,
                query,
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
        )
        if provider is None:
            return self._send_json(404, {"error": f"no fake provider at {split.path}"})
        endpoint = split.path[len(PREFIXES[provider]) :]
        fault = self.fake._take_fault(provider, split.path) if self.role == "main" else None
        if fault and self._apply(fault, provider, endpoint, query):
            return
        denied = self._check_auth(provider)
        if denied:
            return self._send_json(*denied)
        status, document = self._answer(provider, endpoint, query, body, fault)
        self._send_json(status, document)

    def _answer(
        self, provider: str, endpoint: str, query: dict[str, list[str]], body: bytes, fault: Fault | None
    ) -> tuple[int, Any]:
        kind = fault.kind if fault else None
        if provider == "ollama":
            if self.command == "GET" and endpoint == "/api/tags":
                return 200, {"models": [] if kind == "empty" else self.fake.data["ollama"]}
            if self.command == "POST" and endpoint == "/api/show":
                return self._ollama_show(body)
            return 404, {"error": "404 page not found"}
        if self.command != "GET" or endpoint != "/models":
            return 404, error_body(provider, 404)[0]
        items = [] if kind == "empty" else self.fake.data[provider]
        if provider == "google":
            return self._google_page(items, query, loop=kind == "loop")
        if provider == "openrouter":
            return self._openrouter_page(items, query, loop=kind == "loop")
        return 200, {"object": "list", "data": items}

    # ------------------------------------------------------------------------------ the APIs

    def _google_page(self, items: list[Any], query: dict[str, list[str]], *, loop: bool) -> tuple[int, Any]:
        try:
            size = int(_first(query, "pageSize") or 50)
            token = _first(query, "pageToken")
            offset = (
                int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:")) if token else 0
            )
        except ValueError:
            return 400, _google_error(400, "Invalid page token or size.", "INVALID_ARGUMENT")
        size = max(1, min(size, 1000, self.fake.page_size.get("google") or 1000))
        page: dict[str, Any] = {}
        chunk = items[offset : offset + size]
        # Proto3 JSON omits an empty repeated field, so an empty page has no "models" key.
        if chunk:
            page["models"] = chunk
        if loop:
            page["nextPageToken"] = _page_token(size)  # always the token of page 2
        elif offset + size < len(items):
            page["nextPageToken"] = _page_token(offset + size)
        return 200, page

    def _openrouter_page(
        self, items: list[Any], query: dict[str, list[str]], *, loop: bool
    ) -> tuple[int, Any]:
        wanted = _first(query, "output_modalities") or "text"  # the real default: text-output models only
        if wanted != "all":
            kinds = set(wanted.split(","))
            items = [m for m in items if kinds & set(_get(m, "architecture", "output_modalities") or [])]
        try:
            offset = int(_first(query, "offset") or 0)
            limit = int(_first(query, "limit") or 0) or self.fake.page_size.get("openrouter")
        except ValueError:
            return 400, {"error": {"message": "Invalid offset or limit", "code": 400}}
        if not limit:
            return 200, {"data": items, "total_count": len(items), "links": {"next": None}}
        next_link = None
        if loop:
            next_link = f"{REAL_PREFIXES['openrouter']}/models?{urlencode({'offset': 0, 'limit': limit})}"
        elif offset + limit < len(items):
            next_link = f"{REAL_PREFIXES['openrouter']}/models?{urlencode({'offset': offset + limit, 'limit': limit})}"
        return 200, {
            "data": items[offset : offset + limit],
            "total_count": len(items),
            "links": {"next": next_link},
        }

    def _ollama_show(self, body: bytes) -> tuple[int, Any]:
        try:
            request = json.loads(body or b"{}")
            name = request.get("model") or request.get("name")
        except (ValueError, AttributeError):
            return 400, {"error": "invalid request body"}
        if name not in self.fake.shows:
            return 404, {"error": f"model '{name}' not found"}
        return 200, self.fake.shows[name]

    def _check_auth(self, provider: str) -> tuple[int, Any] | None:
        expected = self.fake.keys.get(provider)
        if expected is None:
            return None
        if provider == "google":
            given = self.headers.get("x-goog-api-key")
            if given is None:
                return 403, error_body("google", 403)[0]
            return None if given == expected else (400, error_body("google", 400)[0])
        given = self.headers.get("authorization")
        if provider == "openrouter" and given is None:
            return None  # the model list is public
        return None if given == f"Bearer {expected}" else (401, error_body(provider, 401)[0])

    # -------------------------------------------------------------------------------- faults

    def _apply(self, fault: Fault, provider: str, endpoint: str, query: dict[str, list[str]]) -> bool:
        """Send the faulty answer; False when the fault only changes the normal answer's content."""
        options = fault.options
        kind = fault.kind
        if kind == "status":
            status = options.get("status", 500)
            document, content_type = error_body(provider, status, retry_delay=options.get("retry_delay"))
            headers = {"retry-after": str(options["retry_after"])} if "retry_after" in options else {}
            body = document if isinstance(document, bytes) else json.dumps(document).encode()
            self._send(status, body, content_type, headers)
        elif kind == "timeout":
            self.fake._sleep(options.get("seconds", 5.0))
            return False
        elif kind == "reset":
            body = json.dumps(self._answer(provider, endpoint, query, b"", None)[1]).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self._reset_connection()
        elif kind == "html":
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
        elif kind == "truncated":
            body = json.dumps(self._answer(provider, endpoint, query, b"", None)[1]).encode()
            self._send(200, body[: max(1, len(body) // 2)], "application/json")
        elif kind == "wrong_shape":
            key = "models" if provider in ("google", "ollama") else "data"
            self._send_json(200, options.get("document", {key: {"unexpected": True}}))
        elif kind == "oversized":
            self._send_oversized(options.get("size", 6 * 1024 * 1024), options.get("declare_length", True))
        elif kind == "trickle":
            self._send_trickle(options.get("interval", 0.05))
        elif kind == "raw":
            self._send(
                options.get("status", 200),
                options["body"],
                options.get("content_type", "application/json"),
                options.get("headers"),
            )
        elif kind == "redirect":
            origin = self.fake.origin if options.get("same_host") else self.fake.other_origin
            location = origin + self.path
            self._send(options.get("status", 302), b"", "text/plain", {"location": location})
        else:  # empty, loop: the normal answer, altered
            return False
        return True

    def _send_oversized(self, size: int, declare_length: bool) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        if declare_length:
            self.send_header("content-length", str(size))
        self.end_headers()
        chunk = b" " * 65536
        try:
            for _ in range(size // len(chunk) + 1):
                self.wfile.write(chunk)
        except OSError:
            pass  # the client stopped reading at its limit

    def _send_trickle(self, interval: float) -> None:
        """A slow-loris answer: every byte comes well within any read timeout, the body never ends."""
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        try:
            self.wfile.write(b"[")
            while not self.fake._stopping.wait(interval):
                self.wfile.write(b" ")
                self.wfile.flush()
        except OSError:
            pass  # the client gave up

    def _reset_connection(self) -> None:
        """Close with a TCP reset (SO_LINGER 0) in the middle of the body."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()
        self.close_connection = True

    # ---------------------------------------------------------------------------------- output

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (e.g. after its read timeout)


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _get(document: Any, *keys: str) -> Any:
    for key in keys:
        document = document.get(key) if isinstance(document, dict) else None
    return document


# ------------------------------------------------------------------------------ real error shapes


def _google_error(status: int, message: str, code: str, details: list[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if details:
        error["details"] = details
    return {"error": error}


def error_body(provider: str, status: int, *, retry_delay: str | None = None) -> tuple[Any, str]:
    """(document, content type) of the provider's error answer for a status, as the real APIs send it.

    502 is answered by a gateway, not the API: an HTML page."""
    if status == 502:
        return GATEWAY_PAGE, "text/html"
    if provider == "google":
        return _google_error_body(status, retry_delay), "application/json; charset=UTF-8"
    if provider == "mistral":
        if status == 401:
            return {"message": "Unauthorized", "request_id": uuid.uuid4().hex}, "application/json"
        if status == 429:
            return {
                "object": "error",
                "message": "Requests rate limit exceeded",
                "type": "rate_limited",
                "param": None,
                "code": "1300",
            }, "application/json"
        return {
            "object": "error",
            "message": "Service unavailable",
            "type": "internal_server_error",
            "param": None,
            "code": "3000",
        }, "application/json"
    if provider == "groq":
        if status == 401:
            return {
                "error": {
                    "message": "Invalid API Key",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            }, "application/json"
        if status == 429:
            message = (
                "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01fake` "
                "service tier `on_demand` on requests per minute (RPM): Limit 30, Used 30, Requested 1. "
                "Please try again in 2s."
            )
            return {
                "error": {"message": message, "type": "requests", "code": "rate_limit_exceeded"}
            }, "application/json"
        if status == 404:
            return {
                "error": {
                    "message": "Unknown request URL",
                    "type": "invalid_request_error",
                    "code": "unknown_url",
                }
            }, "application/json"
        return {
            "error": {"message": "Service Unavailable", "type": "internal_server_error"}
        }, "application/json"
    if provider == "openrouter":
        messages = {
            401: "User not found.",
            402: "Insufficient credits",
            404: "Not Found",
            429: "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model "
            "requests per day",
        }
        error: dict[str, Any] = {"message": messages.get(status, "Internal Server Error"), "code": status}
        if status == 429:
            error["metadata"] = {
                "headers": {
                    "X-RateLimit-Limit": "50",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": "1767225600000",
                }
            }
        return {"error": error}, "application/json"
    return {
        "error": {404: "model not found", 429: "too many requests"}.get(status, "internal error")
    }, "application/json"


def _google_error_body(status: int, retry_delay: str | None) -> dict[str, Any]:
    if status == 400:
        return _google_error(
            400,
            "API key not valid. Please pass a valid API key.",
            "INVALID_ARGUMENT",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": "API key not valid. Please pass a valid API key.",
                },
            ],
        )
    if status == 401:
        return _google_error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
            "other valid authentication credential.",
            "UNAUTHENTICATED",
        )
    if status == 403:
        return _google_error(
            403,
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to call "
            "this API.",
            "PERMISSION_DENIED",
        )
    if status == 429:
        details: list[Any] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    }
                ],
            },
        ]
        if retry_delay is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
        return _google_error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "RESOURCE_EXHAUSTED",
            details,
        )
    if status == 404:
        return _google_error(404, "Method not found.", "NOT_FOUND")
    if status == 503:
        return _google_error(503, "The service is currently unavailable.", "UNAVAILABLE")
    return _google_error(status, "An internal error has occurred.", "INTERNAL")


@pytest.fixture
def fake_providers(monkeypatch) -> Iterator[FakeProviders]:
    """The fake provider server, with every base URL, a canary key per provider and small HTTP limits set."""
    fake = FakeProviders().start()
    for name, value in fake.environment().items():
        monkeypatch.setenv(name, value)
    try:
        yield fake
    finally:
        fake.stop()


__all__ = ["FakeProviders", "RecordedRequest", "error_body", "fake_providers", "load_fixture"]
