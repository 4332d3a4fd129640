"""Synthetic provider catalogs of N models, grown from the recorded answers bundled with the package.

Every model is a copy of a real item (OpenRouter's 549, Gemini's, Mistral's alias groups, Groq's, Ollama's
tags with their /api/show answers), so the catalogs keep the real shapes: price strings with "-1" and
`:free` variants, zero-priced routers and image models, Mistral's one entry per alias, Ollama's cloud
tags. Copy 0 of each template keeps its real id (so the reference catalogs still match the real models);
copy k gets a `-v<k>` id and prices scaled by a few percent.

`mutated(fraction)` returns the same catalog with about that share of every provider's models changed the
way upstream catalogs change (a new price, a longer context window, a re-pulled Ollama tag), and the list
of (provider, model_id) pairs it touched — exactly the registry rows an incremental sync must rewrite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from core_assets.providers.replay import recording

# The real catalog's proportions (SPEC §8): OpenRouter ~550, Gemini ~50, Mistral ~30, Groq ~20, Ollama ~10.
SHARES = {"openrouter": 550, "google": 50, "mistral": 30, "groq": 20, "ollama": 10}
PROVIDERS = tuple(SHARES)


def split(n: int) -> dict[str, int]:
    """N models over the five providers in the real proportions (largest remainder, at least one each)."""
    total = sum(SHARES.values())
    exact = {p: n * share / total for p, share in SHARES.items()}
    counts = {p: max(1, int(value)) for p, value in exact.items()}
    by_remainder = sorted(SHARES, key=lambda p: exact[p] - int(exact[p]), reverse=True)
    for provider in by_remainder[: max(0, n - sum(counts.values()))]:
        counts[provider] += 1
    return counts


@dataclass(frozen=True)
class Catalog:
    """What the fake provider server serves. Mistral: one list of entries per canonical name."""

    openrouter: list[dict[str, Any]]
    google: list[dict[str, Any]]
    mistral: list[list[dict[str, Any]]]
    groq: list[dict[str, Any]]
    ollama_tags: list[dict[str, Any]]
    ollama_shows: dict[str, Any]

    def counts(self) -> dict[str, int]:
        """Registry rows per provider (Mistral: canonical names, not entries)."""
        return {
            "openrouter": len(self.openrouter),
            "google": len(self.google),
            "mistral": len(self.mistral),
            "groq": len(self.groq),
            "ollama": len(self.ollama_tags),
        }

    @property
    def size(self) -> int:
        return sum(self.counts().values())

    def mutated(self, fraction: float) -> tuple[Catalog, list[tuple[str, str]]]:
        """A copy with `fraction` of each provider's models changed upstream (at least one each)."""
        changed: list[tuple[str, str]] = []

        def pick(items: list, eligible) -> list[int]:
            candidates = [i for i, item in enumerate(items) if eligible(item)]
            wanted = max(1, round(len(items) * fraction))
            step = max(1, len(candidates) // wanted)
            return candidates[::step][:wanted]

        openrouter = list(self.openrouter)
        for i in pick(openrouter, _plainly_priced):
            item = openrouter[i] = _clone(openrouter[i])
            item["pricing"] = {**item["pricing"], "prompt": _scaled(item["pricing"]["prompt"], Decimal("1.25"))}
            changed.append(("openrouter", item["id"]))

        google = list(self.google)
        for i in pick(google, lambda item: isinstance(item.get("inputTokenLimit"), int)):
            item = google[i] = _clone(google[i])
            item["inputTokenLimit"] *= 2
            changed.append(("google", item["name"].removeprefix("models/")))

        mistral = list(self.mistral)
        for i in pick(mistral, lambda group: True):
            group = mistral[i] = [_clone(entry) for entry in mistral[i]]
            for entry in group:
                entry["max_context_length"] = 2 * (entry.get("max_context_length") or 16384)
            changed.append(("mistral", group[0]["name"]))

        groq = list(self.groq)
        for i in pick(groq, lambda item: isinstance(item.get("context_window"), int)):
            item = groq[i] = _clone(groq[i])
            item["context_window"] *= 2
            changed.append(("groq", item["id"]))

        tags = list(self.ollama_tags)
        for i in pick(tags, lambda item: True):
            item = tags[i] = _clone(tags[i])
            item["digest"] = item["digest"][::-1]
            item["modified_at"] = "2026-12-01T00:00:00Z"
            changed.append(("ollama", item["name"]))

        return replace(self, openrouter=openrouter, google=google, mistral=mistral, groq=groq,
                       ollama_tags=tags), changed


def generate(n: int) -> Catalog:
    """A catalog of `n` registry rows in the real proportions, deterministic for a given n."""
    counts = split(n)
    templates = _templates()
    openrouter = [_openrouter_copy(t, k) for t, k in _copies(templates["openrouter"], counts["openrouter"])]
    google = [_google_copy(t, k) for t, k in _copies(templates["google"], counts["google"])]
    mistral = [_mistral_copy(t, k) for t, k in _copies(templates["mistral"], counts["mistral"])]
    groq = [_suffixed(t, "id", k) for t, k in _copies(templates["groq"], counts["groq"])]
    tags, shows = [], {}
    show_templates = templates["ollama_shows"]
    for template, k in _copies(templates["ollama"], counts["ollama"]):
        tag = _ollama_copy(template, k)
        tags.append(tag)
        show = show_templates.get(json.loads(template)["name"])
        if show is not None:
            shows[tag["name"]] = show
    return Catalog(openrouter, google, mistral, groq, tags, shows)


# --------------------------------------------------------------------------------------- templates


def _templates() -> dict[str, Any]:
    """Each real item as JSON text: decoding a fresh copy is several times faster than deepcopy."""

    def items(provider: str, filename: str, key: str) -> list[dict[str, Any]]:
        return json.loads(recording(provider, filename))[key]

    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in items("mistral", "models.json", "data"):
        groups.setdefault(entry["name"], []).append(entry)
    return {
        "openrouter": [json.dumps(i) for i in items("openrouter", "models.json.gz", "data")],
        "google": [json.dumps(i) for i in items("google", "models.json", "models")],
        "mistral": [json.dumps(g) for g in groups.values()],
        "groq": [json.dumps(i) for i in items("groq", "models.json", "data")],
        "ollama": [json.dumps(i) for i in items("ollama", "api_tags.json", "models")],
        "ollama_shows": json.loads(recording("ollama", "api_show.json")),
    }


def _copies(templates: list[str], count: int):
    """(template JSON, copy number) for `count` models, cycling through the templates."""
    for i in range(count):
        yield templates[i % len(templates)], i // len(templates)


def _clone(item: Any) -> Any:
    return json.loads(json.dumps(item))


def _versioned(value: str, k: int) -> str:
    return value if k == 0 else f"{value}-v{k}"


def _suffixed(template: str, key: str, k: int) -> dict[str, Any]:
    item = json.loads(template)
    item[key] = _versioned(item[key], k)
    return item


def _scaled(price: Any, factor: Decimal) -> Any:
    """A positive price string times `factor`, written the way OpenRouter writes prices."""
    try:
        number = Decimal(price)
    except (InvalidOperation, TypeError, ValueError):
        return price
    if number <= 0:
        return price
    return format((number * factor).normalize(), "f")


def _plainly_priced(item: dict[str, Any]) -> bool:
    prompt = item.get("pricing", {}).get("prompt")
    return not item["id"].endswith(":free") and _scaled(prompt, Decimal(2)) != prompt


def _openrouter_copy(template: str, k: int) -> dict[str, Any]:
    item = json.loads(template)
    if k == 0:
        return item
    base, sep, variant = item["id"].partition(":")
    item["id"] = f"{base}-v{k}{sep}{variant}"
    if isinstance(item.get("canonical_slug"), str):
        item["canonical_slug"] = _versioned(item["canonical_slug"], k)
    if isinstance(item.get("name"), str):
        item["name"] = f"{item['name']} v{k}"
    factor = Decimal(100 + k % 10) / 100
    pricing = item.get("pricing")
    if isinstance(pricing, dict):
        item["pricing"] = {name: _scaled(value, factor) if isinstance(value, str) else value
                           for name, value in pricing.items()}
    return item


def _google_copy(template: str, k: int) -> dict[str, Any]:
    item = _suffixed(template, "name", k)
    if k and isinstance(item.get("displayName"), str):
        item["displayName"] = f"{item['displayName']} v{k}"
    return item


def _mistral_copy(template: str, k: int) -> list[dict[str, Any]]:
    group = json.loads(template)
    if k:
        for entry in group:
            entry["id"] = _versioned(entry["id"], k)
            entry["name"] = _versioned(entry["name"], k)
            if isinstance(entry.get("aliases"), list):
                entry["aliases"] = [_versioned(alias, k) for alias in entry["aliases"]]
    return group


def _ollama_copy(template: str, k: int) -> dict[str, Any]:
    item = json.loads(template)
    if k:
        model, _, tag = item["name"].partition(":")
        item["name"] = item["model"] = f"{model}-v{k}:{tag}" if tag else f"{model}-v{k}"
        item["digest"] = f"{k:08x}{item['digest'][8:]}"
    return item
