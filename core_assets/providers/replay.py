"""Recorded provider answers, served through httpx so that the demo runs the live fetch code unchanged.

`ReplayTransport(provider)` stands in for the network: it answers the requests a provider's `fetch`
makes with the responses bundled under `demo_data/<provider>/` (provenance in `demo_data/SOURCES.md`).
A request with no recording gets a 404, so a change in what the live code asks for shows up as a failed
demo fetch rather than as silently different data.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from typing import Any

import httpx

# (method, path suffix) → recorded file. Only method and path are matched, so the recordings answer
# whatever base URL the request went to.
RECORDINGS: dict[str, dict[tuple[str, str], str]] = {
    "google": {("GET", "/models"): "models.json"},
    "mistral": {("GET", "/models"): "models.json"},
    "groq": {("GET", "/models"): "models.json"},
    "openrouter": {("GET", "/models"): "models.json.gz"},
    # api_show.json maps each model name to its /api/show answer; the request body says which.
    "ollama": {("GET", "/api/tags"): "api_tags.json", ("POST", "/api/show"): "api_show.json"},
}


def recording(provider: str, filename: str) -> bytes:
    """The bytes of one bundled recording (gunzipped when stored as .gz)."""
    data = resources.files(__package__).joinpath("demo_data", provider, filename).read_bytes()
    return gzip.decompress(data) if filename.endswith(".gz") else data


class ReplayTransport(httpx.BaseTransport):
    """Answers a provider's list-API requests from the recordings bundled with the package."""

    def __init__(self, provider: str):
        if provider not in RECORDINGS:
            raise ValueError(f"no demo recordings for provider {provider!r}")
        self.provider = provider

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = None
        filename = self._match(request)
        # A recording is one complete page: there is nothing to answer for a page token.
        if filename and "pageToken" not in request.url.params:
            body = recording(self.provider, filename)
            if filename == "api_show.json":
                body = self._show(body, request)
        if body is None:
            message = f"no recorded {self.provider} response for {request.method} {request.url.path}"
            return _json(404, json.dumps({"error": {"message": message, "code": 404}}).encode())
        return _json(200, body)

    def _match(self, request: httpx.Request) -> str | None:
        for (method, suffix), filename in RECORDINGS[self.provider].items():
            if request.method == method and request.url.path.endswith(suffix):
                return filename
        return None

    @staticmethod
    def _show(recorded: bytes, request: httpx.Request) -> bytes | None:
        try:
            model = json.loads(request.content).get("model")
        except (ValueError, AttributeError):
            return None
        answer: Any = json.loads(recorded).get(model) if isinstance(model, str) else None
        return json.dumps(answer).encode() if answer is not None else None


def _json(status: int, body: bytes) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": "application/json"}, content=body)
