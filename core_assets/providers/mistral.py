"""Mistral: `GET /models`, Bearer key, one page.

Every alias is listed as its own entry (`mistral-medium`, `mistral-medium-latest`, `mistral-medium-2508`
…) sharing one canonical `name`: the registry keeps one row per name, with the other ids as aliases.
Capabilities are an open dict of booleans that grows over time (ocr, moderation, audio, reasoning …).
"""

from __future__ import annotations

from typing import Any

from core_assets.http import HttpClient
from core_assets.providers.parsing import (
    ListProvider,
    Parsed,
    capabilities,
    count,
    facts,
    flag,
    identifier,
    iso_date,
    list_pages,
    mapping,
    page_items,
    strings,
)
from core_assets.records import NormalizedModel

# Mistral's capability keys that mean a standard registry capability; other keys are kept as they are.
STANDARD_CAPABILITIES = {
    "completion_chat": "chat",
    "function_calling": "tools",
    "vision": "vision",
    "reasoning": "reasoning",
    "embeddings": "embeddings",
    "completion_fim": "fim",
}


class Mistral(ListProvider):
    name = "mistral"

    def fetch(self, http: HttpClient, base_url: str, api_key: str | None) -> dict[str, Any]:
        """The model list (Mistral does not page it)."""
        response = http.request_json(
            "GET", f"{base_url}/models", headers=self.auth_headers(api_key), what="mistral models"
        )
        return {"pages": [response.data]}

    def parse(self, payload: dict[str, Any]) -> Parsed:
        groups: dict[str, list[dict[str, Any]]] = {}
        skipped = 0
        for page in list_pages(payload, self.name):
            for item in page_items(page, "data"):
                entry = item if isinstance(item, dict) else {}
                canonical = identifier(entry.get("name")) or identifier(entry.get("id"))
                if canonical is None:
                    skipped += 1
                    continue
                groups.setdefault(canonical, []).append(entry)
        return Parsed([normalize_group(name, entries) for name, entries in groups.items()], skipped)


def normalize_group(name: str, entries: list[dict[str, Any]]) -> NormalizedModel:
    """One model from all the entries that share the canonical `name`."""
    primary = next((e for e in entries if identifier(e.get("id")) == name), entries[0])
    aliases: set[str] = set()
    for entry in entries:
        listed = [entry.get("id"), *(strings(entry.get("aliases")) or [])]
        aliases.update(alias for alias in map(identifier, listed) if alias)
    aliases.discard(name)

    reported = mapping(primary.get("capabilities"))
    caps = capabilities(
        **{STANDARD_CAPABILITIES.get(key, key): flag(value) for key, value in reported.items()}
    )
    return NormalizedModel(
        provider_id="mistral",
        model_id=name,
        name=name,
        provider_data=primary,
        facts=facts(
            context_window=count(primary.get("max_context_length")),
            capabilities=caps,
            deprecation_date=iso_date(primary.get("deprecation")),
            successor=identifier(primary.get("deprecation_replacement_model")),
            aliases=sorted(aliases),
        ),
    )
