"""The one HTTP helper: JSON over httpx with bounded retries, size limits and secret-free errors.

Every outside call (provider list APIs, reference catalogs, the LLM inferencer, alert webhooks) goes
through `HttpClient.request_json`, so that retry, backoff and redaction behave the same everywhere.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import os
import re
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from core_assets.records import map_strings
from core_assets.settings import HttpLimits

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# Headers that carry credentials; they never follow a redirect to another host.
AUTH_HEADERS = frozenset({"authorization", "x-goog-api-key", "x-api-key", "api-key"})
_GOOGLE_RETRY_DELAY = re.compile(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"')
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# How a body can spell a surrogate: a \\u escape, or UTF-8-like bytes that Python's JSON decoder accepts.
_SURROGATE_SPELLING = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_MAX_REDIRECTS = 5


class FetchError(Exception):
    """A call that did not produce usable JSON. `reason` is one line, safe to show and store."""

    def __init__(self, reason: str, *, status: int | None = None, attempts: int = 1, unreachable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.attempts = attempts
        # The server never answered (refused, unresolvable, timed out) — as opposed to answering badly.
        self.unreachable = unreachable


@dataclass
class Response:
    status: int
    data: Any
    url: str
    headers: httpx.Headers
    attempts: int


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def retry_after_seconds(response: httpx.Response, body: bytes) -> float | None:
    """How long the server asked us to wait: `Retry-After` (seconds or HTTP date) or Google's `retryDelay`."""
    header = response.headers.get("retry-after")
    if header:
        header = header.strip()
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(header)
            except (TypeError, ValueError):  # neither seconds nor an HTTP date: fall back to backoff
                parsed = None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    match = _GOOGLE_RETRY_DELAY.search(body[:65536].decode("utf-8", "replace"))
    if match:
        return float(match.group(1))
    return None


def error_message(body: bytes) -> str | None:
    """The human part of a JSON error body, in any of the providers' shapes."""
    try:
        data = json.loads(body[:65536])
    except ValueError:
        return None
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, str):
            return error
        if isinstance(error, dict):
            message = error.get("message") or data.get("message")
            details = error.get("details")
            if isinstance(details, list):
                reasons = [d.get("reason") for d in details if isinstance(d, dict) and d.get("reason")]
                if reasons:
                    message = f"{message} ({', '.join(map(str, reasons))})"
            if message:
                return str(message)
    return None


def one_line(text: str, limit: int = 300) -> str:
    """`text` as one printable line of at most `limit` characters: whitespace runs become one space and
    other control characters (NUL, terminal escape sequences) their escaped form, so that a reason
    quoting a server's words is safe to store, log and print."""
    text = _SURROGATE.sub("\ufffd", " ".join(text.split()))
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _well_formed(text: str) -> str:
    """`text` with every lone surrogate (ill-formed UTF-16, which JSON's \\u escapes can spell) turned
    into U+FFFD, as the Unicode standard prescribes: it is no character, and no UTF-8 text — a database,
    a hash, a log line — can hold it."""
    return _SURROGATE.sub("\ufffd", text)


@functools.cache
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """httpx's default context, built once per process and per value of the two variables it reads:
    loading the CA bundle costs tens of milliseconds of CPU, and a sync opens a client per provider."""
    return httpx.create_ssl_context()


