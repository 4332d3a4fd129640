"""Issue 7, item 4 — concurrency: syncs started at the same moment in separate `core-registry sync`
processes all succeed, with no lock or deadlock error reaching the user, and leave the same registry as
one sync would: no duplicate rows or price periods, no update lost. Both databases; CI runs two syncs
after an upstream change, the slow cases three syncs on a fresh database (migrations, first write, first
views and routing all racing), repeatedly.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from core_assets.db.engine import connect, write_transaction
from core_assets.db.tables import sync_runs
from tests.support.sync import (
    change_upstream,
    child_environment,
    copy_sqlite,
    postgres_copy,
    registry_content,
    run_sync,
)
from tests.support.sync_process import spawn_sync, wait_for

# What a user must never see from a sync that merely ran next to another one.
CONTENTION_ERRORS = ("database is locked", "deadlock", "could not serialize", "concurrently", "Traceback",
                     "UniqueViolation", "IntegrityError")  # fmt: skip


@pytest.fixture(autouse=True)
def _offline_references(monkeypatch):
    monkeypatch.setenv("CORE_REFERENCES", "offline")


def one_sync_result(url: str, tmp_path) -> dict:
    """The registry content one sync produces from the database's current state (on a copy)."""
    if url.startswith("sqlite"):
        control = copy_sqlite(url, tmp_path / "control.db")
        assert run_sync(control).success
        return registry_content(control)
    with postgres_copy(url) as control:
        assert run_sync(control).success
        return registry_content(control)


def spawn_waiting(fake, url: str, tmp_path, count: int, tag: str = "") -> list:
    """Start `count` sync processes that load everything, then wait for the start signal."""
    env = child_environment(fake, url)
    children = []
    for i in range(count):
        ready, log = tmp_path / f"ready{tag}-{i}", tmp_path / f"sync{tag}-{i}.log"
        children.append((spawn_sync(env, log, ready_file=str(ready), start_file=str(tmp_path / f"start{tag}")), log, ready))
    return children


def release_together(children: list, tmp_path, tag: str = "") -> None:
    """Start the waiting syncs at the same moment and require each to succeed cleanly."""
    for child, log, ready in children:
        wait_for(ready, child, log)
    (tmp_path / f"start{tag}").write_text("go")
    for child, log, _ in children:
        child.wait(timeout=180)
        output = log.read_text()
        assert child.returncode == 0, output
        assert "sync finished" in output
        assert not [e for e in CONTENTION_ERRORS if e in output], output


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_syncs_at_once_equal_one(fake_providers, request, tmp_path, db):
    """Two simultaneous syncs of a changed upstream leave exactly what one sync leaves."""
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url")
    children = spawn_waiting(fake_providers, url, tmp_path, 2)  # they start up while the registry is built
    assert run_sync(url).success
    change_upstream(fake_providers)
    expected = one_sync_result(url, tmp_path)
    release_together(children, tmp_path)
    assert registry_content(url) == expected


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("repeat", range(3))
def test_three_syncs_at_once_on_a_fresh_database(fake_providers, request, tmp_path, db, repeat):
    """Three simultaneous first syncs (migrations, writes, views, routing all racing) equal one sync."""
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url")
    children = spawn_waiting(fake_providers, url, tmp_path, 3, tag=str(repeat))
    expected = one_sync_result(url, tmp_path)
    release_together(children, tmp_path, tag=str(repeat))
    assert registry_content(url) == expected


def test_a_sqlite_writer_that_reads_first_waits_instead_of_failing(sqlite_url):
    """A write transaction holds SQLite's write lock from BEGIN: a second writer waits, none fails as locked."""
    engine = connect(sqlite_url)
    now = datetime.now(UTC)
    reading, other_done, errors = threading.Event(), threading.Event(), []

    def other_writer():
        reading.wait()
        try:
            with write_transaction(engine) as conn:
                conn.execute(sync_runs.insert().values(run_id="other", finished_at=now, summary={}))
        except sa.exc.DBAPIError as exc:
            errors.append(exc)
        other_done.set()

    thread = threading.Thread(target=other_writer)
    thread.start()
    with write_transaction(engine) as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(sync_runs)).scalar_one()
        reading.set()
        assert not other_done.wait(0.5), "the other writer got in between this one's read and write"
        conn.execute(sync_runs.insert().values(run_id="first", finished_at=now, summary={"read": before}))
    thread.join(timeout=30)
    assert errors == []
    with engine.connect() as conn:
        assert [r.run_id for r in conn.execute(sa.select(sync_runs).order_by(sync_runs.c.id))] == ["first", "other"]
