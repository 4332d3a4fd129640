"""Groq: `GET /models` (OpenAI style `{"object": "list", "data": [...]}`), Bearer key, one page.

The captured shape has only id, owner, context window and max completion tokens. Newer answers are
reported to add `name`, input/output modalities, `supported_features` and per-token `pricing`; they are
read when present, and capabilities stay unknown when absent.
"""

from __future__ import annotations

from typing import Any

from core_assets.http import HttpClient
from core_assets.providers.parsing import (
    ListProvider,
    Parsed,
    any_member,
    capabilities,
    count,
    facts,
    identifier,
    mapping,
    member,
    modalities,
    parse_pages,
    strings,
    text,
    token_prices,
)
from core_assets.records import NormalizedModel


class Groq(ListProvider):
    name = "groq"

    def fetch(self, http: HttpClient, base_url: str, api_key: str | None) -> dict[str, Any]:
        """The model list (Groq does not page it)."""
        response = http.request_json(
            "GET", f"{base_url}/models", headers=self.auth_headers(api_key), what="groq models"
        )
        return {"pages": [response.data]}

    def parse(self, payload: dict[str, Any]) -> Parsed:
        return parse_pages(payload, self.name, "data", normalize_item)


def normalize_item(item: dict[str, Any]) -> NormalizedModel | None:
    """One `data` item; None when it has no usable id."""
    model_id = identifier(item.get("id"))
    if model_id is None:
        return None
    inputs = strings(item.get("input_modalities"))
    outputs = strings(item.get("output_modalities"))
    features = strings(item.get("supported_features"))
    input_price, output_price = token_prices(mapping(item.get("pricing")))
    return NormalizedModel(
        provider_id="groq",
        model_id=model_id,
        name=text(item.get("name")) or model_id,
        provider_data=item,
        facts=facts(
            context_window=count(item.get("context_window")),
            max_output_tokens=count(item.get("max_completion_tokens")),
            input_cost_per_1k=input_price,
            output_cost_per_1k=output_price,
            modalities=modalities(inputs, outputs),
            capabilities=capabilities(
                chat=member("text", outputs),
                tools=member("tools", features),
                vision=member("image", inputs),
                json_mode=any_member(("json_mode", "structured_outputs"), features),
                reasoning=member("reasoning", features),
                embeddings=member("embeddings", outputs),
            ),
        ),
    )
