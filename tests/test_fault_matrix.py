"""Issue 7, item 1 — the fault matrix: every provider against every way its list API can fail.

Two levels. `fetch_provider` meets every (provider, fault) cell: it must fail (or skip, for an Ollama that
cannot be reached) with a one-line, key-free reason, within a bounded number of requests and a bounded
time. The real `model_registry_sync` job then meets the faults several providers at a time, next to a
healthy provider whose change must land: the run succeeds, each failing provider's rows stay exactly as
they were, its `fetch_succeeded` check and the run's alert say why in one line. CI runs a schedule of
five rounds that covers every fault once; the slow marker runs the full cyclic matrix (every provider ×
every fault through the job).
"""

from __future__ import annotations

import socket
import time

import dagster as dg
import pytest

from core_assets import alerts
from core_assets.defs.alerts import failed_checks
from core_assets.providers import fetch_provider
from core_assets.settings import PROVIDERS, HttpLimits
from tests.conftest import isolate_environment
from tests.support.fake_providers import FakeProviders
from tests.support.sync import (
    check_evaluations,
    copy_sqlite,
    drop_one_model,
    materialized,
    registry_rows,
    run_sync,
)

# Limits of the job-level rounds (the variables of SPEC §6), small so that a round costs seconds.
TIME_BUDGET = 1.5
JOB_HTTP = {
    "CORE_HTTP_TIMEOUT": "0.5",
    "CORE_HTTP_MAX_ATTEMPTS": "3",
    "CORE_HTTP_MAX_SECONDS": str(TIME_BUDGET),
    "CORE_HTTP_MAX_RETRY_WAIT": "0.05",
    "CORE_HTTP_MAX_BODY_BYTES": str(4 << 20),
}
# fetch_provider's own, tighter still: sixty-odd cells, ten of which wait for a timeout.
QUICK = HttpLimits(timeout=0.2, max_attempts=3, max_total_seconds=0.6, max_retry_wait=0.05, max_body_bytes=4 << 20)
MAX_REQUESTS = 3
SLACK = 1.0  # seconds of scheduling noise allowed on top of a time budget (far below an unbounded wait)

PAGED = {"google", "openrouter"}
FAULT_KINDS = [
    "401", "403", "400-bad-key", "429-retry-after-beyond-budget", "429-retried-until-attempts-run-out", "500",
    "502", "503", "connection-refused", "read-timeout", "trickling-body", "reset-mid-body", "html-with-200",
    "truncated-json", "wrong-shape", "50MB-body", "pagination-loop",
]  # fmt: skip
CELLS = [(p, k) for p in PROVIDERS for k in FAULT_KINDS if k != "pagination-loop" or p in PAGED]


def fault(provider: str, kind: str) -> dict:
    """The fake server's fault for a kind, in the provider's own shape (Gemini's 429 carries retryDelay)."""
    google = provider == "google"
    return {
        "401": dict(kind="status", status=401),
        "403": dict(kind="status", status=403),
        "400-bad-key": dict(kind="status", status=400),
        "429-retry-after-beyond-budget": dict(kind="status", status=429, **(
            {"retry_delay": "37s"} if google else {"retry_after": "60"})),
        "429-retried-until-attempts-run-out": dict(kind="status", status=429, **(
            {"retry_delay": "0.01s"} if google else {"retry_after": "0"})),
        "500": dict(kind="status", status=500),
        "502": dict(kind="status", status=502),
        "503": dict(kind="status", status=503),
        "read-timeout": dict(kind="timeout", seconds=5),
        "trickling-body": dict(kind="trickle", interval=0.05),
        "reset-mid-body": dict(kind="reset"),
        "html-with-200": dict(kind="html"),
        "truncated-json": dict(kind="truncated"),
        "wrong-shape": dict(kind="wrong_shape"),
        "50MB-body": dict(kind="oversized", size=50 << 20, declare_length=False),
        "pagination-loop": dict(kind="loop"),
    }[kind]  # fmt: skip


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def inject(fake: FakeProviders, monkeypatch, provider: str, kind: str) -> None:
    if kind == "connection-refused":
        variable = "OLLAMA_HOST" if provider == "ollama" else f"CORE_{provider.upper()}_BASE_URL"
        monkeypatch.setenv(variable, closed_port_url())
    else:
        fake.fail(provider, **fault(provider, kind))


