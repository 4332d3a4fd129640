"""Issue 7, item 3 — crash safety: a `core-registry sync` process killed with SIGKILL while it writes the
registry leaves exactly the previous registry (or, once committed, exactly the next one), and the next
sync succeeds and produces what an uninterrupted sync would have.

The child stops at a named point of the sync (tests/support/sync_process.py patches it in, the package
has no test hook) and is killed there: after a snapshot is recorded, inside the write transaction after
the upsert, with every statement done but COMMIT not sent, and just after COMMIT. The slow cases kill
children at random moments, again and again. Both databases.
"""

from __future__ import annotations

import os
import random
import signal
import time
from contextlib import contextmanager

import pytest

from tests.support.sync import (
    change_upstream,
    child_environment,
    copy_sqlite,
    postgres_copy,
    registry_content,
    registry_state,
    run_sync,
)
from tests.support.sync_process import spawn_sync, wait_for

BEFORE_COMMIT = ("snapshots_recorded", "registry_upserted", "registry_before_commit")


@pytest.fixture(autouse=True)
def _offline_references(monkeypatch):
    monkeypatch.setenv("CORE_REFERENCES", "offline")


@contextmanager
def database_copy(url: str, tmp_path):
    if url.startswith("sqlite"):
        yield copy_sqlite(url, tmp_path / "control.db")
    else:
        with postgres_copy(url) as copy:
            yield copy


def expected_next(url: str, tmp_path) -> dict:
    """The registry content an uninterrupted sync would produce from the current state (on a copy)."""
    with database_copy(url, tmp_path) as control:
        assert run_sync(control).success
        return registry_content(control)


def kill(process) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    "db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
@pytest.mark.parametrize(
    "point",
    ["registry_before_commit", pytest.param("snapshots_recorded", marks=pytest.mark.slow),
     pytest.param("registry_upserted", marks=pytest.mark.slow),
     pytest.param("registry_committed", marks=pytest.mark.slow)],
)  # fmt: skip
def test_sigkill_during_the_registry_write(fake_providers, request, tmp_path, db, point):
    """Killed at the point, the registry is exactly the previous (or committed next) state; the next sync completes it."""
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url")
    ready, start, marker, log = (tmp_path / name for name in ("ready", "start", "paused", "child.log"))
    # The child starts up (imports, definitions) while the registry is built, then waits for `start`.
    child = spawn_sync(child_environment(fake_providers, url), log, pause_at=point, marker=str(marker),
                       ready_file=str(ready), start_file=str(start))  # fmt: skip
    try:
        assert run_sync(url).success
        change_upstream(fake_providers)
        previous = registry_state(url)
        following = expected_next(url, tmp_path)
        assert following != registry_content(url), "the change must make a difference"
        wait_for(ready, child, log)
        start.write_text("go")
        wait_for(marker, child, log)
    finally:
        kill(child)

    if point in BEFORE_COMMIT:
        assert registry_state(url) == previous
    else:
        assert registry_content(url) == following
    assert run_sync(url).success
    assert registry_content(url) == following


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_sigkill_at_random_moments(fake_providers, request, tmp_path, db):
    """Eight syncs killed at random moments each leave the previous or the next registry; the last sync completes."""
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url")
    assert run_sync(url).success
    change_upstream(fake_providers)
    before = registry_content(url)
    previous = registry_state(url)
    following = expected_next(url, tmp_path)
    rng = random.Random(7)
    for attempt in range(8):
        ready, start, log = tmp_path / f"ready{attempt}", tmp_path / f"start{attempt}", tmp_path / f"child{attempt}.log"
        child = spawn_sync(child_environment(fake_providers, url), log, ready_file=str(ready), start_file=str(start))
        wait_for(ready, child, log)
        start.write_text("go")
        time.sleep(rng.uniform(0.0, 2.5))
        if child.poll() is None:
            kill(child)
        content = registry_content(url)
        assert content in (before, following), f"attempt {attempt}: neither the previous nor the next registry"
        if content == before:
            assert registry_state(url) == previous
    assert run_sync(url).success
    assert registry_content(url) == following
