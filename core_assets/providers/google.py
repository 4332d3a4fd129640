"""Google Gemini API: `GET /models?pageSize=1000`, key in `x-goog-api-key`, paged by `nextPageToken`.

Capabilities come only from `supportedGenerationMethods` (chat, embeddings) and the `thinking` flag;
the API says nothing about tools, vision or prices.
"""

from __future__ import annotations

from typing import Any

from core_assets.http import FetchError, HttpClient
from core_assets.providers.parsing import (
    ListProvider,
    Parsed,
    any_member,
    capabilities,
    count,
    facts,
    identifier,
    member,
    parse_pages,
    strings,
    text,
)
from core_assets.records import NormalizedModel

PAGE_SIZE = 1000  # the API's maximum; it answers 50 per page when not asked
EMBEDDING_METHODS = ("embedContent", "batchEmbedContents", "asyncBatchEmbedContent")


class Google(ListProvider):
    name = "google"
    key_header = "x-goog-api-key"

    def fetch(self, http: HttpClient, base_url: str, api_key: str | None) -> dict[str, Any]:
        """All pages of the model list, passing each `nextPageToken` back until none is given."""
        pages: list[Any] = []
        seen: set[str] = set()
        token: Any = None
        while True:
            params: dict[str, Any] = {"pageSize": PAGE_SIZE}
            if token:
                params["pageToken"] = token
            response = http.request_json(
                "GET",
                f"{base_url}/models",
                headers=self.auth_headers(api_key),
                params=params,
                what="google models",
            )
            pages.append(response.data)
            token = response.data.get("nextPageToken") if isinstance(response.data, dict) else None
            if not token or not isinstance(token, str):
                return {"pages": pages}
            if token in seen:
                raise FetchError("google models: pagination loop (nextPageToken repeated)")
            seen.add(token)
            if len(pages) >= http.limits.max_pages:
                raise FetchError(f"google models: more than {http.limits.max_pages} pages, stopped")

    def parse(self, payload: dict[str, Any]) -> Parsed:
        # The API omits an empty repeated field, so a page without models has no `models` key.
        return parse_pages(payload, self.name, "models", normalize_item, missing_is_empty=True)


def normalize_item(item: dict[str, Any]) -> NormalizedModel | None:
    """One `models` item; None when it has no usable `name`."""
    resource = identifier(item.get("name"))
    model_id = identifier(resource.removeprefix("models/")) if resource else None
    if model_id is None:
        return None
    methods = strings(item.get("supportedGenerationMethods"))
    return NormalizedModel(
        provider_id="google",
        model_id=model_id,
        name=text(item.get("displayName")) or model_id,
        provider_data=item,
        facts=facts(
            context_window=count(item.get("inputTokenLimit")),
            max_output_tokens=count(item.get("outputTokenLimit")),
            capabilities=capabilities(
                chat=member("generateContent", methods),
                embeddings=any_member(EMBEDDING_METHODS, methods),
                # The key is present (true) only on thinking models; its absence says nothing.
                reasoning=True if item.get("thinking") is True else None,
            ),
        ),
    )
