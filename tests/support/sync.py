"""The real `model_registry_sync` job run in-process, and what it leaves in the registry database: shared
by the reliability tests (faults, shrink guard, crashes, concurrency, injection, secrets)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import dagster as dg
import sqlalchemy as sa

from core_assets import settings
from core_assets.db import engine as db_engine
from core_assets.db.engine import connect
from core_assets.db.tables import model_price_history, model_registry, sync_runs
from core_assets.definitions import defs as load_defs
from core_assets.defs.jobs import SYNC_JOB_NAME
from tests.conftest import POSTGRES_ADMIN_URL

Key = tuple[str, str]
# Columns that say when, not what: a re-run of the same sync moves them.
WHEN_COLUMNS = ("first_seen_at", "last_seen_at", "updated_at", "snapshot_id")


@cache
def _job(sql_dir: str) -> dg.JobDefinition:
    return load_defs().resolve_job_def(SYNC_JOB_NAME)


def sync_job() -> dg.JobDefinition:
    """The sync job as the code location defines it now (custom tables come from CORE_SQL_DIR)."""
    return _job(str(settings.sql_dir()))


def run_sync(database_url: str, *, instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    """One full sync of every enabled provider into `database_url`, as the schedule would run it."""
    return sync_job().execute_in_process(
        run_config={
            "resources": {
                "registry_db": {"config": {"url": database_url}},
                "sources": {"config": {"demo": False}},
            }
        },
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def registry_rows(database_url: str, provider: str | None = None) -> dict[Key, dict[str, Any]]:
    """Every model_registry row (of one provider), whole, by key."""
    query = sa.select(model_registry)
    if provider:
        query = query.where(model_registry.c.provider_id == provider)
    with connect(database_url).connect() as conn:
        return {(r.provider_id, r.model_id): dict(r._mapping) for r in conn.execute(query)}


def registry_content(database_url: str) -> dict[str, Any]:
    """What the registry says, without when it said it: every row's content, and each model's open price
    period and number of price periods. Two databases that went through the same syncs are equal here."""
    hist = model_price_history.c
    with connect(database_url).connect() as conn:
        periods = conn.execute(
            sa.select(hist.provider_id, hist.model_id, hist.input_cost_per_1k, hist.output_cost_per_1k,
                      hist.is_free, hist.valid_to)
        ).all()  # fmt: skip
    counts: dict[Key, int] = {}
    open_prices: dict[Key, list[tuple]] = {}
    for p in periods:
        counts[(p.provider_id, p.model_id)] = counts.get((p.provider_id, p.model_id), 0) + 1
        if p.valid_to is None:
            open_prices.setdefault((p.provider_id, p.model_id), []).append(
                (p.input_cost_per_1k, p.output_cost_per_1k, p.is_free)
            )
    models = {
        key: {k: v for k, v in row.items() if k not in WHEN_COLUMNS}
        for key, row in registry_rows(database_url).items()
    }
    return {"models": models, "open_prices": open_prices, "price_periods": counts}


def registry_state(database_url: str) -> dict[str, list[tuple]]:
    """The registry's tables exactly, timestamps and ids included."""
    with connect(database_url).connect() as conn:
        return {
            table.name: sorted(tuple(map(repr, row)) for row in conn.execute(sa.select(table)))
            for table in (model_registry, model_price_history, sync_runs)
        }


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def copy_sqlite(source_url: str, target_path) -> str:
    """A consistent copy of a SQLite registry (SQLite's backup API, WAL included); its URL."""
    db_engine.dispose_all()
    source = sqlite3.connect(sa.engine.make_url(source_url).database)
    target = sqlite3.connect(target_path)
    with target:
        source.backup(target)
    source.close()
    target.close()
    return f"sqlite:///{target_path}"


@contextmanager
def postgres_copy(source_url: str) -> Iterator[str]:
    """A copy of a PostgreSQL registry database (CREATE DATABASE … TEMPLATE), dropped afterwards."""
    db_engine.dispose_all()
    source = sa.engine.make_url(source_url).database
    name = f"core_copy_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
    try:
        yield sa.engine.make_url(source_url).set(database=name).render_as_string(hide_password=False)
    finally:
        db_engine.dispose_all()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def drop_one_model(fake, provider: str) -> Key:
    """Take one model off the fake provider's list (every Mistral entry of its name); its registry key."""
    items = fake.items(provider)
    if provider == "mistral":
        name = items[0]["name"]
        fake.set_items(provider, [i for i in items if i.get("name") != name])
        return provider, name
    item = items[-1]
    items.remove(item)
    if provider == "google":
        return provider, item["name"].removeprefix("models/")
    return provider, item["id"] if provider in ("openrouter", "groq") else item["name"]


def change_upstream(fake) -> None:
    """A sync's worth of upstream changes: a model gone, a price changed, a model added."""
    drop_one_model(fake, "groq")
    priced = next(m for m in fake.items("openrouter") if m["pricing"].get("prompt") == "0.0000003")
    priced["pricing"]["prompt"] = "0.0000006"
    added = {**fake.items("mistral")[0], "id": "mistral-brand-new", "name": "mistral-brand-new", "aliases": []}
    fake.items("mistral").append(added)


def child_environment(fake, database_url: str) -> dict[str, str]:
    """What a `core-registry sync` child process needs to sync from the fake providers into `database_url`."""
    return {**fake.environment(), "CORE_DATABASE_URL": database_url, "CORE_REFERENCES": "offline"}
