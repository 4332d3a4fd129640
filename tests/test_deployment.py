"""The PostgreSQL deployment end to end, as an operator runs it: dagster-webserver and dagster-daemon on a
DAGSTER_HOME holding deploy/postgres/dagster.yaml (Dagster's storage on one fresh database), the registry
on another, the demo data. The sync is launched and read back through GraphQL, the UI's own API, and the
daemon's alert sensor delivers the run's warning to a loopback webhook."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from dagster_graphql import DagsterGraphQLClient

from core_assets.defs.alerts import CHECK_WARNING_SENSOR
from core_assets.defs.automation import SYNC_SCHEDULE_NAME
from core_assets.defs.jobs import SYNC_JOB_NAME
from tests.conftest import postgres_database
from tests.support.webhook import WebhookReceiver

# dagster_graphql calls gql in a way gql deprecates; nothing to fix on our side.
pytestmark = [pytest.mark.postgres, pytest.mark.filterwarnings("ignore::DeprecationWarning:gql.*")]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REPOSITORY = {"repositoryLocationName": "core_assets", "repositoryName": "__repository__"}
EMPTY_VIEW = "SELECT * FROM model_registry WHERE 1 = 0\n"

RUN_CHECKS = """
query RunChecks($runId: ID!) {
  logsForRun(runId: $runId, limit: 10000) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on AssetCheckEvaluationEvent {
          evaluation { checkName assetKey { path } success severity description }
        }
      }
    }
  }
}
"""
INSTIGATORS = """
query Instigators($repo: RepositorySelector!) {
  schedulesOrError(repositorySelector: $repo) {
    ... on Schedules { results { name cronSchedule scheduleState { status } } }
  }
  sensorsOrError(repositorySelector: $repo) {
    ... on Sensors { results { name sensorState { status ticks(limit: 1) { status } } } }
  }
}
"""
LOCATION = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
RUNS = "{ runsOrError { ... on Runs { results { runId } } } }"


class Deployment:
    """The two long-running processes of the deployment, their logs and the webserver's GraphQL API."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.port = _free_port()
        self.processes: list[subprocess.Popen] = []

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.processes.append(
            subprocess.Popen(
                [str(BIN / name), *args, "-w", str(ROOT / "workspace.yaml")],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its code servers and run workers share its process group
            )
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(
            f"http://127.0.0.1:{self.port}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["data"]

    def wait(self, what: str, condition: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                assert process.poll() is None, (
                    f"{process.args[0]} exited while waiting for {what}\n{self.log_tail()}"
                )
            try:
                value = condition()
            except (httpx.HTTPError, KeyError, TypeError):
                value = None
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.log_tail()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dagster_storage_url() -> Iterator[str]:
    yield from postgres_database()


@pytest.fixture
def running(tmp_path, postgres_url, dagster_storage_url) -> Iterator[tuple[Deployment, WebhookReceiver]]:
    storage = sa.engine.make_url(dagster_storage_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "no_models.sql").write_text(EMPTY_VIEW)
    with WebhookReceiver() as webhook:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CORE_", "DAGSTER_"))},
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": storage.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(storage.port or 5432),
            "DAGSTER_PG_USER": storage.username or "postgres",
            "DAGSTER_PG_PASSWORD": storage.password or "",
            "DAGSTER_PG_DB": storage.database,
            "CORE_DATABASE_URL": postgres_url,
            "CORE_DEMO": "1",
            "CORE_SQL_DIR": str(sql_dir),
            "CORE_ALERT_WEBHOOK_URL": webhook.url,
            # No scheduled run may start while the test runs.
            "CORE_SYNC_CRON": "0 0 1 1 *",
        }
        deployment = Deployment(env, tmp_path)
        try:
            deployment.start("dagster-webserver", "-h", "127.0.0.1", "-p", str(deployment.port))
            deployment.wait(
                "the webserver",
                lambda: httpx.get(f"http://127.0.0.1:{deployment.port}/server_info", timeout=2).is_success,
                timeout=90,
            )
            # Started once the webserver has created the storage tables, so the two never race to.
            deployment.start("dagster-daemon", "run")
            yield deployment, webhook
        finally:
            deployment.stop()


def _check_results(deployment: Deployment, run_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    events = deployment.graphql(RUN_CHECKS, {"runId": run_id})["logsForRun"]["events"]
    return {
        ("/".join(e["evaluation"]["assetKey"]["path"]), e["evaluation"]["checkName"]): e["evaluation"]
        for e in events
        if e["__typename"] == "AssetCheckEvaluationEvent"
    }


def _sensor_has_ticked(deployment: Deployment, name: str) -> bool:
    sensors = deployment.graphql(INSTIGATORS, {"repo": REPOSITORY})["sensorsOrError"]["results"]
    return any(s["name"] == name and s["sensorState"]["ticks"] for s in sensors)


def test_sync_through_graphql_on_postgres_with_alert(running):
    """The job launched over GraphQL succeeds on PostgreSQL, its checks read back, and the daemon alerts."""
    deployment, webhook = running
    deployment.wait(
        "the code location",
        lambda: (
            deployment.graphql(LOCATION)["workspaceOrError"]["locationEntries"][0]["loadStatus"] == "LOADED"
        ),
        timeout=60,
    )
    instigators = deployment.graphql(INSTIGATORS, {"repo": REPOSITORY})
    schedules = {s["name"]: s for s in instigators["schedulesOrError"]["results"]}
    assert schedules[SYNC_SCHEDULE_NAME]["scheduleState"]["status"] == "RUNNING"
    assert all(s["sensorState"]["status"] == "RUNNING" for s in instigators["sensorsOrError"]["results"])
    # A run-status sensor's first tick only places its cursor; runs that end before it are not reported.
    deployment.wait(
        "the alert sensor's first tick",
        lambda: _sensor_has_ticked(deployment, CHECK_WARNING_SENSOR),
        timeout=60,
    )

    client = DagsterGraphQLClient("127.0.0.1", port_number=deployment.port)
    run_id = client.submit_job_execution(SYNC_JOB_NAME)
    status = deployment.wait(
        "the run to finish",
        lambda: (s := client.get_run_status(run_id).value) in {"SUCCESS", "FAILURE", "CANCELED"} and s,
        timeout=180,
    )
    assert status == "SUCCESS", deployment.log_tail()

    checks = _check_results(deployment, run_id)
    for key in [("model_registry", "registry_schema"), ("model_registry", "shrink_guard")]:
        assert checks[key]["success"], key
    assert all(
        checks[(f"raw_{p}_models", "fetch_succeeded")]["success"] for p in ["google", "groq", "ollama"]
    )
    empty = checks[("no_models", "not_empty")]
    assert not empty["success"] and empty["severity"] == "WARN"
    registry = sa.create_engine(deployment.env["CORE_DATABASE_URL"])
    with registry.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM model_registry")).scalar_one() > 500
    registry.dispose()

    # The sensor ticks every 30 s: the run's alert follows within one interval.
    messages = webhook.wait_for_messages(1, timeout=75)
    assert len(messages) == 1, deployment.log_tail()
    text = messages[0]["text"]
    assert run_id in text and "`no_models` › `not_empty`" in text and "the view is empty" in text
    # Nothing else ran: after a full sync the automation sensor finds nothing left to rebuild.
    assert [r["runId"] for r in deployment.graphql(RUNS)["runsOrError"]["results"]] == [run_id]
