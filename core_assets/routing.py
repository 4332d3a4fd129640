"""Model routing as data: for each task profile of `routing.yaml` (chat, code, vision, …), the ranked
candidate models from the active table, written to the `model_routing` table for the orchestrator.

The ranking is the selector's (core_assets.selector), so routing and live selection always agree."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import Engine

from core_assets import settings
from core_assets.db.engine import ADVISORY_LOCK_ROUTING, write_transaction
from core_assets.db.tables import model_routing
from core_assets.selector import STRATEGIES, ModelSelector, Selection

PROFILE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
PROFILE_KEYS = (
    "needs", "min_context", "max_cost", "free_only", "providers", "exclude_providers", "include_deprecated",
    "strategy", "top_n",
)  # fmt: skip
MAX_TOP_N = 50


class RoutingConfigError(ValueError):
    """The routing file cannot be used; the message names the file, the profile and the problem."""


@dataclass(frozen=True)
class Profile:
    """One task profile: the constraints a model must meet and how many ranked candidates to keep."""

    name: str
    needs: tuple[str, ...] = ()
    min_context: int | None = None
    max_cost: float | None = None
    free_only: bool = False
    providers: tuple[str, ...] = ()
    exclude_providers: tuple[str, ...] = ()
    include_deprecated: bool = False
    strategy: str = "balanced"
    top_n: int = 5

    def select(self, selector: ModelSelector) -> Selection:
        return selector.select(
            needs=self.needs,
            min_context=self.min_context,
            max_cost_per_1k=self.max_cost,
            free_only=self.free_only,
            providers=self.providers or None,
            exclude_providers=self.exclude_providers or None,
            strategy=self.strategy,
            include_deprecated=self.include_deprecated,
            max_fallbacks=self.top_n - 1,
        )


def routing_file() -> Path:
    """`CORE_ROUTING_FILE`, else the project's routing.yaml."""
    raw = os.environ.get("CORE_ROUTING_FILE")
    return Path(raw).expanduser().resolve() if raw else settings.project_root() / "routing.yaml"


def file_version(path: Path | None = None) -> str | None:
    """sha256 of the routing file's text [:12], or None when it does not exist."""
    path = routing_file() if path is None else path
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return None


def load_profiles(path: Path | None = None) -> list[Profile]:
    """The profiles of the routing file, checked; raises RoutingConfigError."""
    path = routing_file() if path is None else path
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RoutingConfigError(f"cannot read the routing file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RoutingConfigError(f"{path.name}: not valid YAML: {str(exc).splitlines()[0]}") from None
    profiles = document.get("profiles") if isinstance(document, dict) else None
    if not isinstance(profiles, dict) or not profiles:
        raise RoutingConfigError(f"{path.name}: expected a mapping `profiles:` of profile name to settings")
    return [_profile(path, str(name), spec) for name, spec in profiles.items()]


def _profile(path: Path, name: str, spec: Any) -> Profile:
    def fail(problem: str):
        raise RoutingConfigError(f"{path.name}, profile {name!r}: {problem}")

    if not PROFILE_NAME.fullmatch(name):
        fail("a profile name is lower-case letters, digits, '-' and '_'")
    spec = spec or {}
    if not isinstance(spec, dict):
        fail("expected a mapping of settings")
    if unknown := sorted(set(spec) - set(PROFILE_KEYS)):
        fail(f"unknown setting(s) {', '.join(map(str, unknown))}; known: {', '.join(PROFILE_KEYS)}")

    def names(key: str, allowed: Iterable[str] | None = None) -> tuple[str, ...]:
        value = spec.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            fail(f"{key} must be a list of names")
        if allowed is not None and (bad := [v for v in value if v.split("/")[0] not in allowed]):
            fail(f"{key}: unknown provider(s) {', '.join(bad)}; known: {', '.join(allowed)}")
        return tuple(v.strip() for v in value)

    def number(key: str, kind: type) -> Any:
        value = spec.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
            fail(f"{key} must be a non-negative {'whole number' if kind is int else 'number'}, got {value!r}")
        return value

    def flag(key: str) -> bool:
        value = spec.get(key, False)
        if not isinstance(value, bool):
            fail(f"{key} must be true or false, got {value!r}")
        return value

    strategy = str(spec.get("strategy", "balanced")).replace("-", "_")
    if strategy not in STRATEGIES:
        fail(f"strategy must be one of {', '.join(STRATEGIES)}, got {spec.get('strategy')!r}")
    top_n = spec.get("top_n", 5)
    if isinstance(top_n, bool) or not isinstance(top_n, int) or not 1 <= top_n <= MAX_TOP_N:
        fail(f"top_n must be a whole number from 1 to {MAX_TOP_N}, got {top_n!r}")
    max_cost = number("max_cost", int | float)
    return Profile(
        name=name,
        needs=names("needs"),
        min_context=number("min_context", int),
        max_cost=None if max_cost is None else float(max_cost),
        free_only=flag("free_only"),
        providers=names("providers", settings.PROVIDERS),
        exclude_providers=names("exclude_providers", settings.PROVIDERS),
        include_deprecated=flag("include_deprecated"),
        strategy=strategy,
        top_n=top_n,
    )


def compute_routing(
    selector: ModelSelector, profiles: list[Profile], now: datetime | None = None
) -> tuple[list[dict[str, Any]], dict[str, Selection]]:
    """(model_routing rows, the selection behind each profile); raises RoutingConfigError when a profile
    asks for something the registry does not know (an unknown capability, say)."""
    now = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    selections: dict[str, Selection] = {}
    for profile in profiles:
        try:
            selection = profile.select(selector)
        except ValueError as exc:
            raise RoutingConfigError(f"{routing_file().name}, profile {profile.name!r}: {exc}") from None
        selections[profile.name] = selection
        candidates = [selection.primary, *selection.fallbacks] if selection.primary else []
        for rank, model in enumerate(candidates, start=1):
            rows.append(
                {
                    "profile": profile.name,
                    "rank": rank,
                    "provider_id": model["provider_id"],
                    "model_id": model["model_id"],
                    "name": model["name"],
                    "cost_per_1k": model["cost_per_1k"],
                    "context_window": model["context_window"],
                    "table_used": selection.table,
                    "computed_at": now,
                }
            )
    return rows, selections


def write_routing(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Replace the whole routing table with `rows` in one transaction: readers see the old routing or
    the new one, and profiles removed from the file disappear. Writers take turns: two at once would each
    delete only the rows they can see and then insert the same keys."""
    with write_transaction(engine, advisory_lock=ADVISORY_LOCK_ROUTING) as conn:
        conn.execute(model_routing.delete())
        if rows:
            conn.execute(model_routing.insert(), rows)
