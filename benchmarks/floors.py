"""The two floors every sync figure is compared with, measured in the same process as the sync.

(a) Dagster's own cost: a trivial graph of six assets, executed in-process the way `core-registry sync`
    executes the real job (ephemeral instance, default IO manager, console logging at ERROR).
(b) The database's own cost: the registry's N rows, already serialized, bulk-loaded into an empty copy
    of `model_registry` in one statement — on PostgreSQL COPY into a staging table plus one
    INSERT … ON CONFLICT, on SQLite one executemany upsert — and committed.
"""

from __future__ import annotations

import time
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

FLOOR_TABLE = "bench_floor_registry"
COLUMNS = (
    "provider_id", "model_id", "name", "is_free", "cost_per_1k", "provider_data", "ai_data", "specs", "status",
    "first_seen_at", "last_seen_at", "updated_at", "content_hash", "snapshot_id",
)
JSON_COLUMNS = ("provider_data", "ai_data", "specs")
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dg.asset
def raw() -> int:
    return 1


@dg.asset
def reference() -> int:
    return 1


@dg.asset
def normalized(raw: int) -> int:
    return raw


@dg.asset
def inferred(normalized: int, reference: int) -> int:
    return normalized + reference


@dg.asset
def specs(normalized: int, inferred: int) -> int:
    return normalized + inferred


@dg.asset
def registry(specs: int) -> None:
    return None


def trivial_job() -> dg.JobDefinition:
    """The six assets as one job, resolved once like the real job (resolution is not timed)."""
    defs = dg.Definitions(
        assets=[raw, reference, normalized, inferred, specs, registry],
        jobs=[dg.define_asset_job("trivial_six", selection=dg.AssetSelection.all())],
    )
    return defs.resolve_job_def("trivial_six")


def shaped_job(asset_steps: int, check_steps: int) -> dg.JobDefinition:
    """A trivial graph with as many asset steps and check steps as the real job: what Dagster alone costs
    for the job's shape, whatever its steps compute. Not a floor of the issue; it explains the ratios."""

    def asset(index: int) -> dg.AssetsDefinition:
        if index == 0:
            return dg.asset(name="shape_0")(lambda: 1)

        @dg.asset(name=f"shape_{index}", ins={"upstream": dg.AssetIn(f"shape_{index - 1}")})
        def step(upstream: int) -> int:
            return upstream + 1

        return step

    def check(index: int) -> dg.AssetChecksDefinition:
        @dg.asset_check(asset=f"shape_{index % asset_steps}", name=f"check_{index}")
        def evaluate() -> dg.AssetCheckResult:
            return dg.AssetCheckResult(passed=True)

        return evaluate

    defs = dg.Definitions(
        assets=[asset(i) for i in range(asset_steps)],
        asset_checks=[check(i) for i in range(check_steps)],
        jobs=[dg.define_asset_job("job_shape", selection=dg.AssetSelection.all())],
    )
    return defs.resolve_job_def("job_shape")


def floor_a(job: dg.JobDefinition) -> float:
    """Seconds to materialize a trivial graph once."""
    with dg.DagsterInstance.ephemeral() as instance:  # disposed as run_sync's are (worker.py)
        started = time.perf_counter()
        result = job.execute_in_process(run_config=RUN_CONFIG, instance=instance)
        elapsed = time.perf_counter() - started
    assert result.success
    return elapsed


def registry_rows(engine: Engine) -> list[tuple[Any, ...]]:
    """The registry's rows as the driver stores them (JSON as text), ready for a bulk load."""
    cast = "::text" if engine.dialect.name == "postgresql" else ""
    columns = ", ".join(f"{c}{cast}" if c in JSON_COLUMNS else c for c in COLUMNS)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(f"SELECT {columns} FROM model_registry")]


def prepare_floor_table(engine: Engine) -> None:
    """An empty table with model_registry's columns, key and constraints."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"CREATE TABLE {FLOOR_TABLE} (LIKE model_registry INCLUDING ALL)")
        else:
            ddl = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'model_registry'"
            ).scalar_one()
            conn.exec_driver_sql(ddl.replace("model_registry", FLOOR_TABLE))


def floor_b(engine: Engine, rows: list[tuple[Any, ...]]) -> float:
    """Seconds to bulk-load `rows` into the empty floor table and commit."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM {FLOOR_TABLE}")
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:])
    raw_conn = engine.raw_connection()
    try:
        cursor = raw_conn.cursor()
        started = time.perf_counter()
        if engine.dialect.name == "postgresql":
            cursor.execute(
                "CREATE TEMP TABLE bench_floor_staging (LIKE model_registry INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            with cursor.copy(f"COPY bench_floor_staging ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {FLOOR_TABLE} ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} "
                f"FROM bench_floor_staging ON CONFLICT (provider_id, model_id) DO UPDATE SET {updates}"
            )
        else:
            cursor.execute("BEGIN")
            cursor.executemany(
                f"INSERT INTO {FLOOR_TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
                f"ON CONFLICT (provider_id, model_id) DO UPDATE SET {updates}",
                rows,
            )
        raw_conn.commit()
        elapsed = time.perf_counter() - started
    finally:
        raw_conn.close()
    with engine.connect() as conn:
        loaded = conn.execute(sa.text(f"SELECT count(*) FROM {FLOOR_TABLE}")).scalar_one()
    assert loaded == len(rows), (loaded, len(rows))
    return elapsed


def drop_floor_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
