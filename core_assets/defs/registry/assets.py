"""`model_registry`: the table every model lookup reads, with its lifecycle and price history."""

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from core_assets import settings
from core_assets.db.registry import CONTENT_COLUMNS, write_registry
from core_assets.db.snapshots import latest_attempts, utcnow
from core_assets.db.tables import model_registry as registry_table
from core_assets.defs.metadata import md_table, validation_result
from core_assets.defs.resources import RegistryDatabase
from core_assets.schemas import model_frame, validate

REGISTRY = dg.AssetKey("model_registry")
REGISTRY_SCHEMA_CHECK = "registry_schema"
SHRINK_GUARD_CHECK = "shrink_guard"

@dg.asset(
    key=REGISTRY,
    group_name="registry",
    kinds={"sql", "table"},
    ins={"model_specs": dg.AssetIn("model_specs")},
)
def model_registry(context: dg.AssetExecutionContext, registry_db: RegistryDatabase, model_specs: pd.DataFrame):
    """The single source of truth: one row per (provider_id, model_id) ever seen, upserted from
    `model_specs`. Models gone from a successful fetch become `missing` (never deleted); every price
    change opens a new period in `model_price_history`."""
    engine = registry_db.engine()
    providers = dict(model_specs.attrs.get("confirmed_at", {}))
    rows = model_specs[["provider_id", "model_id", "snapshot_id", *CONTENT_COLUMNS]].to_dict("records")
    result = write_registry(engine, rows, providers=providers, now=utcnow(), run_id=context.run.run_id)
    summary = pd.DataFrame(
        [{"provider": p, **vars(c)} for p, c in result.per_provider.items()],
        columns=["provider", "fetched", "new", "changed", "unchanged", "missing", "price_changes"],
    )
    with engine.connect() as conn:
        counts = dict(
            conn.execute(sa.select(registry_table.c.status, sa.func.count()).group_by(registry_table.c.status)).all()
        )
    context.log.info(f"registry: {result.rows_written} rows written; {counts}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(counts.values()),
            "dagster/table_name": f"{engine.dialect.name}: model_registry",
            "rows_by_status": dg.MetadataValue.json(counts),
            "rows_written": result.rows_written,
            "per_provider": md_table(summary),
            "new_models": md_table(result.new_models),
            "price_changes": md_table(result.price_changes),
            "newly_missing": md_table(result.newly_missing),
            # For programs (the CLI's summary); the table above is the same for people.
            "provider_summary": dg.MetadataValue.json({p: vars(c) for p, c in result.per_provider.items()}),
        }
    )

@dg.asset_check(asset=REGISTRY, name=REGISTRY_SCHEMA_CHECK, blocking=True,
                description="The stored registry keeps the contract: valid status, key, prices, limits, free flags.")
def registry_schema(registry_db: RegistryDatabase) -> dg.AssetCheckResult:
    """Re-reads the table from the database, so it also catches rows written by anything else."""
    reg = registry_table.c
    query = sa.select(reg.provider_id, reg.model_id, reg.is_free, reg.cost_per_1k, reg.specs, reg.status)
    with registry_db.engine().connect() as conn:
        # Flattened as the rows stream in: 100,000 parsed specs documents held at once cost half a GB.
        frame = model_frame(row._mapping for row in conn.execution_options(yield_per=5000).execute(query))
    return validation_result(REGISTRY_SCHEMA_CHECK, REGISTRY, validate(frame))

@dg.asset_check(asset=REGISTRY, name=SHRINK_GUARD_CHECK, blocking=True,
                description="No provider's latest fetch was held back for listing far fewer models than before.")
def shrink_guard(registry_db: RegistryDatabase) -> dg.AssetCheckResult:
    """Fails while any provider's most recent answer is `suspect` (see CORE_SHRINK_GUARD_RATIO); that
    provider's rows were left as they were and nothing of it was marked missing."""
    attempts = latest_attempts(registry_db.engine(), list(settings.PROVIDERS))
    suspect = [a for a in attempts.values() if a["outcome"] == "suspect"]
    return dg.AssetCheckResult(
        passed=not suspect,
        description="; ".join(a["error"] or a["provider"] for a in suspect) or None,
        metadata={
            "suspect_providers": ", ".join(a["provider"] for a in suspect) or "none",
            "latest_attempts": md_table(
                [{k: a[k] for k in ("provider", "outcome", "model_count", "fetched_at", "error")}
                 for a in attempts.values()]
            ),
        },
    )
