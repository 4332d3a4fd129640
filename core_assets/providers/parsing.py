"""Tolerant readers for provider JSON, shared by the provider modules.

Every field beyond a model's id is optional and may arrive null, empty or with the wrong type; each
reader answers None for anything it cannot use, so that one odd field never costs the whole model.
Only a document whose top level is not the API's shape raises PayloadError.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from core_assets.providers.base import Provider
from core_assets.records import CAPABILITIES, SPEC_FIELDS, NormalizedModel, PayloadError
from core_assets.units import per_token_to_per_1k, to_decimal

# C0 and C1 control characters, DEL, and lone surrogates (which no UTF-8 database can store).
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The length of model_registry.model_id; PostgreSQL refuses a longer value.
MAX_ID_LENGTH = 512


@dataclass
class Parsed:
    """A normalizer's answer: the models, and how many list items were dropped (no usable id, duplicates)."""

    models: list[NormalizedModel] = field(default_factory=list)
    skipped: int = 0


class ListProvider(Provider):
    """A provider whose normalizer also counts the items it had to drop."""

    def normalize(self, payload: dict[str, Any]) -> list[NormalizedModel]:
        return self.parse(payload).models

    @abstractmethod
    def parse(self, payload: dict[str, Any]) -> Parsed:
        """Like `normalize`, plus the number of dropped items. Raises PayloadError."""


def parse_pages(
    payload: Any,
    provider: str,
    key: str,
    normalize_item: Callable[[dict[str, Any]], NormalizedModel | None],
    *,
    missing_is_empty: bool = False,
) -> Parsed:
    """Every item under `key` of every page, one model per id (the first wins)."""
    dedupe = Deduper()
    models = []
    for page in list_pages(payload, provider):
        for item in page_items(page, key, missing_is_empty=missing_is_empty):
            model = normalize_item(item) if isinstance(item, dict) else None
            if dedupe.accept(model.model_id if model else None):
                models.append(model)
    return Parsed(models, dedupe.skipped)


def text(value: Any) -> str | None:
    """A non-empty string, stripped, its control characters (NUL, escape sequences) turned into spaces;
    None for anything else. For display text: names, families, sizes. The raw item keeps the original."""
    if isinstance(value, str):
        value = CONTROL_CHARACTERS.sub(" ", value).strip()
        return value or None
    return None


def identifier(value: Any) -> str | None:
    """A model id: a non-empty string, stripped, that fits the registry's key column and holds no control
    character; None otherwise. An id is never repaired — a different string would name another model."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_ID_LENGTH or CONTROL_CHARACTERS.search(value):
        return None
    return value


def count(value: Any) -> int | None:
    """A positive whole number (token limits); None for 0, negatives, booleans and non-numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and value > 0:
        return value
    return None


def strings(value: Any) -> list[str] | None:
    """The strings of a JSON list (others dropped); None when the value is not a list at all."""
    if not isinstance(value, list):
        return None
    return [item for item in value if isinstance(item, str)]


def flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def mapping(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one when the value is anything else."""
    return value if isinstance(value, dict) else {}


def iso_date(value: Any) -> str | None:
    """The `YYYY-MM-DD` date at the start of an ISO date or timestamp string, if it is a real date."""
    raw = text(value)
    try:
        return date.fromisoformat(raw[:10]).isoformat() if raw and len(raw) >= 10 else None
    except ValueError:
        return None


def member(name: str, values: list[str] | None) -> bool | None:
    """Whether `name` is listed — None (unknown) when the API gave no list."""
    return None if values is None else name in values


def any_member(names: tuple[str, ...], values: list[str] | None) -> bool | None:
    return None if values is None else any(name in values for name in names)


def capabilities(**known: bool | None) -> dict[str, bool | None]:
    """A tri-state capability dict with every standard key, plus any extras given."""
    result: dict[str, bool | None] = dict.fromkeys(CAPABILITIES)
    result.update(known)
    return result


def facts(**known: Any) -> dict[str, Any]:
    """A facts dict with every SPEC_FIELDS key (None where unknown)."""
    unknown = set(known) - set(SPEC_FIELDS)
    if unknown:
        raise ValueError(f"not spec fields: {sorted(unknown)}")
    result: dict[str, Any] = dict.fromkeys(SPEC_FIELDS)
    result.update(known)
    if result["capabilities"] is None:
        result["capabilities"] = capabilities()
    return result


def modalities(inputs: list[str] | None, outputs: list[str] | None) -> dict[str, list[str]] | None:
    if inputs is None or outputs is None:
        return None
    return {"input": inputs, "output": outputs}


def token_prices(pricing: dict[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """(input, output) USD per 1k tokens from OpenRouter-style per-token strings."""
    return per_token_to_per_1k(pricing.get("prompt")), per_token_to_per_1k(pricing.get("completion"))


def all_prices_zero(pricing: dict[str, Any]) -> bool:
    """True when prompt and completion are 0 and so is every other numeric price listed.

    Non-numeric entries (OpenRouter's `overrides` list) do not count either way."""
    if to_decimal(pricing.get("prompt")) != 0 or to_decimal(pricing.get("completion")) != 0:
        return False
    numbers = (to_decimal(value) for value in pricing.values())
    return all(number == 0 for number in numbers if number is not None)


def list_pages(payload: Any, provider: str) -> list[Any]:
    """The `pages` of a paged snapshot payload ({"pages": [...]})."""
    if not isinstance(payload, dict) or not isinstance(payload.get("pages"), list):
        raise PayloadError(f"expected a {provider} snapshot {{'pages': [...]}}, got {describe(payload)}")
    return payload["pages"]


def page_items(page: Any, key: str, *, missing_is_empty: bool = False) -> list[Any]:
    """The item list under `key` of one page; PayloadError when the page is not the API's shape."""
    if not isinstance(page, dict):
        raise PayloadError(f"expected a JSON object with a {key!r} list, got {describe(page)}")
    if key not in page and missing_is_empty:
        return []
    items = page.get(key)
    if not isinstance(items, list):
        raise PayloadError(f"expected {key!r} to be a list, got {describe(items)}")
    return items


def describe(value: Any) -> str:
    """A short name for the JSON type of a value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        # repr without its quotes: a key holding a newline or an escape sequence stays on one line.
        keys = ", ".join(repr(str(key))[1:-1] for key in list(value)[:5])
        return f"an object with keys [{keys}]" if value else "an empty object"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number", list: "a list"}.get(
        type(value), type(value).__name__
    )


class Deduper:
    """Keeps the first item per model id; counts the items dropped for lacking an id or repeating one."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.skipped = 0

    def accept(self, model_id: str | None) -> bool:
        if model_id is None or model_id in self.seen:
            self.skipped += 1
            return False
        self.seen.add(model_id)
        return True
