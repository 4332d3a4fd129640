"""Reading one model out of the registry for people: `core-registry show` and `history`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core_assets.db.tables import model_price_history, model_registry
from core_assets.records import SPEC_FIELDS

# Other names people use for a provider.
PROVIDER_ALIASES = {"gemini": "google"}
STATUS_ORDER = {"active": 0, "deprecated": 1, "missing": 2}


def canonical_provider(name: str) -> str:
    name = name.strip().lower()
    return PROVIDER_ALIASES.get(name, name)


def find_model(engine: Engine, provider: str, model_or_alias: str) -> dict[str, Any] | None:
    """The whole registry row of `provider/model_or_alias` (a model id or one of its `specs.aliases`),
    with JSON parsed; None when there is none. An id wins over an alias; among several models listing
    the same alias, the active one."""
    provider = canonical_provider(provider)
    t = model_registry
    with engine.connect() as conn:
        row = (
            conn.execute(sa.select(t).where(t.c.provider_id == provider, t.c.model_id == model_or_alias))
            .mappings()
            .first()
        )
        if row is None:
            if engine.dialect.name == "postgresql":
                has_alias = sa.text(
                    "(model_registry.specs -> 'aliases') @> jsonb_build_array(CAST(:alias AS text))"
                )
            else:
                has_alias = sa.text(
                    "EXISTS (SELECT 1 FROM json_each(model_registry.specs, '$.aliases') AS a WHERE a.value = :alias)"
                )
            candidates = (
                conn.execute(
                    sa.select(t).where(
                        t.c.provider_id == provider, has_alias.bindparams(alias=model_or_alias)
                    )
                )
                .mappings()
                .all()
            )
            if not candidates:
                return None
            row = min(candidates, key=lambda r: (STATUS_ORDER.get(r["status"], 3), r["model_id"]))
    return dict(row)


def price_history(engine: Engine, provider: str, model_id: str) -> list[dict[str, Any]]:
    """Every recorded price of one model, oldest first (`valid_to` None = the current price)."""
    t = model_price_history
    columns = (
        t.c.input_cost_per_1k,
        t.c.output_cost_per_1k,
        t.c.is_free,
        t.c.source,
        t.c.valid_from,
        t.c.valid_to,
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*columns)
            .where(t.c.provider_id == provider, t.c.model_id == model_id)
            .order_by(t.c.valid_from, t.c.id)
        ).mappings()
        return [dict(row) for row in rows]


def _when(value: Any) -> str:
    """A timestamp to the second, in UTC (SQLite returns them without a zone; all are written in UTC)."""
    if not isinstance(value, datetime):
        return "unknown" if value is None else str(value)
    value = value.astimezone(UTC) if value.tzinfo else value
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _value(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | Decimal):
        return format(Decimal(repr(value)) if isinstance(value, float) else value.normalize(), "f")
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_value(v)}" for k, v in value.items()) or "none"
    return str(value)


def format_model(row: dict[str, Any]) -> str:
    """One model for a terminal: identity, status and price, then every specs field with its source."""
    specs = row.get("specs") or {}
    provenance = specs.get("provenance") or {}
    cost = row.get("cost_per_1k")
    lines = [
        f"{row['provider_id']}/{row['model_id']}" + (f"  ({row['name']})" if row.get("name") else ""),
        f"status: {row['status']}   free: {_value(row['is_free'])}   "
        f"input price: {'unknown' if cost is None else '$' + _value(cost) + ' per 1k tokens'}",
        f"first seen: {_when(row.get('first_seen_at'))}   last seen: {_when(row.get('last_seen_at'))}   "
        f"updated: {_when(row.get('updated_at'))}",
        "",
    ]
    entries: list[tuple[str, str, str]] = []
    for name in SPEC_FIELDS:
        if name == "capabilities":
            for capability, flag in (specs.get("capabilities") or {}).items():
                source = provenance.get(f"capabilities.{capability}", "")
                entries.append((f"capabilities.{capability}", _value(flag), source))
        else:
            entries.append((name, _value(specs.get(name)), provenance.get(name, "")))
    width = max(len(name) for name, _, _ in entries)
    value_width = min(48, max(len(value) for _, value, _ in entries))
    lines.append(f"{'field'.ljust(width)}  {'value'.ljust(value_width)}  source")
    for name, value, source in entries:
        lines.append(f"{name.ljust(width)}  {value.ljust(value_width)}  {source or '-'}".rstrip())
    return "\n".join(lines)


def format_history(row: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """The lifecycle and price history of one model for a terminal."""
    lines = [
        f"{row['provider_id']}/{row['model_id']}  status: {row['status']}",
        f"first seen: {_when(row.get('first_seen_at'))}   last seen: {_when(row.get('last_seen_at'))}",
        "",
    ]
    if not history:
        lines.append("no price recorded")
        return "\n".join(lines)
    table = [("valid from", "valid to", "input/1k", "output/1k", "free", "source")]
    for entry in history:
        table.append(
            (
                _when(entry["valid_from"]),
                _when(entry["valid_to"]) if entry["valid_to"] is not None else "now",
                _value(entry["input_cost_per_1k"]),
                _value(entry["output_cost_per_1k"]),
                _value(entry["is_free"]),
                entry.get("source") or "-",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines.extend("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table)
    return "\n".join(lines)
