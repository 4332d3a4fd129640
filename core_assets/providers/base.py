"""What every provider module offers: a fetch of the list-models API and a normalizer of its answer.

`fetch` returns the provider's untouched response(s) as one JSON document (the snapshot payload);
`normalize` turns that document into NormalizedModel rows (core_assets.records) or raises PayloadError
when the document does not have the API's shape. Neither imports Dagster.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from core_assets.http import HttpClient
from core_assets.records import NormalizedModel


class Provider(ABC):
    name: str
    # The key is sent in this header; None for providers without auth (Ollama).
    key_header: str | None = "authorization"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        if not api_key or not self.key_header:
            return {}
        if self.key_header == "authorization":
            return {"authorization": f"Bearer {api_key}"}
        return {self.key_header: api_key}

    @abstractmethod
    def fetch(self, http: HttpClient, base_url: str, api_key: str | None) -> dict[str, Any]:
        """Call the list API (all pages, plus detail calls where the API needs them) and return the
        untouched answers as one JSON document. Raises core_assets.http.FetchError."""

    @abstractmethod
    def normalize(self, payload: dict[str, Any]) -> list[NormalizedModel]:
        """Rows in common units from a document `fetch` returned. Raises records.PayloadError."""
