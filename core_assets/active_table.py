"""The active table (SPEC §5): `orchestrator_config.active_table_name` names the table or view the selector
reads. Only an existing table or view that exposes the registry's key columns can become active; every
switch is logged in `active_table_log`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core_assets.custom_tables import MAX_NAME_LENGTH, NAME_PATTERN, relations
from core_assets.db.engine import write_transaction
from core_assets.db.tables import (
    CORE_TABLES,
    REGISTRY_TABLE,
    active_table_log,
    orchestrator_config,
    table_usage,
)

# The columns every table the selector may read must have (issue 4).
KEY_COLUMNS = ("provider_id", "model_id", "name", "is_free", "cost_per_1k", "specs", "status")

CONFIG_ID = 1


class InvalidTableError(ValueError):
    """A name that cannot become the active table; the message says why. Nothing was changed."""


def get_active_table(engine: Engine) -> str:
    with engine.connect() as conn:
        name = conn.execute(
            sa.select(orchestrator_config.c.active_table_name).where(orchestrator_config.c.id == CONFIG_ID)
        ).scalar()
    return name or REGISTRY_TABLE


def table_problem(engine: Engine, name: str, existing: dict[str, str] | None = None) -> str | None:
    """Why the selector cannot read `name` (missing, not a plain name, lacking key columns, broken), or None."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        return f"{name!r} is not a plain table name (lower-case letters, digits and underscores)"
    if name in CORE_TABLES and name != REGISTRY_TABLE:
        return f"{name!r} is an internal table of the registry, not a table of models"
    existing = relations(engine) if existing is None else existing
    if name not in existing:
        return f"no table or view named {name!r} exists"
    try:
        columns = {c["name"] for c in sa.inspect(engine).get_columns(name)}
    except sa.exc.DBAPIError as exc:  # SQLite cannot even list the columns of a broken view
        return f"{name!r} cannot be read: {_first_line(exc)}"
    if missing := [c for c in KEY_COLUMNS if c not in columns]:
        return f"{name!r} lacks the registry's key column(s) {', '.join(missing)}"
    quote = engine.dialect.identifier_preparer.quote_identifier
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"SELECT {', '.join(KEY_COLUMNS)} FROM {quote(name)} LIMIT 1")).all()
    except sa.exc.DBAPIError as exc:
        return f"{name!r} cannot be read: {_first_line(exc)}"
    return None


def set_active_table(engine: Engine, name: str, actor: str | None = None) -> str:
    """Make `name` the active table and return the previous one; raises InvalidTableError (changing
    nothing) when `name` is not an existing table or view with the registry's key columns."""
    if problem := table_problem(engine, name):
        raise InvalidTableError(f"cannot use {problem} (`core-registry tables` lists the candidates)")
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        previous = conn.execute(
            sa.select(orchestrator_config.c.active_table_name)
            .where(orchestrator_config.c.id == CONFIG_ID)
            .with_for_update()
        ).scalar()
        if previous == name:
            return name
        if previous is None:
            conn.execute(
                orchestrator_config.insert().values(id=CONFIG_ID, active_table_name=name, updated_at=now)
            )
        else:
            conn.execute(
                orchestrator_config.update()
                .where(orchestrator_config.c.id == CONFIG_ID)
                .values(active_table_name=name, updated_at=now)
            )
        conn.execute(
            active_table_log.insert().values(switched_at=now, from_table=previous, to_table=name, actor=actor)
        )
    return previous or REGISTRY_TABLE


def list_tables(engine: Engine) -> list[dict[str, Any]]:
    """The tables the selector could read — model_registry, every view, any other table with the key
    columns — and the active one even if it is gone, with row counts and usage."""
    existing = relations(engine)
    active = get_active_table(engine)
    inspector = sa.inspect(engine)
    names = {REGISTRY_TABLE, active}
    for name, kind in existing.items():
        if name in CORE_TABLES:
            continue
        if kind == "view" or set(KEY_COLUMNS) <= {c["name"] for c in inspector.get_columns(name)}:
            names.add(name)
    with engine.connect() as conn:
        usage = {row.table_name: row for row in conn.execute(sa.select(table_usage))}
    result = []
    for name in sorted(names, key=lambda n: (n != REGISTRY_TABLE, n)):
        used = usage.get(name)
        result.append(
            {
                "name": name,
                "kind": existing.get(name, "missing"),
                "rows": _row_count(engine, name) if name in existing else None,
                "active": name == active,
                "reads": used.reads if used else 0,
                "fallbacks": used.fallbacks if used else 0,
                "last_used_at": used.last_used_at if used else None,
            }
        )
    return result


def _row_count(engine: Engine, name: str) -> int | None:
    quote = engine.dialect.identifier_preparer.quote_identifier
    try:
        # A connection of its own: on PostgreSQL a failed query spoils the rest of its transaction.
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {quote(name)}")).scalar_one()
    except sa.exc.DBAPIError:
        return None


def _first_line(exc: sa.exc.DBAPIError) -> str:
    return (str(exc.orig) if exc.orig else str(exc)).strip().splitlines()[0]
