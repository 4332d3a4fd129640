"""Issue 7, item 2 — shrink and churn: a provider whose successful answer would retire most of its catalog
(a fraction of it listed, nothing listed, or every model under a new id) is held back by the shrink guard:
its answer is kept as a `suspect` snapshot, nothing of it is marked missing, the blocking `shrink_guard`
check fails naming it, and the other providers still sync. A genuine partial change still goes through.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from core_assets.db.engine import connect
from core_assets.db.registry import write_registry
from core_assets.db.snapshots import record_fetch
from core_assets.db.tables import provider_snapshots
from tests.support.sync import check_evaluations, drop_one_model, registry_rows, run_sync

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _offline_references(monkeypatch):
    monkeypatch.setenv("CORE_REFERENCES", "offline")


def keep_fraction(fake, provider: str, share: float) -> None:
    items = fake.items(provider)
    fake.set_items(provider, items[: int(len(items) * share)])


def rename_all(fake, provider: str) -> None:
    """Every model under a new id, the count unchanged (a catalog swapped for another account's)."""
    for item in fake.items(provider):
        item["id"] = f"{item['id']}-renamed"


SCENARIOS = {
    "a-tenth-listed": lambda fake: keep_fraction(fake, "openrouter", 0.1),
    "nothing-listed": lambda fake: fake.fail("groq", "empty"),
    "every-id-new": lambda fake: rename_all(fake, "groq"),
}
SUSPECT = {"a-tenth-listed": "openrouter", "nothing-listed": "groq", "every-id-new": "groq"}


def suspect_snapshots(url: str, provider: str) -> int:
    with connect(url).connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(
                provider_snapshots.c.provider == provider, provider_snapshots.c.outcome == "suspect"
            )
        ).scalar_one()


@pytest.mark.parametrize(
    ("scenario", "db"),
    # A shrunken listing on both databases is test_pipeline's test_shrink_guard_blocks_and_marks_nothing_missing.
    [pytest.param("a-tenth-listed", "sqlite", marks=pytest.mark.slow), ("nothing-listed", "sqlite"),
     ("every-id-new", "sqlite"), pytest.param("every-id-new", "postgresql", marks=pytest.mark.postgres)],
)  # fmt: skip
def test_a_collapsed_or_churned_catalog_is_held_back(fake_providers, request, scenario, db):
    """The guard fails naming the provider; its rows stay as they were; another provider's change lands."""
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url")
    assert run_sync(url).success
    provider = SUSPECT[scenario]
    before = registry_rows(url, provider)
    other = "mistral"
    dropped = drop_one_model(fake_providers, other)
    SCENARIOS[scenario](fake_providers)

    result = run_sync(url)
    assert not result.success, "the blocking shrink_guard check must stop the run"
    guard = check_evaluations(result)[("model_registry", "shrink_guard")]
    assert not guard.passed and guard.description.startswith(f"{provider} listed ")
    assert "kept the previous snapshot (shrink guard, threshold 50%)" in guard.description
    assert registry_rows(url, provider) == before
    assert {r["status"] for r in registry_rows(url, provider).values()} <= {"active", "deprecated"}
    assert registry_rows(url, other)[dropped]["status"] == "missing"
    assert suspect_snapshots(url, provider) == 1


def test_the_guard_clears_when_the_catalog_comes_back(fake_providers, sqlite_url):
    """After a renamed catalog is restored upstream, the next sync passes the guard and changes nothing."""
    assert run_sync(sqlite_url).success
    before = registry_rows(sqlite_url, "groq")
    original = [dict(item) for item in fake_providers.items("groq")]
    rename_all(fake_providers, "groq")
    assert not run_sync(sqlite_url).success
    fake_providers.set_items("groq", original)
    result = run_sync(sqlite_url)
    assert result.success and check_evaluations(result)[("model_registry", "shrink_guard")].passed
    after = registry_rows(sqlite_url, "groq")
    # Confirmed upstream again, so last_seen_at moves; nothing else does.
    assert {k: {**r, "last_seen_at": None} for k, r in after.items()} == {
        k: {**r, "last_seen_at": None} for k, r in before.items()
    }
    assert all(after[k]["last_seen_at"] > before[k]["last_seen_at"] for k in before)


def row(model_id: str) -> dict:
    return {"provider_id": "groq", "model_id": model_id, "snapshot_id": None, "name": model_id, "is_free": False,
            "cost_per_1k": None, "provider_data": {}, "ai_data": None, "specs": {"provenance": {}}, "status": "active"}  # fmt: skip


@pytest.mark.parametrize(
    ("listed", "outcome"),
    [
        ([f"m{i}" for i in range(10)], "ok"),  # the same catalog
        ([f"m{i}" for i in range(5)] + [f"n{i}" for i in range(5)], "ok"),  # half renamed: a real change
        ([f"m{i}" for i in range(4)] + [f"n{i}" for i in range(6)], "suspect"),  # most renamed
        ([f"n{i}" for i in range(10)], "suspect"),  # all renamed
        ([f"m{i}" for i in range(10)] + [f"n{i}" for i in range(50)], "ok"),  # grown
        ([f"m{i}" for i in range(4)], "suspect"),  # shrunk
        ([], "suspect"),
    ],
    ids=["same", "half-renamed", "most-renamed", "all-renamed", "grown", "shrunk", "empty"],
)
def test_guard_threshold_counts_the_models_kept(sqlite_url, listed, outcome):
    """The guard holds back an answer keeping fewer than half of the active ids, and lets the rest through."""
    engine = connect(sqlite_url)
    write_registry(engine, [row(f"m{i}") for i in range(10)], providers={"groq": T0}, now=T0)
    recorded = record_fetch(
        engine, provider="groq", outcome="ok", payload={"pages": listed}, sha256=str(len(listed)) + "".join(listed)[:40], http_status=200,
        model_count=len(listed), model_ids=listed, reason=None, duration_ms=1, run_id="r", shrink_ratio=0.5,
    )  # fmt: skip
    assert recorded.outcome == outcome
    assert (recorded.reason is None) == (outcome == "ok")
