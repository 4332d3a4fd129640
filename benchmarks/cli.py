"""`python -m benchmarks`: run the benchmark and write results/latest.json and results/latest.md.

For each catalog size the parent process generates the synthetic catalog, serves it (and the fake LLM
endpoint) over loopback HTTP, and starts one worker process per run, each on fresh registry databases
(a SQLite file; a PostgreSQL database created for the run and dropped after it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks import report
from benchmarks.catalog import generate
from benchmarks.servers import FakeLLM, ProviderServer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
INCREMENTAL_SHARE = 0.01
SMOKE_SIZE = 200
# The environment every worker starts from: no variable of the developer's leaks into a run.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--sizes", default="700,10000,100000", help="comma list of catalog sizes (models)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size and database (figures are medians)")
    parser.add_argument("--postgres", action=argparse.BooleanOptionalAction, default=None,
                        help="also run on PostgreSQL (default: when the server is reachable)")
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True, help="run on SQLite")
    parser.add_argument("--postgres-url", default=os.environ.get("CORE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
                        help="admin URL; each run creates and drops its own database")
    parser.add_argument("--floor-runs", type=int, default=3, help="floor measurements per run (median)")
    parser.add_argument("--selector-calls", type=int, default=20000, help="selections timed per size")
    parser.add_argument("--http-latency-ms", type=float, default=50,
                        help="latency of every answer in the HTTP concurrency probe (first run of each size)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="folder for latest.json/latest.md")
    parser.add_argument("--smoke", action="store_true",
                        help=f"CI size: {SMOKE_SIZE} models, one run, SQLite only, targets not enforced")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.runs, args.postgres, args.floor_runs, args.selector_calls = (
            str(SMOKE_SIZE), 1, False, 2, 2000
        )
    args.sizes = [int(size) for size in str(args.sizes).split(",")]
    return args


def postgres_reachable(url: str) -> bool:
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.SQLAlchemyError:
        return False


@contextmanager
def database(kind: str, args: argparse.Namespace, folder: Path):
    """A fresh, empty registry database for one scenario; dropped afterwards."""
    if kind == "sqlite":
        path = folder / f"registry-{uuid.uuid4().hex[:8]}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = f"core_bench_{uuid.uuid4().hex[:12]}"
    admin_url = args.postgres_url
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def worker_env(server: ProviderServer) -> dict[str, str]:
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(server.environment())
    # Offline references: the bundled catalog copies, as a machine without internet uses them.
    env.update({"CORE_REFERENCES": "offline", "PYTHONPATH": str(ROOT)})
    return env


def run_worker(config: dict[str, Any], env: dict[str, str], folder: Path) -> dict[str, Any]:
    config_path = folder / f"config-{uuid.uuid4().hex[:8]}.json"
    result_path = config_path.with_name(config_path.stem.replace("config", "result") + ".json")
    config_path.write_text(json.dumps(config))
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", str(config_path), str(result_path)],
        cwd=folder, env=env, capture_output=True, text=True,
    )
    if process.returncode != 0:
        raise RuntimeError(f"benchmark worker failed:\n{process.stderr[-4000:]}")
    return json.loads(result_path.read_text())


def run_size(n: int, databases: list[str], args: argparse.Namespace, server: ProviderServer, llm: FakeLLM,
             folder: Path) -> list[dict[str, Any]]:
    started = time.monotonic()
    base = generate(n)
    mutated, changed = base.mutated(INCREMENTAL_SHARE)
    server.load(base, mutated)
    print(f"{n:,} models {base.counts()}: catalog ready in {time.monotonic() - started:.1f}s", flush=True)
    env = worker_env(server)
    outcomes = []
    for kind in databases:
        runs = []
        for index in range(args.runs):
            first = index == 0
            with ExitStack() as stack:
                scenarios = [{"name": "sync", "database_url": stack.enter_context(database(kind, args, folder)),
                              "env": {}}]
                if first:
                    scenarios.append({"name": "llm", "database_url": stack.enter_context(database(kind, args, folder)),
                                      "env": llm.environment()})
                config = {
                    "server": server.origin,
                    "llm": llm.base_url.removesuffix("/v1"),
                    "scenarios": scenarios,
                    "floor_runs": args.floor_runs,
                    "selector_calls": args.selector_calls if first else 0,
                    "http_latency_s": args.http_latency_ms / 1000 if first else 0,
                }
                server.take_requests()
                result = run_worker(config, env, folder)
                result["requests"] = [vars(r) for r in server.take_requests()]
            runs.append(result)
            sync = result["scenarios"][0]
            print(
                f"  {kind} run {index + 1}/{args.runs}: full {sync['phases']['full']['wall_s']:.2f}s, "
                f"no-op {sync['phases']['noop']['wall_s']:.2f}s, "
                f"incremental {sync['phases']['incremental']['wall_s']:.2f}s, "
                f"peak RSS {sync['peak_rss_mb']:.0f} MB",
                flush=True,
            )
        outcomes.append(summarize(n, kind, base.counts(), changed, runs, args))
    return outcomes


def summarize(n: int, kind: str, counts: dict[str, int], changed: list, runs: list[dict[str, Any]],
              args: argparse.Namespace) -> dict:
    """Medians over runs; ratios are taken per run (each against the floors of its own process)."""
    syncs = [run["scenarios"][0] for run in runs]
    wall = {phase: [s["phases"][phase]["wall_s"] for s in syncs] for phase in ("full", "noop", "incremental")}
    floor_a = [s["floor_a_median_s"] for s in syncs]
    floor_b = [s["floor_b_median_s"] for s in syncs]
    llm = next((s for s in runs[0]["scenarios"] if s["name"] == "llm"), None)
    summary = {
        "models": n,
        "database": kind,
        "models_per_provider": counts,
        "runs": len(runs),
        "floor_a_s": statistics.median(floor_a),
        "floor_b_s": statistics.median(floor_b),
        "full_sync_s": statistics.median(wall["full"]),
        "full_ratio": statistics.median(w / (a + b) for w, a, b in zip(wall["full"], floor_a, floor_b, strict=True)),
        "noop_sync_s": statistics.median(wall["noop"]),
        "noop_ratio": statistics.median(w / a for w, a in zip(wall["noop"], floor_a, strict=True)),
        "noop_rows_rewritten": [s["phases"]["noop"]["rows_written"] for s in syncs],
        "job_shape": syncs[0]["job_shape"],
        "job_shape_floor_s": statistics.median(s["job_shape_floor_median_s"] for s in syncs),
        "incremental_sync_s": statistics.median(wall["incremental"]),
        "incremental_changed": len(changed),
        "incremental_rows_rewritten": [s["phases"]["incremental"]["rows_written"] for s in syncs],
        "peak_rss_mb": max(s["peak_rss_mb"] for s in syncs),
        "rss_before_sync_mb": statistics.median(s["rss_before_sync_mb"] for s in syncs),
        "llm": None if llm is None else {
            phase: {"calls": llm["phases"][phase]["llm_calls_served"], "wall_s": llm["phases"][phase]["wall_s"],
                    "rows_written": llm["phases"][phase]["rows_written"]}
            for phase in ("full", "noop", "incremental")
        },
        "selector": syncs[0].get("selector"),
        "http": report.http_concurrency(runs[0]["requests"], "sync:http"),
        "http_full_sync": report.http_concurrency(runs[0]["requests"], "sync:full"),
        "http_latency_ms": args.http_latency_ms,
        "steps_ms": {phase: syncs[0]["phases"][phase]["steps_ms"] for phase in ("full", "noop", "incremental")},
        "raw": runs,
    }
    for run in runs:  # the request log is summarized above; at 100,000 models it would be megabytes of JSON
        run.pop("requests", None)
    return summary


def machine(args: argparse.Namespace, postgres_version: str | None) -> dict[str, Any]:
    import sqlite3

    import dagster

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal"))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024),
        "os": platform.platform(),
        "python": platform.python_version(),
        "dagster": dagster.__version__,
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m benchmarks", shlex.join(sys.argv[1:])]).strip(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.postgres is None:
        args.postgres = postgres_reachable(args.postgres_url)
    elif args.postgres and not postgres_reachable(args.postgres_url):
        print(f"PostgreSQL not reachable at {args.postgres_url}", file=sys.stderr)
        return 2
    postgres_version = None
    if args.postgres:
        engine = sa.create_engine(args.postgres_url)
        with engine.connect() as conn:
            postgres_version = conn.execute(sa.text("SHOW server_version")).scalar_one()
        engine.dispose()
    databases = [kind for kind, wanted in (("sqlite", args.sqlite), ("postgresql", args.postgres)) if wanted]
    started = time.monotonic()
    server, llm = ProviderServer().start(), FakeLLM().start()
    try:
        with tempfile.TemporaryDirectory(prefix="core-bench-") as folder:
            results = [r for n in args.sizes for r in run_size(n, databases, args, server, llm, Path(folder))]
    finally:
        server.stop()
        llm.stop()
    document = {
        "machine": machine(args, postgres_version),
        "smoke": args.smoke,
        "duration_s": round(time.monotonic() - started, 1),
        "results": results,
        "targets": report.targets(results),
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "latest.json").write_text(json.dumps(document, indent=1, default=str) + "\n")
    (args.output / "latest.md").write_text(report.markdown(document))
    print(report.markdown(document))
    return 0