def expected_outcome(provider: str, kind: str) -> str:
    # An Ollama that never answers is not running: skipped, like an absent local server (SPEC §6).
    return "skipped" if provider == "ollama" and kind in ("connection-refused", "read-timeout") else "failed"


@pytest.fixture(autouse=True)
def _paged_openrouter(fake_providers):
    """OpenRouter pages (200 a page) as it does for large accounts, so that its pagination loop is real."""
    fake_providers.page_size["openrouter"] = 200


# ------------------------------------------------------------------------------------------ fetch level


@pytest.mark.parametrize(("provider", "kind"), CELLS, ids=[f"{p}-{k}" for p, k in CELLS])
def test_every_fault_fails_the_fetch_with_a_bounded_one_line_reason(fake_providers, monkeypatch, provider, kind):
    """Each cell ends failed (or skipped) with a one-line, key-free reason, within 3 requests and the time budget."""
    inject(fake_providers, monkeypatch, provider, kind)
    started = time.monotonic()
    outcome = fetch_provider(provider, limits=QUICK)
    elapsed = time.monotonic() - started
    assert outcome.outcome == expected_outcome(provider, kind), outcome.reason
    assert outcome.models == []
    assert outcome.reason and "\n" not in outcome.reason and len(outcome.reason) <= 300
    assert not any(key in outcome.reason for key in fake_providers.keys.values())
    assert outcome.requests <= MAX_REQUESTS
    assert len(fake_providers.requests_to(provider)) <= MAX_REQUESTS
    assert elapsed < QUICK.max_total_seconds + SLACK


def test_a_trickling_body_is_cut_at_the_time_budget(fake_providers):
    """A body that arrives one byte at a time, each within the read timeout, still ends at the budget."""
    fake_providers.fail("groq", "trickle", interval=0.02)
    limits = HttpLimits(timeout=5, max_attempts=5, max_total_seconds=0.5, max_retry_wait=0.05)
    started = time.monotonic()
    outcome = fetch_provider("groq", limits=limits)
    assert time.monotonic() - started < 0.5 + SLACK
    assert outcome.reason == "groq models: the answer did not complete within the time budget of 0.5s"
    assert outcome.requests == 1


def test_timeouts_never_outlast_the_time_budget(fake_providers):
    """Many attempts with a long timeout are cut short by CORE_HTTP_MAX_SECONDS, the last attempt included."""
    fake_providers.fail("mistral", "timeout", seconds=5)
    limits = HttpLimits(timeout=0.4, max_attempts=10, max_total_seconds=1.0, max_retry_wait=0.05)
    started = time.monotonic()
    outcome = fetch_provider("mistral", limits=limits)
    assert time.monotonic() - started < 1.0 + SLACK
    assert outcome.outcome == "failed" and outcome.requests < 10
    assert outcome.reason.startswith("mistral models: timed out after ")


# -------------------------------------------------------------------------------------------- job level

# Which fault each provider meets in a round; None = healthy (one of its models is removed upstream, and
# the registry must follow). The five CI rounds cover every fault once and leave each provider healthy once.
CI_ROUNDS = [
    {"google": "400-bad-key", "mistral": "401", "openrouter": "pagination-loop",
     "groq": "429-retry-after-beyond-budget", "ollama": None},
    {"google": "pagination-loop", "mistral": "429-retried-until-attempts-run-out", "openrouter": "403",
     "groq": None, "ollama": "500"},
    {"google": "429-retried-until-attempts-run-out", "mistral": None, "openrouter": "502", "groq": "503",
     "ollama": "connection-refused"},
    {"google": "read-timeout", "mistral": "trickling-body", "openrouter": None, "groq": "reset-mid-body",
     "ollama": "html-with-200"},
    {"google": None, "mistral": "truncated-json", "openrouter": "wrong-shape", "groq": "50MB-body",
     "ollama": "403"},
]  # fmt: skip


