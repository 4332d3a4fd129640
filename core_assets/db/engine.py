"""Engines for the registry database and the schema upgrade that every entry point runs first."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine, make_url

from core_assets.records import map_strings
from core_assets.settings import ConfigError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every process that migrates or syncs.
ADVISORY_LOCK_MIGRATE = 0x636F7265_0001
ADVISORY_LOCK_SYNC = 0x636F7265_0002
ADVISORY_LOCK_VIEWS = 0x636F7265_0003
ADVISORY_LOCK_ROUTING = 0x636F7265_0004

# PostgreSQL cannot store U+0000 in jsonb (nor in text), yet JSON and the providers allow it. Every JSON
# document is therefore stored with NUL written as JSON_ESCAPE + "0" and JSON_ESCAPE itself doubled, on
# both databases alike; reading undoes it, so the round trip is exact. JSON_ESCAPE is the first
# private-use code point, which has no meaning of its own: a document holding neither character (every
# real one so far) is stored exactly as it is.
JSON_ESCAPE = "\ue000"
_ESCAPED = re.compile("\ue000([\ue0000])")

_engines: dict[str, Engine] = {}
_upgraded: set[str] = set()
_lock = threading.Lock()


def json_default(value):
    if isinstance(value, Decimal):
        # Prices are exact Decimals in code; JSON has one number type. A float's shortest repr
        # reproduces every price of up to 15 significant digits exactly.
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value) -> str:
    return json.dumps(value, default=json_default, ensure_ascii=False, separators=(",", ":"))


def _escape(text: str) -> str:
    return text.replace(JSON_ESCAPE, JSON_ESCAPE * 2).replace("\x00", JSON_ESCAPE + "0")


def _unescape(text: str) -> str:
    return _ESCAPED.sub(lambda m: "\x00" if m.group(1) == "0" else JSON_ESCAPE, text)


def needs_escape(text: str) -> bool:
    """Whether the JSON text of a document holds NUL or JSON_ESCAPE, which `store_json` must escape."""
    # Two substring tests: several times faster than one regular expression on documents of many MB.
    return "\\u0000" in text or JSON_ESCAPE in text


def store_json(value: Any) -> str:
    """The text a JSON column of the registry database holds for `value` (the engines' serializer)."""
    text = dumps(value)
    if needs_escape(text):
        text = dumps(map_strings(value, _escape))
    return text


def load_json(text: str | bytes) -> Any:
    """`value` back from what `store_json` wrote (the engines' deserializer)."""
    value = json.loads(text)
    escaped = JSON_ESCAPE if isinstance(text, str) else JSON_ESCAPE.encode()
    return map_strings(value, _unescape) if escaped in text else value


@contextmanager
def write_transaction(engine: Engine, *, advisory_lock: int | None = None) -> Iterator[sa.Connection]:
    """A transaction that writes. On SQLite it takes the write lock at BEGIN (BEGIN IMMEDIATE): a
    transaction that reads before it writes otherwise fails at once with "database is locked" when
    another process committed in between, instead of waiting for the lock. On PostgreSQL the writers
    that name the same `advisory_lock` run one at a time (the lock is held until commit)."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.info["begin_sql"] = "BEGIN IMMEDIATE"
        with conn.begin():
            if advisory_lock is not None and conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_lock})
            yield conn


def normalize_url(url: str) -> str:
    """Accept the URL spellings people paste (postgres://, postgresql://) and pick the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"CORE_DATABASE_URL is not a database URL: {exc}") from None
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith(("sqlite", "postgresql")):
        raise ConfigError(f"CORE_DATABASE_URL: unsupported database {parsed.drivername!r} (use sqlite or postgresql)")
    return parsed.render_as_string(hide_password=False)


def _on_sqlite_connect(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the selector, the CLI) work while a sync writes; the busy timeout makes a
    # second writer wait for the first instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def get_engine(url: str) -> Engine:
    url = normalize_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            _engines[url] = engine
        return engine


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # The pysqlite driver's own transaction handling is switched off so that BEGIN IMMEDIATE
        # (see db.locks) really starts the transaction.
        engine = sa.create_engine(
            url,
            json_serializer=store_json,
            json_deserializer=load_json,
            connect_args={"isolation_level": None, "timeout": 60},
        )
        sa.event.listen(engine, "connect", _on_sqlite_connect)

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql(conn.info.pop("begin_sql", "BEGIN"))

        return engine
    return sa.create_engine(url, json_serializer=store_json, json_deserializer=load_json, pool_pre_ping=True)


def alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Apply every pending migration. Safe to call from several processes at once."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_MIGRATE})
            try:
                command.upgrade(alembic_config(conn), "head")
                conn.commit()
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_MIGRATE})
                conn.commit()
        else:
            conn.info["begin_sql"] = "BEGIN IMMEDIATE"
            command.upgrade(alembic_config(conn), "head")
            conn.commit()


def connect(url: str) -> Engine:
    """The engine for `url`, with the schema brought up to date once per process."""
    engine = get_engine(url)
    key = str(engine.url)
    if key not in _upgraded:
        try:
            upgrade(engine)
        except sa.exc.OperationalError as exc:
            raise ConfigError(f"cannot open the registry database: {exc.orig}") from None
        _upgraded.add(key)
    return engine


def dispose_all() -> None:
    """Forget every engine (tests drop databases between cases)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _upgraded.clear()
