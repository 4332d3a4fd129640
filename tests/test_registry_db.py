"""The registry database layer: migrations, bulk upsert, lifecycle, price history, snapshots."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from core_assets.db.engine import connect, get_engine, upgrade
from core_assets.db.registry import write_registry
from core_assets.db.snapshots import record_fetch, snapshots_in_force
from core_assets.db.tables import model_price_history, model_registry, orchestrator_config, provider_snapshots

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def row(model_id: str, price: str | None = "0.001", provider: str = "groq", name: str | None = None, **extra):
    specs = {"input_cost_per_1k": Decimal(price) if price else None, "output_cost_per_1k": None,
             "provenance": {"input_cost_per_1k": "litellm"} if price else {}}
    return {
        "provider_id": provider, "model_id": model_id, "name": name or model_id, "is_free": False,
        "cost_per_1k": Decimal(price) if price else None, "provider_data": {"id": model_id},
        "ai_data": None, "specs": specs, "status": extra.get("status", "active"), "snapshot_id": 1,
    }


def registry(engine) -> dict[str, sa.Row]:
    with engine.connect() as conn:
        return {r.model_id: r for r in conn.execute(sa.select(model_registry))}


def history(engine, model_id: str) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(model_price_history).where(model_price_history.c.model_id == model_id)
            .order_by(model_price_history.c.id)
        ).all()


def test_migrations_are_idempotent_and_seed_the_active_table(database_url):
    """Upgrading twice is harmless and leaves one orchestrator_config row pointing at model_registry."""
    engine = connect(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(orchestrator_config.c.active_table_name)).scalars().all() == ["model_registry"]


def test_legacy_active_table_is_migrated(database_url):
    """A database left by the seed design with active_table_name = 'unified_models' is repaired."""
    engine = get_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orchestrator_config (id INTEGER PRIMARY KEY, "
                             "active_table_name VARCHAR(128) NOT NULL, updated_at TIMESTAMP)"))
        conn.execute(sa.text("INSERT INTO orchestrator_config VALUES (1, 'unified_models', NULL)"))
    connect(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(orchestrator_config.c.active_table_name)).scalar() == "model_registry"


def test_unchanged_rows_are_not_rewritten(database_url):
    """A second write of the same content changes no updated_at but moves last_seen_at."""
    engine = connect(database_url)
    first = write_registry(engine, [row("a"), row("b")], providers={"groq": T0}, now=T0)
    assert first.per_provider["groq"].new == 2
    later = T0 + timedelta(hours=6)
    second = write_registry(engine, [row("a"), row("b")], providers={"groq": later}, now=later)
    assert second.rows_written == 0 and second.per_provider["groq"].unchanged == 2
    rows = registry(engine)
    assert {r.updated_at.replace(tzinfo=UTC) for r in rows.values()} == {T0}
    assert {r.last_seen_at.replace(tzinfo=UTC) for r in rows.values()} == {later}


def test_changed_row_updates_and_keeps_first_seen(database_url):
    """A changed name rewrites the row, keeps first_seen_at and moves updated_at."""
    engine = connect(database_url)
    write_registry(engine, [row("a")], providers={"groq": T0}, now=T0)
    later = T0 + timedelta(days=1)
    result = write_registry(engine, [row("a", name="Model A")], providers={"groq": later}, now=later)
    assert result.per_provider["groq"].changed == 1
    a = registry(engine)["a"]
    assert a.name == "Model A"
    assert a.first_seen_at.replace(tzinfo=UTC) == T0 and a.updated_at.replace(tzinfo=UTC) == later


def test_removed_model_becomes_missing_and_returns(database_url):
    """A model absent from the provider's rows is marked missing, not deleted, and revives when listed."""
    engine = connect(database_url)
    write_registry(engine, [row("a"), row("b")], providers={"groq": T0}, now=T0)
    result = write_registry(engine, [row("a")], providers={"groq": T0}, now=T0 + timedelta(hours=1))
    assert result.per_provider["groq"].missing == 1
    assert registry(engine)["b"].status == "missing"
    write_registry(engine, [row("a"), row("b")], providers={"groq": T0}, now=T0 + timedelta(hours=2))
    assert registry(engine)["b"].status == "active"


