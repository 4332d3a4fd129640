"""Writing `model_registry`: bulk upsert of changed rows, lifecycle and price history, in one transaction.

The new rows of a provider replace what the registry knows about that provider: rows whose content
hash is unchanged are not rewritten, models that disappeared from the snapshot in force become
`missing` (never deleted), and every change of price opens a new `model_price_history` period. Writers
are serialized (a PostgreSQL advisory lock, SQLite's write lock), so two syncs at once end with the
same table as one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from core_assets.db.engine import (
    ADVISORY_LOCK_SYNC,
    json_default,
    needs_escape,
    store_json,
    write_transaction,
)
from core_assets.db.tables import model_price_history, model_registry, sync_runs

# The columns that make up a row's content; `updated_at` moves only when one of them changes.
CONTENT_COLUMNS = ("name", "is_free", "cost_per_1k", "provider_data", "ai_data", "specs", "status")
JSON_COLUMNS = ("provider_data", "ai_data", "specs")
UPSERT_COLUMNS = ("provider_id", "model_id", *CONTENT_COLUMNS, "content_hash", "snapshot_id", "first_seen_at",
                  "last_seen_at", "updated_at")
# An upsert of a row that exists keeps its first_seen_at.
UPDATED_COLUMNS = tuple(c for c in UPSERT_COLUMNS if c not in ("provider_id", "model_id", "first_seen_at"))
PRICE_HISTORY_COLUMNS = ("provider_id", "model_id", "input_cost_per_1k", "output_cost_per_1k", "is_free", "source",
                         "valid_from", "valid_to", "run_id")
_BATCH = 5000


@contextmanager
def locked_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """A write transaction that holds the registry's writer lock until it commits or rolls back, so the
    diff below reads what no one else can change."""
    with write_transaction(engine, advisory_lock=ADVISORY_LOCK_SYNC) as conn:
        yield conn


_canonical = json.JSONEncoder(sort_keys=True, default=json_default, separators=(",", ":"), ensure_ascii=False).encode


def _content(row: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(sha256 of the row's content, the canonical JSON text of each content column but status)."""
    texts = {c: _canonical(row.get(c)) for c in CONTENT_COLUMNS if c != "status"}
    # Exactly the text json.dumps makes of the list of those values: their texts joined by the separator.
    return hashlib.sha256(("[" + ",".join(texts.values()) + "]").encode()).hexdigest(), texts


def _stored_json(value: Any, text: str) -> str:
    """What a PostgreSQL JSON column stores for `value`, given its canonical text: jsonb keeps no key
    order of its own, so that text serves as it is unless store_json has characters to escape."""
    return store_json(value) if needs_escape(text) else text


def _price(value) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value)).normalize()


def _prices(specs: dict | None, is_free: bool) -> tuple[Decimal | None, Decimal | None, bool]:
    specs = specs or {}
    return _price(specs.get("input_cost_per_1k")), _price(specs.get("output_cost_per_1k")), bool(is_free)


@dataclass
class ProviderChanges:
    fetched: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    missing: int = 0
    price_changes: int = 0


@dataclass
class WriteResult:
    per_provider: dict[str, ProviderChanges] = field(default_factory=dict)
    new_models: list[dict[str, Any]] = field(default_factory=list)
    price_changes: list[dict[str, Any]] = field(default_factory=list)
    newly_missing: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows_written(self) -> int:
        return sum(c.new + c.changed + c.missing for c in self.per_provider.values())