def full_rounds() -> list[dict[str, str | None]]:
    """Every provider meets every fault once: a cycle of the faults with a healthy slot every fifth place,
    read by the five providers at five consecutive offsets, so that each round has a healthy provider."""
    cycle: list[str | None] = []
    for i, kind in enumerate(FAULT_KINDS):
        if i % 4 == 0:
            cycle.append(None)
        cycle.append(kind)
    rounds = []
    for r in range(len(cycle)):
        assignment = {p: cycle[(r + i) % len(cycle)] for i, p in enumerate(PROVIDERS)}
        rounds.append({p: (k if k != "pagination-loop" or p in PAGED else None) for p, k in assignment.items()})
    return rounds


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> str:
    """A SQLite registry after one healthy sync against the fake providers (copied by each round)."""
    folder = tmp_path_factory.mktemp("baseline")
    fake = FakeProviders().start()
    fake.page_size["openrouter"] = 200
    with pytest.MonkeyPatch.context() as mp:
        isolate_environment(mp, folder)
        for name, value in {**fake.environment(), "CORE_REFERENCES": "offline"}.items():
            mp.setenv(name, value)
        url = f"sqlite:///{folder / 'registry.db'}"
        try:
            assert run_sync(url).success
        finally:
            fake.stop()
    return url


def run_round(assignment: dict[str, str | None], baseline: str, fake: FakeProviders, monkeypatch, tmp_path):
    """Copy the baseline, inject the round's faults, sync, and check every provider's promise."""
    for name, value in {**JOB_HTTP, "CORE_REFERENCES": "offline"}.items():
        monkeypatch.setenv(name, value)
    url = copy_sqlite(baseline, tmp_path / "registry.db")
    before = {p: registry_rows(url, p) for p in PROVIDERS}
    dropped = {p: drop_one_model(fake, p) for p, kind in assignment.items() if kind is None}
    for provider, kind in assignment.items():
        if kind:
            inject(fake, monkeypatch, provider, kind)

    instance = dg.DagsterInstance.ephemeral()
    result = run_sync(url, instance=instance)
    assert result.success, "a provider's fault must not fail the sync"
    evaluations, done = check_evaluations(result), materialized(result)
    report = alerts.RunReport(result.run_id, result.job_def.name, failed=False,
                              checks=failed_checks(instance, result.run_id))
    alert = alerts.build_message(report)["text"]
    assert not any(key in alert for key in fake.keys.values())

    for provider, kind in assignment.items():
        asset = f"raw_{provider}_models"
        check = evaluations[(asset, "fetch_succeeded")]
        metadata = {k: getattr(v, "value", v) for k, v in check.metadata.items()}
        if kind is None:
            assert check.passed and asset in done, check.description
            assert registry_rows(url, provider)[dropped[provider]]["status"] == "missing"
            continue
        where = f"{provider} under {kind}"
        assert registry_rows(url, provider) == before[provider], f"{where}: its rows changed"
        assert asset not in done, where
        outcome = expected_outcome(provider, kind)
        assert check.passed == (outcome == "skipped"), where
        assert check.description.startswith(f"{outcome}: ") and "\n" not in check.description, where
        assert metadata["http_requests"] <= MAX_REQUESTS, where
        assert metadata["duration_ms"] <= (TIME_BUDGET + SLACK) * 1000, where
        if outcome == "failed":
            assert f"`{asset}` › `fetch_succeeded`: failed: " in alert and f"provider: {provider}" in alert, where


@pytest.mark.parametrize("assignment", CI_ROUNDS, ids=[f"round{i + 1}" for i in range(len(CI_ROUNDS))])
def test_faults_through_the_sync(baseline, fake_providers, monkeypatch, tmp_path, assignment):
    """The sync succeeds; failing providers keep their rows and say why in the check and the alert; the healthy one syncs."""
    run_round(assignment, baseline, fake_providers, monkeypatch, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", full_rounds(), ids=[f"cycle{i + 1}" for i in range(len(full_rounds()))])
def test_full_fault_matrix_through_the_sync(baseline, fake_providers, monkeypatch, tmp_path, assignment):
    """Every provider × every fault through the real job (slow): same promises as the CI rounds."""
    run_round(assignment, baseline, fake_providers, monkeypatch, tmp_path)


def test_the_full_matrix_covers_every_cell():
    """The slow schedule puts every applicable (provider, fault) cell in a round that has a healthy provider."""
    rounds = full_rounds()
    covered = {(p, k) for r in rounds for p, k in r.items() if k}
    assert covered == set(CELLS)
    assert all(None in r.values() for r in rounds)
    assert {k for r in CI_ROUNDS for k in r.values() if k} == set(FAULT_KINDS)
