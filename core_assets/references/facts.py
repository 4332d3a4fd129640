"""Turning catalog entries into facts (core_assets.records): value checks shared by the catalog parsers,
the price rule for references, and the spellings under which Ollama lists a model."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, NamedTuple

Key = tuple[str, str]


class Parsed(NamedTuple):
    """A parsed catalog: facts per (provider_id, model_id) of ours (an Ollama model under each of its
    spellings), the model entries in the document, and how many of them map to each of our providers."""

    facts: dict[Key, dict[str, Any]]
    entries: int
    mapped: dict[str, int]


def positive_int(value: Any) -> int | None:
    """A token count as a catalog gives it; 0, negatives, fractions and non-numbers are unknown."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value <= 0 or value != int(value):
        return None
    return int(value)


def iso_date(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return None


def string_list(value: Any) -> list[str] | None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        return None
    return list(value)


def price_facts(
    input_price: Any, output_price: Any, convert: Callable[[Any], Decimal | None]
) -> dict[str, Decimal]:
    """Input and output price per 1k tokens, under the reference price rule.

    A catalog entry priced all zero is a claim that the model is free, which only the provider or the
    operator may make (SPEC §4): LiteLLM lists every Ollama model at 0 and Gemini's experimental ones
    too. So a zero is kept only next to a positive price (an embedding model's output), never alone."""
    prices = {"input_cost_per_1k": convert(input_price), "output_cost_per_1k": convert(output_price)}
    if not any(price for price in prices.values()):
        return {}
    return {name: price for name, price in prices.items() if price is not None}


def ollama_ids(model_id: str, *, cloud: bool) -> list[str]:
    """Every id under which an Ollama server lists the model, the catalog's own spelling first.

    Ollama's exact naming rules, not guesses: an untagged name means the `latest` tag, and a local server
    lists a cloud model as `<name>:<tag>-cloud` (`<name>:cloud` when the cloud name has no tag)."""
    ids = [model_id]
    name, _, tag = model_id.partition(":")
    if not tag:
        ids.append(f"{name}:latest")
    if cloud and not model_id.endswith("cloud"):
        ids.append(f"{name}:{tag}-cloud" if tag else f"{name}:cloud")
    return ids


def ranked(candidates: Iterable[tuple[int, Key, dict[str, Any]]], entries: int, mapped: Counter) -> Parsed:
    """Facts per key from (rank, key, facts) candidates: the lowest rank wins a key, then catalog order."""
    facts: dict[Key, dict[str, Any]] = {}
    for _rank, key, value in sorted(candidates, key=lambda c: c[0]):
        facts.setdefault(key, value)
    return Parsed(facts, entries, dict(sorted(mapped.items())))