def _insert(conn: sa.Connection, table: sa.Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _batches(items: list, size: int = _BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def write_registry(
    engine: Engine,
    rows: list[dict[str, Any]],
    *,
    providers: dict[str, datetime],
    now: datetime,
    run_id: str | None = None,
) -> WriteResult:
    """Apply the merged rows of `providers` (provider → when its snapshot in force was last confirmed).

    Each row has the registry's content columns plus provider_id, model_id and snapshot_id. Only the
    providers named are touched; a provider whose fetch failed is simply not named."""
    result = WriteResult(per_provider={p: ProviderChanges() for p in providers})
    incoming: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if row["provider_id"] in providers:
            incoming[(row["provider_id"], row["model_id"])] = row
    reg = model_registry.c
    with locked_transaction(engine) as conn:
        existing = {
            (r.provider_id, r.model_id): r
            for r in conn.execute(
                sa.select(reg.provider_id, reg.model_id, reg.content_hash, reg.status, reg.name).where(
                    reg.provider_id.in_(list(providers))
                )
            )
        }
        open_prices = _open_prices(conn, list(providers))

        upserts, price_rows, closes = [], [], []
        postgres = conn.dialect.name == "postgresql"
        for key, row in incoming.items():
            stats = result.per_provider[key[0]]
            stats.fetched += 1
            digest, texts = _content(row)
            before = existing.get(key)
            if before is not None and before.content_hash == digest and before.status == row["status"]:
                stats.unchanged += 1
            else:
                if before is None:
                    stats.new += 1
                    result.new_models.append(_brief(row))
                else:
                    stats.changed += 1
                upserts.append({
                    **{c: row.get(c) for c in CONTENT_COLUMNS},
                    # PostgreSQL's COPY takes the JSON columns as text; the text hashed above serves.
                    **({c: _stored_json(row.get(c), texts[c]) for c in JSON_COLUMNS} if postgres else {}),
                    "provider_id": key[0],
                    "model_id": key[1],
                    "content_hash": digest,
                    "snapshot_id": row.get("snapshot_id"),
                    "first_seen_at": now,
                    "last_seen_at": providers[key[0]],
                    "updated_at": now,
                })
            new_price = _prices(row.get("specs"), row.get("is_free"))
            old_price = open_prices.get(key)
            if old_price is None or old_price[1:] != new_price:
                if old_price is not None:
                    closes.append({"history_id": old_price[0], "valid_to": now})
                    stats.price_changes += 1
                    result.price_changes.append(
                        {**_brief(row), "old_input": old_price[1], "new_input": new_price[0],
                         "old_output": old_price[2], "new_output": new_price[1]}
                    )
                price_rows.append({
                    "provider_id": key[0], "model_id": key[1], "input_cost_per_1k": new_price[0],
                    "output_cost_per_1k": new_price[1], "is_free": new_price[2],
                    "source": (row.get("specs") or {}).get("provenance", {}).get("input_cost_per_1k"),
                    "valid_from": now, "valid_to": None, "run_id": run_id,
                })

        gone = [k for k, r in existing.items() if k not in incoming and r.status != "missing"]
        for key in gone:
            result.per_provider[key[0]].missing += 1
            result.newly_missing.append({"provider_id": key[0], "model_id": key[1], "name": existing[key].name})

        _upsert(conn, upserts)
        for batch in _batches(gone):
            conn.execute(
                model_registry.update()
                .where(sa.tuple_(reg.provider_id, reg.model_id).in_(batch))
                .values(status="missing", updated_at=now)
            )
        # One statement per provider moves last_seen_at for every model listed by the snapshot in force;
        # rows whose content did not change are otherwise left alone.
        for provider, confirmed_at in providers.items():
            conn.execute(
                model_registry.update()
                .where(reg.provider_id == provider, reg.status != "missing", reg.last_seen_at < confirmed_at)
                .values(last_seen_at=confirmed_at)
            )
        hist = model_price_history.c
        if closes:
            conn.execute(
                model_price_history.update()
                .where(hist.id == sa.bindparam("history_id"))
                .values(valid_to=sa.bindparam("valid_to")),
                closes,
            )
        if price_rows:
            _insert_price_history(conn, price_rows)
        conn.execute(
            sync_runs.insert().values(
                run_id=run_id,
                finished_at=now,
                summary={p: vars(c) for p, c in result.per_provider.items()},
            )
        )
    return result


def _open_prices(conn: sa.Connection, providers: list[str]) -> dict[tuple[str, str], tuple]:
    hist = model_price_history.c
    rows = conn.execute(
        sa.select(hist.id, hist.provider_id, hist.model_id, hist.input_cost_per_1k, hist.output_cost_per_1k,
                  hist.is_free).where(hist.provider_id.in_(providers), hist.valid_to.is_(None))
    )
    return {
        (r.provider_id, r.model_id): (r.id, _price(r.input_cost_per_1k), _price(r.output_cost_per_1k), bool(r.is_free))
        for r in rows
    }


def _upsert(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy_upsert(conn, rows)
        return
    stmt = _insert(conn, model_registry)
    update = {c: stmt.excluded[c] for c in UPDATED_COLUMNS}
    stmt = stmt.on_conflict_do_update(index_elements=["provider_id", "model_id"], set_=update)
    for batch in _batches(rows):
        conn.execute(stmt, batch)


def _copy_upsert(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: COPY the rows (JSON columns as text) into a temporary table, then upsert them all in one
    statement — a full sync of 100,000 models in seconds, where multi-row INSERTs take several times as long."""
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE registry_upsert (LIKE model_registry INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    _copy(
        conn,
        "registry_upsert",
        UPSERT_COLUMNS,
        ([row[c] for c in UPSERT_COLUMNS] for row in rows),
    )
    columns = ", ".join(UPSERT_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in UPDATED_COLUMNS)
    conn.exec_driver_sql(
        f"INSERT INTO model_registry ({columns}) SELECT {columns} FROM registry_upsert "
        f"ON CONFLICT (provider_id, model_id) DO UPDATE SET {updates}"
    )


def _copy(conn: sa.Connection, table: str, columns: tuple[str, ...], rows: Iterable[list[Any]]) -> None:
    """PostgreSQL COPY … FROM STDIN of `rows` (values in `columns` order), in the connection's transaction."""
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _insert_price_history(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name == "postgresql":
        _copy(conn, "model_price_history", PRICE_HISTORY_COLUMNS,
              ([row[c] for c in PRICE_HISTORY_COLUMNS] for row in rows))
        return
    for batch in _batches(rows):
        conn.execute(model_price_history.insert(), batch)


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    return {"provider_id": row["provider_id"], "model_id": row["model_id"], "name": row.get("name")}
