"""Provider snapshots (`raw_<provider>_models`) and `normalized_models`.

One step fetches every selected provider at once (threads), so five slow APIs cost the time of the
slowest. A provider whose fetch fails or is skipped is not materialized: its last good snapshot stays in
force, the freshness policy sees its age, and its `fetch_succeeded` check says why.
"""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from core_assets import settings
from core_assets.db.snapshots import record_fetch, snapshots_in_force, stores_payload_verbatim
from core_assets.defs.metadata import md_table, validation_result
from core_assets.defs.resources import DataSources, RegistryDatabase
from core_assets.ingest import normalize_snapshots
from core_assets.providers import FetchOutcome, fetch_provider
from core_assets.schemas import model_frame, validate

FETCH_CHECK = "fetch_succeeded"
NORMALIZED_SCHEMA_CHECK = "normalized_schema"
NORMALIZED = dg.AssetKey("normalized_models")

def raw_key(provider: str) -> dg.AssetKey:
    return dg.AssetKey(f"raw_{provider}_models")

RAW_KEYS = {raw_key(p): p for p in settings.PROVIDERS}

def _raw_out(provider: str) -> dg.AssetOut:
    return dg.AssetOut(
        key=raw_key(provider),
        group_name="providers",
        kinds={"python", "api"},
        dagster_type=dg.Nothing,
        is_required=False,
        description=(
            f"The {provider} list-models response in force: one row of `provider_snapshots` holding the "
            "untouched API answer (all pages), its sha256 and outcome. Materialized only when a fetch "
            "succeeds; a failed or skipped fetch leaves the previous snapshot in force."
        ),
    )

@dg.multi_asset(
    outs={
        **{f"raw_{p}_models": _raw_out(p) for p in settings.PROVIDERS},
        "normalized_models": dg.AssetOut(
            key=NORMALIZED,
            group_name="providers",
            kinds={"python", "pandas"},
            is_required=False,
            description=(
                "One row per (provider_id, model_id) from the snapshots in force, in common units (USD per "
                "1,000 tokens, Decimal), with the provider's raw item and the facts its API states."
            ),
        ),
    },
    internal_asset_deps={
        **{f"raw_{p}_models": set() for p in settings.PROVIDERS},
        "normalized_models": set(RAW_KEYS),
    },
    check_specs=[
        *(
            dg.AssetCheckSpec(FETCH_CHECK, asset=key, description="The last fetch of this provider succeeded.")
            for key in RAW_KEYS
        ),
        dg.AssetCheckSpec(
            NORMALIZED_SCHEMA_CHECK,
            asset=NORMALIZED,
            blocking=True,
            description="Unique key, known provider, non-negative prices, output ≤ context, free flag consistent.",
        ),
    ],
    can_subset=True,
    name="provider_ingest",
)
def provider_ingest(context: dg.AssetExecutionContext, registry_db: RegistryDatabase, sources: DataSources):
    engine = registry_db.engine()
    enabled = settings.enabled_providers()
    selected = [p for key, p in RAW_KEYS.items() if key in context.selected_asset_keys]
    outcomes: list[FetchOutcome] = []
    if selected:
        context.log.info(f"fetching {', '.join(selected)}{' (demo replay)' if sources.demo else ''}")
        with ThreadPoolExecutor(max_workers=len(selected)) as pool:
            outcomes = list(pool.map(lambda p: _fetch(p, enabled, sources.demo), selected))
        ratio = settings.shrink_ratio()
        for outcome in outcomes:
            yield from _record(context, engine, outcome, ratio)

    if NORMALIZED in context.selected_asset_keys:
        # What this run fetched and put in force need not be read back and normalized again — where the
        # database returns the payload exactly as written (not PostgreSQL: jsonb reorders keys, and the
        # inferencer's input hash follows key order). Otherwise the fetched copies go before the read.
        fetched = (
            {o.provider: (o.sha256, o.models) for o in outcomes if o.outcome == "ok"}
            if stores_payload_verbatim(engine)
            else {}
        )
        outcomes.clear()
        held = {provider: sha256 for provider, (sha256, _) in fetched.items()}
        batch = normalize_snapshots(snapshots_in_force(engine, enabled, held=held), fetched)
        frame = batch.frame()
        outcome = validate(model_frame(batch.rows))
        for provider, error in batch.errors.items():
            context.log.error(f"{provider}: {error}")
        yield dg.Output(
            frame,
            output_name="normalized_models",
            metadata={
                "dagster/row_count": len(frame),
                "rows_per_provider": dg.MetadataValue.json(batch.counts),
                "inconsistent_provider_facts": md_table(batch.inconsistencies),
                "preview": dg.MetadataValue.md(
                    frame[["provider_id", "model_id", "name"]].head(10).to_markdown(index=False)
                ),
            },
        )
        yield validation_result(NORMALIZED_SCHEMA_CHECK, NORMALIZED, outcome)

def _fetch(provider: str, enabled: list[str], demo: bool) -> FetchOutcome:
    if provider not in enabled:
        return FetchOutcome(provider, "skipped", reason="disabled by CORE_PROVIDERS")
    return fetch_provider(provider, demo=demo)

def _record(context, engine, outcome: FetchOutcome, shrink_ratio: float):
    key = raw_key(outcome.provider)
    recorded = None
    if outcome.outcome != "skipped":
        recorded = record_fetch(
            engine,
            provider=outcome.provider,
            outcome=outcome.outcome,
            payload=outcome.payload,
            sha256=outcome.sha256,
            http_status=outcome.http_status,
            model_count=len(outcome.models) if outcome.outcome == "ok" else None,
            model_ids=[m.model_id for m in outcome.models],
            reason=outcome.reason,
            duration_ms=outcome.duration_ms,
            run_id=context.run.run_id,
            shrink_ratio=shrink_ratio,
        )
    final = recorded.outcome if recorded else outcome.outcome
    reason = recorded.reason if recorded else outcome.reason
    metadata = {
        "provider": outcome.provider,
        "outcome": final,
        "models": len(outcome.models),
        "dagster/row_count": len(outcome.models),
        "http_requests": outcome.requests,
        "duration_ms": outcome.duration_ms or 0,
    }
    if reason:
        metadata["reason"] = reason
    if final in ("ok", "unchanged"):
        metadata.update({"sha256": outcome.sha256, "snapshot_id": recorded.snapshot_id,
                         "http_status": outcome.http_status or 0, "skipped_items": outcome.skipped_items})
        context.log.info(f"{outcome.provider}: {len(outcome.models)} models ({final})")
        yield dg.MaterializeResult(
            asset_key=key,
            metadata=metadata,
            check_results=[dg.AssetCheckResult(check_name=FETCH_CHECK, asset_key=key, passed=True, metadata=metadata)],
        )
        return
    # skipped (no key, disabled, Ollama not running) is a configuration state, not a failure.
    passed = final == "skipped"
    log = context.log.warning if passed else context.log.error
    log(f"{outcome.provider}: {final}: {reason}")
    yield dg.AssetCheckResult(
        check_name=FETCH_CHECK,
        asset_key=key,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{final}: {reason}",
        metadata=metadata,
    )