class HttpClient:
    """A small JSON client. `transport` swaps the network for a replay (demo) or a test double."""

    def __init__(
        self,
        limits: HttpLimits | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        secrets: Iterable[str] = (),
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.limits = limits or HttpLimits.from_env()
        self.secrets = [s for s in secrets if s]
        self._sleep = sleep
        self._client = httpx.Client(
            transport=transport,
            verify=_ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
            timeout=httpx.Timeout(self.limits.timeout, connect=min(10.0, self.limits.timeout)),
            follow_redirects=False,
            headers={"user-agent": "core-model-registry/0.1 (+https://github.com/)", "accept": "application/json"},
        )

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _safe(self, text: str) -> str:
        return one_line(redact(text, self.secrets))

    def request_json(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        what: str = "",
        expect_json: bool = True,
    ) -> Response:
        """Send one request and return its decoded JSON, retrying what retrying can fix.

        With `expect_json=False` a successful answer's body is returned as text instead (webhooks such
        as Slack's answer a plain `ok`). Raises FetchError with a one-line, secret-free reason once
        attempts or time run out."""
        limits = self.limits
        # One budget for the whole call, retries, waits and slowly arriving bodies included.
        deadline = time.monotonic() + limits.max_total_seconds
        label = what or method
        attempt = 0
        while True:
            attempt += 1
            status: int | None = None
            wait: float | None = None
            unreachable = False
            timeout = min(limits.timeout, max(0.001, deadline - time.monotonic()))
            try:
                response, body = self._send(method, url, headers or {}, params, json_body, timeout, deadline)
            except httpx.TimeoutException:
                reason, unreachable = f"{label}: timed out after {round(timeout, 2):g}s", True
            except httpx.TooManyRedirects:
                raise FetchError(f"{label}: more than {_MAX_REDIRECTS} redirects", attempts=attempt) from None
            except httpx.DecodingError as exc:
                raise FetchError(self._safe(f"{label}: undecodable body ({exc})"), attempts=attempt) from None
            except httpx.ConnectError as exc:
                # Refused or unresolvable: the address is wrong or the server is down; waiting
                # seconds for a retry rarely changes that, and an absent local Ollama is common.
                raise FetchError(
                    self._safe(f"{label}: cannot connect ({exc})"), attempts=attempt, unreachable=True
                ) from None
            except httpx.TransportError as exc:
                reason, unreachable = self._safe(f"{label}: connection error ({exc})"), False
            except _TooLarge:
                raise FetchError(
                    f"{label}: response larger than {limits.max_body_bytes // (1024 * 1024)} MB", attempts=attempt
                ) from None
            except _TooSlow:
                raise FetchError(
                    f"{label}: the answer did not complete within the time budget of {limits.max_total_seconds:g}s",
                    attempts=attempt,
                ) from None
            else:
                status = response.status_code
                if status < 300:
                    if expect_json:
                        data = self._decode(response, body, label, attempt)
                    else:
                        data = body.decode("utf-8", "replace")
                    return Response(status, data, str(response.url), response.headers, attempt)
                message = error_message(body) or response.reason_phrase or "error"
                reason = self._safe(f"{label}: HTTP {status} {message}")
                if status not in RETRYABLE_STATUS:
                    raise FetchError(reason, status=status, attempts=attempt)
                wait = retry_after_seconds(response, body)
            if wait is None:
                wait = min(limits.max_retry_wait, 0.5 * 2 ** (attempt - 1))
            if attempt >= limits.max_attempts:
                raise FetchError(
                    f"{reason} (gave up after {attempt} attempts)", status=status, attempts=attempt,
                    unreachable=unreachable,
                )
            if wait > limits.max_retry_wait:
                raise FetchError(
                    f"{reason} (server asks to retry in {wait:.0f}s, beyond the retry budget)",
                    status=status,
                    attempts=attempt,
                )
            if time.monotonic() + wait >= deadline:
                raise FetchError(
                    f"{reason} (gave up after {attempt} attempts: the time budget of "
                    f"{limits.max_total_seconds:g}s is spent)",
                    status=status,
                    attempts=attempt,
                    unreachable=unreachable,
                )
            log.info("%s; retrying in %.1fs (attempt %d of %d)", reason, wait, attempt + 1, limits.max_attempts)
            self._sleep(wait)

    def _decode(self, response: httpx.Response, body: bytes, label: str, attempt: int) -> Any:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the decoder goes
            kind = response.headers.get("content-type", "unknown type").split(";")[0]
            snippet = body[:80].decode("utf-8", "replace")
            raise FetchError(
                self._safe(f"{label}: HTTP {response.status_code} but the body is not JSON ({kind}): {snippet!r}"),
                status=response.status_code,
                attempts=attempt,
            ) from None
        return map_strings(data, _well_formed) if _SURROGATE_SPELLING.search(body) else data

    def _send(
        self, method, url, headers, params, json_body, timeout: float, deadline: float
    ) -> tuple[httpx.Response, bytes]:
        """One request, following redirects by hand so that credentials never reach another host."""
        current_url, current_headers, current_params = url, dict(headers), params
        timeouts = httpx.Timeout(timeout, connect=min(10.0, timeout))
        for _ in range(_MAX_REDIRECTS + 1):
            request = self._client.build_request(
                method, current_url, headers=current_headers, params=current_params, json=json_body,
                timeout=timeouts,
            )
            response = self._client.send(request, stream=True)
            try:
                if response.is_redirect and "location" in response.headers:
                    target = httpx.URL(urljoin(str(request.url), response.headers["location"]))
                    if (target.scheme, target.host, target.port) != (
                        request.url.scheme,
                        request.url.host,
                        request.url.port,
                    ):
                        current_headers = {k: v for k, v in current_headers.items() if k.lower() not in AUTH_HEADERS}
                    current_url, current_params = str(target), None
                    continue
                return response, self._read(response, deadline)
            finally:
                response.close()
        raise httpx.TooManyRedirects("too many redirects", request=request)

    def _read(self, response: httpx.Response, deadline: float) -> bytes:
        limit = self.limits.max_body_bytes
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise _TooLarge()
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise _TooLarge()
            # The read timeout bounds each wait for a byte, not the body: a server sending one byte a
            # second would otherwise hold the sync for weeks.
            if time.monotonic() > deadline:
                raise _TooSlow()
            chunks.append(chunk)
        return b"".join(chunks)


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass
