"""Manual overrides: a checked-in YAML file (`overrides.yaml` at the project root, or `CORE_OVERRIDES_FILE`)
of field values for single models, each with a reason and an optional expiry date.

    overrides:
      - provider: groq
        model: llama-3.3-70b-versatile
        fields:
          context_window: 131072
          capabilities: {json_mode: true}
        reason: Groq's model page says 131,072 tokens; the API reports 128k.
        expires: 2026-12-31        # optional; the override applies up to and including this day

An override beats every other source (SPEC §2) until it expires. One that now equals what the sources
below it say is *stale* — no longer needed — and a warning check names it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, model_validator

from core_assets import settings
from core_assets.enrichment.merge import OVERRIDE, PROVIDER, REFERENCE_ORDER, merge_facts
from core_assets.records import FREE_KINDS, PRICE_FIELDS
from core_assets.settings import PROVIDERS, ConfigError
from core_assets.units import to_decimal

FILE_VARIABLE = "CORE_OVERRIDES_FILE"
DEFAULT_FILE = "overrides.yaml"

Key = tuple[str, str]


class OverrideError(ConfigError):
    """The overrides file cannot be used; the message names the file and the entry."""


def _price(value: Any) -> Decimal:
    # YAML reads 0.0003 as a float; via its repr it becomes the exact Decimal written in the file.
    number = to_decimal(value)
    if number is None or number < 0:
        raise ValueError("must be a price in USD per 1,000 tokens (a number >= 0)")
    return number


def _date(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError("must be a date, YYYY-MM-DD") from None


Price = Annotated[Decimal, PlainValidator(_price)]
IsoDate = Annotated[str, PlainValidator(_date)]
Day = Annotated[dt.date, PlainValidator(lambda value: dt.date.fromisoformat(_date(value)))]
TokenCount = Annotated[int, Field(strict=True, ge=1)]
Text = Annotated[str, Field(min_length=1)]


class Modalities(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: list[Text] = Field(min_length=1)
    output: list[Text] = Field(min_length=1)


class OverrideFields(BaseModel):
    """The fields an override may set: any registry spec (SPEC §3), with the same types."""

    model_config = ConfigDict(extra="forbid")
    context_window: TokenCount | None = None
    max_output_tokens: TokenCount | None = None
    input_cost_per_1k: Price | None = None
    output_cost_per_1k: Price | None = None
    modalities: Modalities | None = None
    capabilities: dict[Text, Annotated[bool, Field(strict=True)]] | None = None
    family: Text | None = None
    parameter_size: Text | None = None
    deprecation_date: IsoDate | None = None
    successor: Text | None = None
    aliases: list[Text] | None = None
    free_kind: Literal[FREE_KINDS] | None = None


class OverrideEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Literal[PROVIDERS]
    model: Text
    fields: OverrideFields
    reason: Text
    expires: Day | None = None

    @model_validator(mode="after")
    def _sets_something(self) -> OverrideEntry:
        if not self.fields.model_dump(exclude_none=True):
            raise ValueError("`fields` sets nothing")
        return self


@dataclass(frozen=True)
class Override:
    """One entry of the file: field values for one model."""

    provider_id: str
    model_id: str
    facts: dict[str, Any]
    reason: str
    expires: dt.date | None
    entry: int

    def active(self, today: dt.date) -> bool:
        return self.expires is None or today <= self.expires

    @property
    def label(self) -> str:
        return f"entry {self.entry} ({self.provider_id}/{self.model_id})"


@dataclass(frozen=True)
class StaleOverride:
    override: Override
    field: str
    value: Any


class Overrides:
    """The loaded overrides file."""

    def __init__(self, entries: Iterable[Override] = (), path: Path | None = None):
        self.entries = list(entries)
        self.path = path
        self._by_model: dict[Key, list[Override]] = {}
        for entry in self.entries:
            self._by_model.setdefault((entry.provider_id, entry.model_id), []).append(entry)

    def __len__(self) -> int:
        return len(self.entries)

    def active(self, today: dt.date | None = None) -> list[Override]:
        today = today or _today()
        return [entry for entry in self.entries if entry.active(today)]

    def expired(self, today: dt.date | None = None) -> list[Override]:
        today = today or _today()
        return [entry for entry in self.entries if not entry.active(today)]

    def facts_for(
        self, provider_id: str, model_id: str, today: dt.date | None = None
    ) -> dict[str, Any] | None:
        """The "override" facts for one model from its active entries, or None; feed to merge_facts first."""
        today = today or _today()
        facts: dict[str, Any] = {}
        for entry in self._by_model.get((provider_id, model_id), ()):
            if entry.active(today):
                capabilities = {**facts.get("capabilities", {}), **entry.facts.get("capabilities", {})}
                facts.update(entry.facts)
                if capabilities:
                    facts["capabilities"] = capabilities
        return facts or None

    def stale(
        self, upstream: Mapping[Key, dict[str, Any]], today: dt.date | None = None
    ) -> list[StaleOverride]:
        """Active override fields whose value the model's other sources now give anyway.

        `upstream` maps (provider_id, model_id) to the specs merged *without* overrides (see
        upstream_specs)."""
        found = []
        for entry in self.active(today):
            specs = upstream.get((entry.provider_id, entry.model_id))
            if specs is None:
                continue
            for name, value in entry.facts.items():
                if name == "capabilities":
                    capabilities = specs.get("capabilities") or {}
                    found += [
                        StaleOverride(entry, f"capabilities.{cap}", flag)
                        for cap, flag in value.items()
                        if capabilities.get(cap) is flag
                    ]
                elif same_value(name, value, specs.get(name)):
                    found.append(StaleOverride(entry, name, value))
        return found


def same_value(name: str, ours: Any, theirs: Any) -> bool:
    if theirs is None:
        return False
    if name in PRICE_FIELDS:
        return to_decimal(theirs) == to_decimal(ours)
    if name == "modalities":
        return all(sorted(ours.get(side, [])) == sorted(theirs.get(side, [])) for side in ("input", "output"))
    return ours == theirs


def upstream_specs(sources: Mapping[str, dict[str, Any] | None]) -> dict[str, Any]:
    """Specs merged from a model's sources ({source name: facts}, e.g. model_specs' `sources` column)
    leaving the override out, each source in merge precedence order."""
    order = (PROVIDER, *REFERENCE_ORDER)
    ordered = sorted(
        ((name, facts) for name, facts in sources.items() if name != OVERRIDE),
        key=lambda pair: order.index(pair[0]) if pair[0] in order else len(order),
    )
    specs, _ = merge_facts(ordered)
    return specs


def overrides_path() -> Path:
    raw = os.environ.get(FILE_VARIABLE, "").strip()
    return Path(raw).expanduser() if raw else settings.project_root() / DEFAULT_FILE


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _error_text(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def load_overrides(path: Path | str | None = None) -> Overrides:
    """The overrides file, validated. A missing default file means no overrides; a file named by
    CORE_OVERRIDES_FILE (or `path`) must exist. Raises OverrideError naming the file and the entry."""
    explicit = path is not None or bool(os.environ.get(FILE_VARIABLE, "").strip())
    path = Path(path) if path is not None else overrides_path()
    if not path.exists():
        if explicit:
            raise OverrideError(f"{path}: overrides file not found")
        return Overrides(path=None)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise OverrideError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if document is None:
        return Overrides(path=path)
    if not isinstance(document, dict) or not isinstance(document.get("overrides", []), list):
        raise OverrideError(f"{path}: expected a mapping with an `overrides:` list")
    extra = sorted(set(document) - {"overrides"})
    if extra:
        raise OverrideError(f"{path}: unknown top-level key(s) {', '.join(extra)}; expected only `overrides`")
    entries = []
    seen: dict[tuple[str, str, str], int] = {}
    for number, raw in enumerate(document.get("overrides") or [], start=1):
        label = _entry_label(number, raw)
        try:
            entry = OverrideEntry.model_validate(raw)
        except ValidationError as exc:
            raise OverrideError(f"{path}: {label}: {_error_text(exc)}") from None
        facts = entry.fields.model_dump(exclude_none=True)
        names = [name for name in facts if name != "capabilities"]
        names += [f"capabilities.{cap}" for cap in facts.get("capabilities", {})]
        for name in names:
            previous = seen.setdefault((entry.provider, entry.model, name), number)
            if previous != number:
                raise OverrideError(f"{path}: {label}: `{name}` is already overridden by entry {previous}")
        entries.append(Override(entry.provider, entry.model, facts, entry.reason, entry.expires, number))
    return Overrides(entries, path)


def _entry_label(number: int, raw: Any) -> str:
    if isinstance(raw, dict) and raw.get("provider") and raw.get("model"):
        return f"entry {number} ({raw['provider']}/{raw['model']})"
    return f"entry {number}"
