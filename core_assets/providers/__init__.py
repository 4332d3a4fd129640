"""The provider layer: one module per provider (fetch + normalize), and `fetch_provider`, which runs one
provider end to end and reports the outcome instead of raising.

Plain Python, no Dagster: the `raw_<provider>_models` assets and the CLI both call `fetch_provider`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, Literal

import httpx

from core_assets import settings
from core_assets.http import FetchError, HttpClient, Response, one_line, redact
from core_assets.providers.google import Google
from core_assets.providers.groq import Groq
from core_assets.providers.mistral import Mistral
from core_assets.providers.ollama import Ollama
from core_assets.providers.openrouter import OpenRouter
from core_assets.providers.parsing import ListProvider
from core_assets.providers.replay import ReplayTransport
from core_assets.records import NormalizedModel, PayloadError
from core_assets.settings import HttpLimits

log = logging.getLogger(__name__)

PROVIDERS: dict[str, ListProvider] = {
    "google": Google(),
    "mistral": Mistral(),
    "openrouter": OpenRouter(),
    "groq": Groq(),
    "ollama": Ollama(),
}

# Sent instead of a real key in demo mode; it only ever reaches the replay transport.
DEMO_API_KEY = "demo-placeholder-key"

Outcome = Literal["ok", "skipped", "failed"]


@dataclass
class FetchOutcome:
    """What one provider fetch produced. `reason` is one line, free of secrets; None when ok."""

    provider: str
    outcome: Outcome
    reason: str | None = None
    payload: dict[str, Any] | None = None
    http_status: int | None = None
    models: list[NormalizedModel] = field(default_factory=list)
    sha256: str | None = None
    duration_ms: int = 0
    requests: int = 0
    skipped_items: int = 0


def get_provider(name: str) -> ListProvider:
    """The provider module's implementation for `name` (one of settings.PROVIDERS)."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}") from None


def canonical_json(payload: Any) -> str:
    """The payload as the canonical text its sha256 is taken of. Raises ValueError on NaN/Infinity,
    which JSON (and PostgreSQL's jsonb) does not allow."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def fetch_provider(
    name: str,
    *,
    demo: bool = False,
    limits: HttpLimits | None = None,
    transport: httpx.BaseTransport | None = None,
) -> FetchOutcome:
    """Fetch and normalize one provider's model list; never raises for anything the provider sends.

    A keyed provider without its key is skipped, as is an Ollama that cannot be reached. `demo` answers
    from the bundled recordings (same code, replay transport, placeholder key, default base URL);
    `transport` replaces the network otherwise (tests)."""
    provider = get_provider(name)
    started = time.monotonic()
    secrets = settings.all_api_keys()

    def finish(outcome: FetchOutcome) -> FetchOutcome:
        outcome.duration_ms = round((time.monotonic() - started) * 1000)
        if outcome.reason:
            outcome.reason = one_line(redact(outcome.reason, secrets))
        level = logging.INFO if outcome.outcome == "ok" else logging.WARNING
        log.log(
            level,
            "%s: %s%s (%d models, %d requests, %d ms)",
            name,
            outcome.outcome,
            f" — {outcome.reason}" if outcome.reason else "",
            len(outcome.models),
            outcome.requests,
            outcome.duration_ms,
        )
        return outcome

    if demo:
        base_url = settings.DEFAULT_BASE_URLS[name]
        api_key = None if name in settings.KEY_OPTIONAL else DEMO_API_KEY
        transport = transport or ReplayTransport(name)
    else:
        base_url = settings.base_url(name)
        api_key = settings.api_key(name)
        if api_key is None and name not in settings.KEY_OPTIONAL:
            variables = " or ".join(settings.KEY_VARIABLES[name])
            return finish(FetchOutcome(name, "skipped", f"no API key (set {variables})"))

    with _CountingClient(limits, transport=transport, secrets=secrets) as http:
        try:
            payload = provider.fetch(http, base_url, api_key)
        except FetchError as exc:
            outcome = FetchOutcome(name, "failed", exc.reason, http_status=exc.status, requests=http.requests)
            cause = _unreachable(exc) if name == "ollama" else None
            if cause:
                outcome.outcome, outcome.reason = "skipped", f"Ollama not reachable at {base_url} ({cause})"
            return finish(outcome)

    result = FetchOutcome(name, "failed", http_status=http.last_status, requests=http.requests)
    try:
        text = canonical_json(payload)
    except ValueError:
        result.reason = "wrong shape: the answer holds NaN or Infinity, which is not JSON"
        return finish(result)
    escaped = [json.dumps(secret, ensure_ascii=False)[1:-1] for secret in secrets]
    if any(secret in text for secret in escaped):
        # Some gateways echo request headers back; a key must not reach the snapshot table.
        log.warning("%s: the answer contains a configured API key; it is masked in the snapshot", name)
        text = redact(text, escaped)
        payload = json.loads(text)
    result.payload, result.sha256 = payload, sha256(text.encode()).hexdigest()
    try:
        parsed = provider.parse(payload)
    except PayloadError as exc:
        result.reason = f"wrong shape: {exc}"
        return finish(result)
    result.outcome, result.models, result.skipped_items = "ok", parsed.models, parsed.skipped
    if parsed.skipped:
        log.warning("%s: dropped %d list item(s) without a usable id or repeating one", name, parsed.skipped)
    return finish(result)


def _unreachable(exc: FetchError) -> str | None:
    """Why the server never answered (refused, unresolvable, timed out); None if it answered badly."""
    if not exc.unreachable:
        return None
    return "timed out" if "timed out" in exc.reason else "cannot connect"


class _CountingClient(HttpClient):
    """HttpClient that counts the requests it sends (retries included) and keeps the last status."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.requests = 0
        self.last_status: int | None = None
        self._lock = threading.Lock()

    def request_json(self, *args: Any, **kwargs: Any) -> Response:
        try:
            response = super().request_json(*args, **kwargs)
        except FetchError as exc:
            with self._lock:
                self.requests += exc.attempts
            raise
        with self._lock:
            self.requests += response.attempts
            self.last_status = response.status
        return response


__all__ = ["PROVIDERS", "DEMO_API_KEY", "FetchOutcome", "canonical_json", "fetch_provider", "get_provider"]