def test_other_providers_are_untouched(database_url):
    """Rows of a provider that is not named in a write (its fetch failed) are neither changed nor missing."""
    engine = connect(database_url)
    write_registry(engine, [row("a"), row("m", provider="mistral")], providers={"groq": T0, "mistral": T0}, now=T0)
    before = registry(engine)["m"]
    write_registry(engine, [row("a")], providers={"groq": T0}, now=T0 + timedelta(hours=1))
    assert registry(engine)["m"] == before


def test_price_change_appends_history(database_url):
    """Each price change closes the open period and opens a new one with the new price."""
    engine = connect(database_url)
    write_registry(engine, [row("a", "0.001")], providers={"groq": T0}, now=T0)
    later = T0 + timedelta(days=2)
    result = write_registry(engine, [row("a", "0.0025")], providers={"groq": later}, now=later)
    assert result.per_provider["groq"].price_changes == 1
    periods = history(engine, "a")
    assert [p.input_cost_per_1k for p in periods] == [Decimal("0.001"), Decimal("0.0025")]
    assert periods[0].valid_to.replace(tzinfo=UTC) == later and periods[1].valid_to is None
    assert periods[1].source == "litellm"
    write_registry(engine, [row("a", "0.0025")], providers={"groq": later}, now=later + timedelta(hours=1))
    assert len(history(engine, "a")) == 2


def test_prices_round_trip_exactly(database_url):
    """NUMERIC prices come back as the exact Decimal that was written."""
    engine = connect(database_url)
    write_registry(engine, [row("a", "0.000012345678")], providers={"groq": T0}, now=T0)
    assert registry(engine)["a"].cost_per_1k == Decimal("0.000012345678")


def test_concurrent_writes_equal_one_write(database_url):
    """Two writers at once produce the same table as one: no duplicates, no lost history."""
    engine = connect(database_url)
    rows = [row(f"m{i}", f"0.00{i + 1}") for i in range(50)]
    errors: list[BaseException] = []

    def write():
        try:
            write_registry(engine, rows, providers={"groq": T0}, now=T0)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(registry(engine)) == 50
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(model_price_history)).scalar() == 50


def test_snapshot_outcomes_and_shrink_guard(database_url):
    """An identical payload is recorded as unchanged; a collapsed listing is suspect and not put in force."""
    engine = connect(database_url)
    kwargs = dict(http_status=200, reason=None, duration_ms=5, run_id="r", shrink_ratio=0.5)
    first = record_fetch(engine, provider="groq", outcome="ok", payload={"pages": [1]}, sha256="x",
                         model_count=10, **kwargs)
    assert first.outcome == "ok"
    write_registry(engine, [row(f"m{i}") for i in range(10)], providers={"groq": T0}, now=T0)
    same = record_fetch(engine, provider="groq", outcome="ok", payload={"pages": [1]}, sha256="x",
                        model_count=10, **kwargs)
    assert same.outcome == "unchanged"
    shrunk = record_fetch(engine, provider="groq", outcome="ok", payload={"pages": []}, sha256="y",
                          model_count=4, **kwargs)
    assert shrunk.outcome == "suspect" and "groq" in shrunk.reason
    in_force = snapshots_in_force(engine, ["groq"])["groq"]
    assert in_force.snapshot_id == first.snapshot_id and in_force.payload == {"pages": [1]}
    with engine.connect() as conn:
        outcomes = conn.execute(sa.select(provider_snapshots.c.outcome).order_by(provider_snapshots.c.id)).scalars()
        assert list(outcomes) == ["ok", "unchanged", "suspect"]
