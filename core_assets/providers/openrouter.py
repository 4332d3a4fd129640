"""OpenRouter: `GET /models?output_modalities=all`, public (a key is sent when configured).

Prices are USD per token as decimal strings; `"-1"` means "varies". Free models are the `:free`
variants, and text models whose every listed price is 0 (SPEC §4).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from core_assets.http import FetchError, HttpClient
from core_assets.providers.parsing import (
    ListProvider,
    Parsed,
    all_prices_zero,
    any_member,
    capabilities,
    count,
    facts,
    identifier,
    iso_date,
    mapping,
    member,
    modalities,
    parse_pages,
    strings,
    text,
    token_prices,
)
from core_assets.records import FREE_VARIANT, ZERO_PRICE, NormalizedModel

# The default is text-output models only; `all` adds image, video, embedding, speech and rerank models.
OUTPUT_MODALITIES = "all"


class OpenRouter(ListProvider):
    name = "openrouter"

    def fetch(self, http: HttpClient, base_url: str, api_key: str | None) -> dict[str, Any]:
        """All pages of the model list, following `links.next` until it is null."""
        url = f"{base_url}/models"
        params: dict[str, Any] | None = {"output_modalities": OUTPUT_MODALITIES}
        seen: set[str] = set()
        pages: list[Any] = []
        while True:
            response = http.request_json(
                "GET", url, headers=self.auth_headers(api_key), params=params, what="openrouter models"
            )
            pages.append(response.data)
            links = mapping(response.data.get("links")) if isinstance(response.data, dict) else {}
            link = text(links.get("next"))
            if link is None:
                return {"pages": pages}
            url, params = next_page_url(base_url, link), None
            if url in seen:
                raise FetchError(f"openrouter models: pagination loop (links.next repeats {link!r})")
            seen.add(url)
            if len(pages) >= http.limits.max_pages:
                raise FetchError(f"openrouter models: more than {http.limits.max_pages} pages, stopped")

    def parse(self, payload: dict[str, Any]) -> Parsed:
        return parse_pages(payload, self.name, "data", normalize_item)


def next_page_url(base_url: str, link: str) -> str:
    """The absolute URL of a `links.next` value such as `/api/v1/models?offset=500&limit=500`.

    The link is a path on OpenRouter's own host. When the base URL puts the API under a prefix (a proxy,
    the test server), the prefix is kept. Our `output_modalities` is re-added if the link dropped it, so
    that every page lists the same set of models."""
    base = urlsplit(base_url)
    target = urlsplit(link)
    if target.netloc and (target.scheme or base.scheme, target.netloc) != (base.scheme, base.netloc):
        raise FetchError(f"openrouter models: links.next points to another host ({target.netloc})")
    list_path = base.path.rstrip("/") + "/models"
    prefix = list_path[: -len(target.path)] if target.path and list_path.endswith(target.path) else ""
    query = parse_qsl(target.query, keep_blank_values=True)
    if not any(key == "output_modalities" for key, _ in query):
        query.append(("output_modalities", OUTPUT_MODALITIES))
    return urlunsplit((base.scheme, base.netloc, prefix + target.path, urlencode(query), ""))


def normalize_item(item: dict[str, Any]) -> NormalizedModel | None:
    """One `data` item; None when it has no usable id."""
    model_id = identifier(item.get("id"))
    if model_id is None:
        return None
    architecture = mapping(item.get("architecture"))
    inputs = strings(architecture.get("input_modalities"))
    outputs = strings(architecture.get("output_modalities"))
    parameters = strings(item.get("supported_parameters"))
    top_provider = mapping(item.get("top_provider"))
    pricing = mapping(item.get("pricing"))

    input_price, output_price = token_prices(pricing)
    free_kind = None
    if model_id.endswith(":free"):
        free_kind = FREE_VARIANT
    elif all_prices_zero(pricing):
        if outputs is not None and set(outputs) == {"text"} and not model_id.startswith("openrouter/"):
            free_kind = ZERO_PRICE
        else:
            # Video, rerank and music models, and the openrouter/ routers, are billed per second, per
            # search or per routed model — outside this schema. A 0 here is not their price.
            input_price = output_price = None

    reasoning = True if isinstance(item.get("reasoning"), dict) else member("reasoning", parameters)
    return NormalizedModel(
        provider_id="openrouter",
        model_id=model_id,
        name=text(item.get("name")),
        provider_data=item,
        facts=facts(
            context_window=count(item.get("context_length")) or count(top_provider.get("context_length")),
            max_output_tokens=count(top_provider.get("max_completion_tokens")),
            input_cost_per_1k=input_price,
            output_cost_per_1k=output_price,
            modalities=modalities(inputs, outputs),
            capabilities=capabilities(
                chat=member("text", outputs),
                tools=member("tools", parameters),
                vision=member("image", inputs),
                json_mode=any_member(("response_format", "structured_outputs"), parameters),
                reasoning=reasoning,
                embeddings=member("embeddings", outputs),
            ),
            deprecation_date=iso_date(item.get("expiration_date")),
            free_kind=free_kind,
        ),
    )
