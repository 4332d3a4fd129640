"""`core-registry sync`: run the real asset graph in-process and report progress and a summary.

The run goes to the Dagster instance of `DAGSTER_HOME` when it is set (so it shows in the UI that
shares it), to a throwaway instance otherwise.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any, TextIO

import dagster as dg

from core_assets import settings

PROGRESS_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
}


def _instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def _selection(defs: dg.Definitions, providers: list[str]) -> list[dg.AssetKey] | None:
    """Everything, except the snapshots of providers not asked for (their snapshots stay in force)."""
    if not providers:
        return None
    skipped = {dg.AssetKey(f"raw_{p}_models") for p in settings.PROVIDERS if p not in providers}
    return [key for key in defs.resolve_asset_graph().get_all_asset_keys() if key not in skipped]


def _metadata_value(entry) -> Any:
    return getattr(entry, "value", entry)


def _describe(event: dg.DagsterEvent) -> str | None:
    kind = event.event_type
    if kind == dg.DagsterEventType.STEP_START:
        # Only the fetch takes long enough to announce; every other step reports when it lands.
        return "  … fetching providers" if event.step_key == "provider_ingest" else None
    if kind == dg.DagsterEventType.STEP_FAILURE:
        error = event.step_failure_data.error
        return f"  ✗ {event.step_key} failed: {error.message.strip().splitlines()[0] if error else ''}"
    if kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
        mat = event.event_specific_data.materialization
        meta = mat.metadata
        rows = meta.get("dagster/row_count") or meta.get("models")
        extra = f" ({_metadata_value(rows)} rows)" if rows is not None else ""
        return f"  ✓ {mat.asset_key.to_user_string()}{extra}"
    if kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        check = event.event_specific_data
        if check.passed:
            return None
        severity = "warning" if check.severity == dg.AssetCheckSeverity.WARN else "FAILED"
        description = f": {check.description}" if check.description else ""
        return f"  ! check {check.asset_key.to_user_string()}:{check.check_name} {severity}{description}"
    return None


def _follow(instance: dg.DagsterInstance, run_id: str, done: threading.Event, out: TextIO) -> None:
    cursor = None
    while True:
        finished = done.is_set()
        try:
            conn = instance.get_records_for_run(run_id, cursor=cursor, of_type=PROGRESS_EVENTS)
        except Exception:  # the run may not be registered yet
            conn = None
        if conn is not None:
            cursor = conn.cursor
            for record in conn.records:
                line = _describe(record.event_log_entry.dagster_event)
                if line:
                    print(line, file=out, flush=True)
        if finished:
            return
        time.sleep(0.2)


def summary_rows(result: dg.ExecuteInProcessResult) -> list[dict[str, Any]]:
    """Per provider: outcome of the fetch and what changed in the registry."""
    fetch: dict[str, dict[str, Any]] = {}
    for check in result.get_asset_check_evaluations():
        if check.check_name == "fetch_succeeded":
            meta = {k: _metadata_value(v) for k, v in check.metadata.items()}
            fetch[meta.get("provider", check.asset_key.path[-1])] = meta
    changes: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key == dg.AssetKey("model_registry") and "provider_summary" in mat.metadata:
            changes = _metadata_value(mat.metadata["provider_summary"])
    rows = []
    for provider in settings.PROVIDERS:
        f, c = fetch.get(provider), changes.get(provider, {})
        if f is None and not c:
            continue
        outcome = f["outcome"] if f else "not fetched"
        rows.append({
            "provider": provider,
            "outcome": outcome,
            "fetched": c.get("fetched", f.get("models", 0) if f else 0),
            "new": c.get("new", 0),
            "changed": c.get("changed", 0),
            "missing": c.get("missing", 0),
            "note": (f or {}).get("reason", "") if outcome not in ("ok", "unchanged") else "",
        })
    return rows


def coverage_line(result: dg.ExecuteInProcessResult) -> str | None:
    """Shares of active models with a price, a context window and each capability known."""
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key == dg.AssetKey("model_specs") and "coverage" in mat.metadata:
            figures = _metadata_value(mat.metadata["coverage"])
            shares = ", ".join(f"{k} {v:.0%}" for k, v in figures.items() if k != "models")
            return f"coverage of {figures.get('models', 0)} active models: {shares}"
    return None


def format_summary(rows: list[dict[str, Any]]) -> str:
    header = ["provider", "outcome", "fetched", "new", "changed", "missing", "note"]
    table = [header] + [[str(r[h]) for h in header] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table)


def run_sync(*, demo: bool, providers: list[str], out: TextIO) -> int:
    from core_assets.definitions import defs as load_defs
    from core_assets.defs.jobs import SYNC_JOB_NAME

    settings.enabled_providers()  # a bad CORE_PROVIDERS is a clear error before anything runs
    defs = load_defs()
    job = defs.resolve_job_def(SYNC_JOB_NAME)
    run_id = str(uuid.uuid4())
    # Disposed when the sync ends: an instance left to the garbage collector closes its SQLite connection
    # from whichever thread happens to collect it, which SQLite refuses with a traceback on stderr.
    with _instance() as instance:
        where = settings.database_url()
        print(f"sync{' (demo data)' if demo else ''} → {where}", file=out, flush=True)
        done = threading.Event()
        follower = threading.Thread(target=_follow, args=(instance, run_id, done, out), daemon=True)
        follower.start()
        started = time.monotonic()
        try:
            result = job.execute_in_process(
                run_config={
                    "resources": {"sources": {"config": {"demo": demo}}},
                    "loggers": {"console": {"config": {"log_level": "ERROR"}}},
                },
                instance=instance,
                asset_selection=_selection(defs, providers),
                raise_on_error=False,
                run_id=run_id,
                tags={"core/trigger": "cli"},
            )
        finally:
            done.set()
            follower.join()
        print(format_summary(summary_rows(result)), file=out)
        coverage = coverage_line(result)
        if coverage:
            print(coverage, file=out)
        elapsed = time.monotonic() - started
        if result.success:
            print(f"sync finished in {elapsed:.1f}s (run {run_id})", file=out)
            return 0
        failure = result.get_run_failure_event()
        reason = failure.message if failure else "see the run's events"
        print(f"sync FAILED after {elapsed:.1f}s (run {run_id}): {reason}", file=out)
        return 1
