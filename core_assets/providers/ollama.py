"""Ollama: `GET /api/tags` for the installed models, then `POST /api/show` per model for what the tag
list leaves out (context window, capabilities). No auth.

Local models cost nothing at the margin (`free_kind: local`); models the server proxies to ollama.com
(`remote_host`/`remote_model`, or a `-cloud`/`:cloud` tag) are not free and their price is unknown.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from core_assets.http import FetchError, HttpClient
from core_assets.providers.parsing import (
    Deduper,
    ListProvider,
    Parsed,
    capabilities,
    count,
    describe,
    facts,
    identifier,
    mapping,
    member,
    strings,
    text,
)
from core_assets.records import LOCAL, NormalizedModel, PayloadError

log = logging.getLogger(__name__)

SHOW_WORKERS = 8


class Ollama(ListProvider):
    name = "ollama"
    key_header = None

    def fetch(self, http: HttpClient, base_url: str, api_key: str | None) -> dict[str, Any]:
        """The tag list, and each model's `/api/show` answer (None where that call failed).

        The show calls run a few at a time: a workstation may have dozens of models."""
        tags = http.request_json("GET", f"{base_url}/api/tags", what="ollama tags").data
        names = list(dict.fromkeys(_tag_names(tags)))

        def show(name: str) -> Any:
            try:
                return http.request_json(
                    "POST", f"{base_url}/api/show", json_body={"model": name}, what=f"ollama show {name}"
                ).data
            except FetchError as exc:
                log.warning("%s; its context window and capabilities stay unknown", exc.reason)
                return None

        with ThreadPoolExecutor(max_workers=max(1, min(SHOW_WORKERS, len(names)))) as pool:
            answers = list(pool.map(show, names))
        return {"tags": tags, "show": dict(zip(names, answers, strict=True))}

    def parse(self, payload: dict[str, Any]) -> Parsed:
        if not isinstance(payload, dict) or not isinstance(payload.get("tags"), dict):
            raise PayloadError(
                f"expected an ollama snapshot {{'tags': {{...}}, 'show': {{...}}}}, got {describe(payload)}"
            )
        items = payload["tags"].get("models")
        # Ollama is written in Go, where an empty slice can be encoded as null.
        if items is None:
            items = []
        if not isinstance(items, list):
            raise PayloadError(f"expected 'models' to be a list, got {describe(items)}")
        shows = mapping(payload.get("show"))
        dedupe = Deduper()
        models = []
        for item in items:
            model = normalize_item(item, shows) if isinstance(item, dict) else None
            if dedupe.accept(model.model_id if model else None):
                models.append(model)
        return Parsed(models, dedupe.skipped)


def _tag_names(tags: Any) -> list[str]:
    items = tags.get("models") if isinstance(tags, dict) else None
    if not isinstance(items, list):
        return []
    return [name for item in items if isinstance(item, dict) and (name := _model_name(item))]


def _model_name(item: dict[str, Any]) -> str | None:
    return identifier(item.get("name")) or identifier(item.get("model"))


def is_cloud(item: dict[str, Any], name: str) -> bool:
    """Whether the tag is a model the server proxies to ollama.com rather than runs itself."""
    if text(item.get("remote_host")) or text(item.get("remote_model")):
        return True
    return name.endswith(("-cloud", ":cloud"))


def context_window(show: dict[str, Any], details: dict[str, Any]) -> int | None:
    """`model_info["<general.architecture>.context_length"]` from /api/show, else the tag's own
    `details.context_length` (newer servers)."""
    info = mapping(show.get("model_info"))
    architecture = text(info.get("general.architecture"))
    if architecture:
        found = count(info.get(f"{architecture}.context_length"))
        if found:
            return found
    return count(details.get("context_length"))


def normalize_item(item: dict[str, Any], shows: dict[str, Any]) -> NormalizedModel | None:
    """One `/api/tags` model with its `/api/show` answer; None when it has no usable name."""
    name = _model_name(item)
    if name is None:
        return None
    show_answer = shows.get(name)
    show = mapping(show_answer)
    details = mapping(item.get("details"))
    show_details = mapping(show.get("details"))
    listed = strings(show.get("capabilities"))
    if listed is None:
        listed = strings(item.get("capabilities"))
    local = not is_cloud(item, name)
    price = Decimal(0) if local else None
    return NormalizedModel(
        provider_id="ollama",
        model_id=name,
        name=name,
        provider_data={"tag": item, "show": show_answer},
        facts=facts(
            context_window=context_window(show, details),
            input_cost_per_1k=price,
            output_cost_per_1k=price,
            capabilities=capabilities(
                chat=member("completion", listed),
                tools=member("tools", listed),
                vision=member("vision", listed),
                reasoning=member("thinking", listed),
                embeddings=member("embedding", listed),
                fim=member("insert", listed),
            ),
            family=text(details.get("family")) or text(show_details.get("family")),
            parameter_size=text(details.get("parameter_size")) or text(show_details.get("parameter_size")),
            free_kind=LOCAL if local else None,
        ),
    )
