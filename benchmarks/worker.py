"""One benchmark run in a fresh process: `python -m benchmarks.worker CONFIG.json RESULT.json`.

A fresh process per run keeps peak RSS a figure of that catalog size alone. The run executes the real
`model_registry_sync` job the way `core-registry sync` does (in-process, ephemeral instance, console
logging at ERROR) against the loopback provider server: a full sync into an empty registry, a no-op
re-sync, and an incremental sync after the server switches to the mutated catalog. Only job execution
is timed — not interpreter start, imports, loading the definitions or creating the schema.

The config names the scenarios to run, each with its registry database and extra environment (the
`llm` scenario points CORE_INFERENCER at the fake endpoint); the first scenario also measures the floors
and, when asked, the selector.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import httpx

from benchmarks import floors
from benchmarks.selection import bench_selector
from core_assets.db.engine import connect
from core_assets.definitions import defs as load_defs
from core_assets.defs.jobs import SYNC_JOB_NAME
from core_assets.settings import PROVIDERS

PHASES = ("full", "noop", "incremental")
LOGGING = {"console": {"config": {"log_level": "ERROR"}}}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key == dg.AssetKey(asset):
            return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return {}


def job_shape(result: dg.ExecuteInProcessResult) -> tuple[int, int]:
    """(steps that materialized assets, steps that only evaluated checks) of a run."""
    materializing = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION}
    checking = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}
    return len(materializing), len(checking - materializing)


def _step_ms(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    return {
        event.step_key: round(event.event_specific_data.duration_ms)
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS
    }


def run_sync(
    job: dg.JobDefinition, database_url: str, asset_selection: list[dg.AssetKey] | None = None
) -> tuple[float, dg.ExecuteInProcessResult]:
    run_config = {
        "resources": {"registry_db": {"config": {"url": database_url}}, "sources": {"config": {"demo": False}}},
        "loggers": LOGGING,
    }
    # Disposed at once: an instance left to the garbage collector closes its SQLite connection from
    # whichever thread happens to collect it, which SQLite refuses with a traceback on stderr.
    with dg.DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        result = job.execute_in_process(
            run_config=run_config, instance=instance, asset_selection=asset_selection, raise_on_error=False
        )
        elapsed = time.perf_counter() - started
    if not result.success:
        failure = result.get_run_failure_event()
        raise RuntimeError(f"sync failed: {failure.message if failure else 'see the run events'}")
    return elapsed, result


class Control:
    """The provider server's and the fake LLM's control endpoints."""

    def __init__(self, server: str, llm: str | None):
        self.server, self.llm = server, llm
        self.http = httpx.Client(timeout=30)

    def provider_catalog(self, variant: str) -> None:
        self.http.post(f"{self.server}/_control/use", params={"variant": variant}).raise_for_status()

    def phase(self, name: str) -> None:
        self.http.post(f"{self.server}/_control/phase", params={"name": name}).raise_for_status()

    def latency(self, seconds: float) -> None:
        self.http.post(f"{self.server}/_control/latency", params={"seconds": seconds}).raise_for_status()

    def llm_calls(self) -> int | None:
        if self.llm is None:
            return None
        return self.http.get(f"{self.llm}/_control/calls").json()["calls"]


def run_scenario(
    scenario: dict[str, Any], config: dict[str, Any], job: dg.JobDefinition, control: Control
) -> dict[str, Any]:
    os.environ.update(scenario["env"])
    url = scenario["database_url"]
    engine = connect(url)  # creates the schema: a deployment step, not part of a sync
    measured = scenario["name"] == "sync"
    out: dict[str, Any] = {"name": scenario["name"], "phases": {}}
    if measured:
        trivial = floors.trivial_job()
        floors.floor_a(trivial)  # the first run in a process pays Dagster's one-time costs
        out["floor_a_s"] = [floors.floor_a(trivial) for _ in range(config["floor_runs"])]
        out["rss_before_sync_mb"] = peak_rss_mb()

    control.provider_catalog("base")
    for phase in PHASES:
        if phase == "incremental":
            control.provider_catalog("mutated")
        control.phase(f"{scenario['name']}:{phase}")
        calls_before = control.llm_calls()
        elapsed, result = run_sync(job, url)
        calls_after = control.llm_calls()
        registry = _metadata(result, "model_registry")
        inferred = _metadata(result, "inferred_model_metadata")
        out["phases"][phase] = {
            "wall_s": elapsed,
            "rows_written": registry.get("rows_written"),
            "provider_summary": registry.get("provider_summary"),
            "llm_calls": inferred.get("llm_calls"),
            "llm_calls_served": None if calls_before is None else calls_after - calls_before,
            "steps_ms": _step_ms(result),
        }
        if phase == "full" and measured:
            out["peak_rss_mb"] = peak_rss_mb()
            rows = floors.registry_rows(engine)
            floors.prepare_floor_table(engine)
            floors.floor_b(engine, rows)  # warm the statement path once
            out["floor_b_s"] = [floors.floor_b(engine, rows) for _ in range(config["floor_runs"])]
            out["floor_rows"] = len(rows)
            floors.drop_floor_table(engine)
            del rows
            out["job_shape"] = job_shape(result)
            shaped = floors.shaped_job(*out["job_shape"])
            floors.floor_a(shaped)
            out["job_shape_floor_s"] = [floors.floor_a(shaped) for _ in range(config["floor_runs"])]
    if measured and config.get("http_latency_s"):
        # The fetch step alone, every answer delayed like a remote API's: overlapping provider spans show
        # the five fetched at once.
        control.latency(config["http_latency_s"])
        control.phase(f"{scenario['name']}:http")
        started = time.perf_counter()
        run_sync(job, url, asset_selection=[dg.AssetKey(f"raw_{p}_models") for p in PROVIDERS])
        out["http_probe_s"] = time.perf_counter() - started
        control.latency(0)
    if measured and config.get("selector_calls"):
        out["selector"] = bench_selector(url, config["selector_calls"])
    return out


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    control = Control(config["server"], config.get("llm"))
    job = load_defs().resolve_job_def(SYNC_JOB_NAME)
    results = [run_scenario(s, config, job, control) for s in config["scenarios"]]
    for scenario in results:
        if "floor_a_s" in scenario:
            scenario["floor_a_median_s"] = statistics.median(scenario["floor_a_s"])
            scenario["floor_b_median_s"] = statistics.median(scenario["floor_b_s"])
            scenario["job_shape_floor_median_s"] = statistics.median(scenario["job_shape_floor_s"])
    Path(sys.argv[2]).write_text(json.dumps({"scenarios": results, "final_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
