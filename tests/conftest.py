"""Shared fixtures: a registry database per test, on SQLite and (where available) PostgreSQL."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from core_assets.db import engine as db_engine

pytest_plugins: list[str] = ["tests.support.fake_providers", "tests.support.fake_llm"]

POSTGRES_ADMIN_URL = os.environ.get("CORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("CORE_REQUIRE_POSTGRES", "") == "1"


def _postgres_available() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any reason the server cannot be used
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc.__class__.__name__}"


_PG_UNAVAILABLE = _postgres_available()


def isolate_environment(monkeypatch: pytest.MonkeyPatch, folder) -> None:
    """Remove the developer's keys, database and provider settings, and work in `folder`."""
    for name in list(os.environ):
        if name.startswith("CORE_") and name not in {"CORE_TEST_POSTGRES_URL", "CORE_REQUIRE_POSTGRES"}:
            monkeypatch.delenv(name)
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "MISTRAL_API_KEY", "GROQ_API_KEY", "OPENROUTER_API_KEY",
                 "OLLAMA_HOST", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(folder)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """No test sees the developer's keys, database or provider settings, and each works in its own folder."""
    isolate_environment(monkeypatch, tmp_path)
    yield
    db_engine.dispose_all()


def postgres_database():
    """Create a throwaway PostgreSQL database; yields its URL and drops it afterwards."""
    if _PG_UNAVAILABLE:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (CORE_REQUIRE_POSTGRES=1): {_PG_UNAVAILABLE}")
        pytest.skip(_PG_UNAVAILABLE)
    name = f"core_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        db_engine.dispose_all()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def postgres_url():
    yield from postgres_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """The same test on both databases."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        yield from postgres_database()
