"""Custom tables (SPEC §5): each `sql/<name>.sql` holds one read-only SELECT (PostgreSQL dialect) that
becomes the view `<name>`; a `sql/<name>.yaml` filter file compiles to the same kind of SELECT.

Everything a file says is parsed with sqlglot and checked before any of it reaches the database, and the
database only ever runs SQL regenerated from the checked syntax tree — never the file's text — so
comments, odd quoting or tokenizer tricks cannot smuggle a second statement past the checks. No Dagster here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlglot
import yaml
from sqlalchemy.engine import Engine
from sqlglot import exp

from core_assets import settings
from core_assets.db.engine import ADVISORY_LOCK_VIEWS, write_transaction
from core_assets.db.tables import CORE_TABLES, REGISTRY_TABLE

NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]*")
# PostgreSQL truncates identifiers longer than this (NAMEDATALEN - 1).
MAX_NAME_LENGTH = 63
MAX_FILE_BYTES = 100_000

# Core tables a view may read; they are written by the registry asset (price history) or are data
# themselves. Every other core table (configuration, logs, caches, raw snapshots) stays private.
READABLE_CORE_TABLES = {
    REGISTRY_TABLE: REGISTRY_TABLE,
    "model_price_history": REGISTRY_TABLE,
    "model_routing": "model_routing",
}

# Asset names the pipeline itself uses: a custom table with one of these names would clash in Dagster.
PIPELINE_ASSET_NAMES = frozenset(
    {"normalized_models", "inferred_model_metadata", "model_specs", "model_discrepancies"}
)
PIPELINE_ASSET_PATTERN = re.compile(r"(raw|ref)_[a-z0-9_]+_models")

# PostgreSQL's reserved key words (documentation, appendix C): unusable as a plain table name.
SQL_RESERVED_WORDS = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate
    collation column concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user default deferrable desc distinct do else end
    except false fetch for foreign freeze from full grant group having ilike in initially inner intersect into
    is isnull join lateral leading left like limit localtime localtimestamp natural not notnull null offset on
    only or order outer overlaps placing primary references returning right select session_user similar some
    symmetric system_user table tablesample then to trailing true union unique user using variadic verbose
    when where window with""".split()  # noqa: SIM905 (a block of words reads better than 100 quoted strings)
)
# SQLite's pragma_<name> table functions read the database's internals (file paths, internal schemas).
SYSTEM_PREFIXES = ("pg_", "sqlite_", "pragma_")
SYSTEM_NAMES = frozenset({"information_schema"})

# Statements and clauses that write, lock, change settings or leave the database, wherever they appear.
FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = (
    exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.TruncateTable,
    exp.Copy, exp.Into, exp.Lock, exp.Command, exp.Set, exp.Pragma, exp.Attach, exp.Detach, exp.Grant,
    exp.Revoke, exp.Use, exp.Transaction, exp.Commit, exp.Rollback, exp.LoadData, exp.Cache, exp.Uncache,
    exp.Kill, exp.Analyze, exp.Describe, exp.Show, exp.Refresh, exp.Declare, exp.Export, exp.Execute,
    exp.Comment, exp.Summarize,
)  # fmt: skip

# Functions with side effects or access beyond the registry (files, other servers, settings, sequences,
# sleeping, server signals), on PostgreSQL and SQLite.
FORBIDDEN_FUNCTIONS = frozenset(
    {"set_config", "current_setting", "nextval", "setval", "currval", "lastval", "load_extension", "readfile",
     "writefile", "fts3_tokenizer"}
)  # fmt: skip
FORBIDDEN_FUNCTION_PREFIXES = (
    "pg_", "lo_", "dblink", "txid_", "query_to_", "table_to_", "schema_to_", "database_to_", "cursor_to_",
    "sqlite_", "pragma_", "binary_upgrade_",
)  # fmt: skip

FILTER_KEYS = (
    "description",
    "providers",
    "free_only",
    "min_context",
    "capabilities",
    "max_cost",
    "include_deprecated",
)


class CustomTableError(ValueError):
    """A custom table file that is refused; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{display_path(self.path)}: {reason}")


def display_path(path: Path) -> str:
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


@dataclass(frozen=True)
class CustomTable:
    """One validated custom table: the view `name`, defined by the SELECT `sql` (PostgreSQL dialect)."""

    name: str
    path: Path
    sql: str
    reads: tuple[str, ...]
    tree: exp.Query = field(repr=False, compare=False)
    description: str = ""

    @property
    def code_version(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:12]

    def sql_for(self, dialect: str) -> str:
        """The SELECT for `dialect` ("postgresql" or "sqlite"), regenerated from the checked tree and
        checked again as that dialect reads it, so that what runs is what was checked even where a
        translation goes wrong. Raises CustomTableError."""
        target = "postgres" if dialect == "postgresql" else dialect
        try:
            sql = self.tree.sql(dialect=target, comments=False, unsupported_level=sqlglot.ErrorLevel.RAISE)
            again = parse_select(sql, path=self.path, dialect=target)
        except (sqlglot.errors.SqlglotError, CustomTableError) as exc:
            reason = exc.reason if isinstance(exc, CustomTableError) else _parse_error_text(exc)
            raise CustomTableError(self.path, f"the query cannot be written for {dialect} faithfully: {reason}") from None
        if tables_read(again, path=self.path) != self.reads:
            raise CustomTableError(
                self.path, f"the query cannot be written for {dialect} faithfully: it would read other tables"
            )
        return sql

    @property
    def upstream_assets(self) -> list[str]:
        """Asset keys this view depends on: the registry and the other custom tables it reads."""
        return sorted({READABLE_CORE_TABLES.get(name, name) for name in self.reads})


@dataclass
class Discovery:
    """What a folder of custom table files holds: the valid tables in dependency order, and the refusals."""

    tables: list[CustomTable]
    errors: list[CustomTableError]

    def dependents(self, name: str) -> list[CustomTable]:
        """Every valid table that reads `name`, directly or through other views, in dependency order."""
        affected = {name}
        found = []
        for table in self.tables:
            if affected.intersection(table.reads):
                affected.add(table.name)
                found.append(table)
        return found


# --------------------------------------------------------------------------------------------- names


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a custom table's name, or None when it can."""
    if not NAME_PATTERN.fullmatch(name):
        return (
            f"the name {name!r} is not a plain identifier (lower-case letters, digits and underscores, "
            "not starting with a digit)"
        )
    if len(name) > MAX_NAME_LENGTH:
        return f"the name {name!r} is longer than {MAX_NAME_LENGTH} characters"
    if name in CORE_TABLES:
        return f"the name {name!r} is a core table of the registry"
    if name in PIPELINE_ASSET_NAMES or PIPELINE_ASSET_PATTERN.fullmatch(name):
        return f"the name {name!r} is reserved for the pipeline's own assets"
    if name.startswith(SYSTEM_PREFIXES) or name in SYSTEM_NAMES:
        return f"the name {name!r} is reserved for the database's system catalog"
    if name in SQL_RESERVED_WORDS:
        return f"the name {name!r} is a reserved SQL key word"
    return None


# ----------------------------------------------------------------------------------------- the SELECT


def _parse_error_text(exc: sqlglot.errors.SqlglotError) -> str:
    details = getattr(exc, "errors", None)
    if details:
        first = details[0]
        return f"line {first.get('line')}, column {first.get('col')}: {first.get('description')}"
    # sqlglot underlines the offending token with terminal escape codes; keep the message plain.
    return re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines()[0]


def _first_word(text: str) -> str | None:
    try:
        tokens = sqlglot.tokenize(text, read="postgres")
    except sqlglot.errors.SqlglotError:
        return None
    return tokens[0].text.upper() if tokens else None


def parse_select(text: str, *, path: Path, dialect: str = "postgres") -> exp.Query:
    """Parse `text` as exactly one read-only query, or raise CustomTableError saying why not."""
    try:
        statements = [
            s
            for s in sqlglot.parse(text, read=dialect)
            if s is not None and not isinstance(s, exp.Semicolon)
        ]
    except sqlglot.errors.SqlglotError as exc:
        first = _first_word(text)
        if first and first not in {"SELECT", "WITH", "("}:
            raise CustomTableError(path, f"expected a SELECT statement, found {first} …") from None
        raise CustomTableError(
            path, f"not a valid SELECT (PostgreSQL dialect): {_parse_error_text(exc)}"
        ) from None
    if not statements:
        raise CustomTableError(path, "the file holds no SQL statement")
    if len(statements) > 1:
        raise CustomTableError(
            path, f"expected exactly one SELECT statement, found {len(statements)} statements"
        )
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise CustomTableError(path, f"expected a SELECT statement, found {_first_word(text)} …")
    for node in tree.walk():
        if isinstance(node, FORBIDDEN_NODES):
            raise CustomTableError(
                path, f"only reading is allowed: the query contains {_statement_kind(node)}"
            )
        if isinstance(node, exp.Func):
            function = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if function in FORBIDDEN_FUNCTIONS or function.startswith(FORBIDDEN_FUNCTION_PREFIXES):
                raise CustomTableError(path, f"the function {function}() is not allowed in a custom table")
    return tree


def _statement_kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return f"a {str(node.this).upper()} command"
    if isinstance(node, exp.Into):
        return "SELECT … INTO (which creates a table)"
    if isinstance(node, exp.Lock):
        return "a locking clause (FOR UPDATE / FOR SHARE)"
    return f"a {node.key.upper()} statement"


def tables_read(tree: exp.Query, *, path: Path, custom_names: Iterable[str] = ()) -> tuple[str, ...]:
    """The tables and views `tree` reads (CTE names excluded), after refusing anything it must not read."""
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    # A CTE named like a real table would hide that table's reads from these checks.
    protected = set(CORE_TABLES) | set(custom_names)
    for cte in ctes:
        if cte in protected:
            raise CustomTableError(path, f"the CTE name {cte!r} shadows a table; choose another name")
    reads = set()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table function such as generate_series(); its function was checked above
        name = table.name
        if table.args.get("db") or table.args.get("catalog"):
            raise CustomTableError(
                path, f"schema-qualified names are not allowed ({table.sql(dialect='postgres')})"
            )
        if name in ctes:
            continue
        if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
            raise CustomTableError(path, f"the query reads {name!r}, which is not a plain table name")
        if name.startswith(SYSTEM_PREFIXES) or name in SYSTEM_NAMES:
            raise CustomTableError(path, f"the query reads the system catalog ({name})")
        if name in CORE_TABLES and name not in READABLE_CORE_TABLES:
            raise CustomTableError(path, f"the query reads {name}, an internal table of the registry")
        reads.add(name)
    return tuple(sorted(reads))


def leading_comment(text: str) -> str:
    """The `--` comment lines at the top of a file: the custom table's description."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        lines.append(stripped[2:].strip())
    return " ".join(line for line in lines if line)


# -------------------------------------------------------------------------------------- filter files


def compile_filter(spec: Any, *, path: Path) -> tuple[str, str]:
    """Compile a filter file's mapping into (SELECT over model_registry, description).

    Every value is checked for its type before it is written into the SQL, which then goes through the
    same parser and checks as a hand-written file."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise CustomTableError(path, "a filter file must be a mapping of filter names to values")
    unknown = sorted(set(spec) - set(FILTER_KEYS))
    if unknown:
        raise CustomTableError(
            path, f"unknown filter key(s) {', '.join(map(str, unknown))}; known: {', '.join(FILTER_KEYS)}"
        )

    def fail(key: str, expected: str):
        raise CustomTableError(path, f"{key} must be {expected}, got {spec[key]!r}")

    def flag(key: str) -> bool:
        value = spec.get(key, False)
        if not isinstance(value, bool):
            fail(key, "true or false")
        return value

    def names(key: str, allowed: Sequence[str] | None) -> list[str]:
        value = spec.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(
            isinstance(v, str) and NAME_PATTERN.fullmatch(v) for v in value
        ):
            fail(key, "a list of plain names")
        if allowed is not None and (bad := [v for v in value if v not in allowed]):
            raise CustomTableError(path, f"{key}: unknown {', '.join(bad)}; known: {', '.join(allowed)}")
        return value

    conditions = [
        "status = 'active'" if not flag("include_deprecated") else "status IN ('active', 'deprecated')"
    ]
    if providers := names("providers", settings.PROVIDERS):
        conditions.append(f"provider_id IN ({', '.join(repr(p) for p in providers)})")
    if flag("free_only"):
        conditions.append("is_free")
    if "min_context" in spec:
        value = spec["min_context"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            fail("min_context", "a whole number of tokens")
        conditions.append(f"CAST(specs ->> 'context_window' AS BIGINT) >= {value}")
    for capability in names("capabilities", None):
        # JSON true reads back as 'true' on PostgreSQL and as 1 on SQLite; both cast to true. Null
        # (unknown) stays null and never passes the filter.
        conditions.append(f"CAST(specs -> 'capabilities' ->> '{capability}' AS BOOLEAN)")
    if "max_cost" in spec:
        value = spec["max_cost"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            fail("max_cost", "a non-negative price in USD per 1k input tokens")
        # A free model costs nothing at the margin; an unknown price never passes.
        conditions.append(f"(is_free OR cost_per_1k <= {format(Decimal(str(value)), 'f')})")
    description = spec.get("description") or ""
    if not isinstance(description, str):
        fail("description", "text")
    sql = f"SELECT *\nFROM {REGISTRY_TABLE}\nWHERE " + "\n  AND ".join(conditions)
    return sql, description


# ------------------------------------------------------------------------------------------ discovery


def _read(path: Path) -> str:
    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise CustomTableError(path, f"the file is larger than {MAX_FILE_BYTES:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CustomTableError(path, "the file is not UTF-8 text") from None


def load_file(path: Path, *, custom_names: Iterable[str] = ()) -> CustomTable:
    """Validate one `.sql` or `.yaml` file into a CustomTable; raises CustomTableError."""
    name = path.stem
    if problem := name_problem(name):
        raise CustomTableError(path, problem)
    text = _read(path)
    if path.suffix == ".sql":
        sql, description = text.strip(), leading_comment(text)
    else:
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CustomTableError(path, f"not valid YAML: {str(exc).splitlines()[0]}") from None
        sql, description = compile_filter(spec, path=path)
    tree = parse_select(sql, path=path)
    reads = tables_read(tree, path=path, custom_names=custom_names)
    return CustomTable(name=name, path=path, sql=sql, reads=reads, description=description, tree=tree)


def discover(directory: Path | None = None, *, existing: Iterable[str] | None = None) -> Discovery:
    """Load every custom table file in `directory` (default: CORE_SQL_DIR or the project's sql/).

    `existing`, when given, names the tables and views in the database: a file reading anything that is
    neither there nor another custom table is refused. Without it (at code-location load, which must not
    need the database) that check happens when the view is created."""
    directory = settings.sql_dir() if directory is None else Path(directory)
    files = (
        sorted(
            p
            for p in directory.glob("*")
            # Hidden files are editor backups and lock files, not tables.
            if p.is_file() and p.suffix in {".sql", ".yaml", ".yml"} and not p.name.startswith(".")
        )
        if directory.is_dir()
        else []
    )
    by_name: dict[str, list[Path]] = {}
    for path in files:
        by_name.setdefault(path.stem, []).append(path)

    errors: list[CustomTableError] = []
    loaded: dict[str, CustomTable] = {}
    for name, paths in by_name.items():
        if len(paths) > 1:
            errors.append(
                CustomTableError(
                    paths[0], f"{' and '.join(p.name for p in paths)} both define {name!r}; keep one"
                )
            )
            continue
        try:
            loaded[name] = load_file(paths[0], custom_names=by_name)
        except CustomTableError as exc:
            errors.append(exc)

    if existing is not None:
        known = set(existing) | set(by_name) | set(READABLE_CORE_TABLES)
        for name, table in list(loaded.items()):
            if unknown := [r for r in table.reads if r not in known]:
                errors.append(
                    CustomTableError(table.path, f"reads {', '.join(unknown)}, which does not exist")
                )
                del loaded[name]

    ordered, cyclic = _dependency_order(loaded)
    for table in cyclic:
        errors.append(
            CustomTableError(table.path, f"is part of a dependency cycle ({_cycle(table.name, loaded)})")
        )
    return Discovery(tables=ordered, errors=sorted(errors, key=lambda e: e.path.name))


def _dependency_order(tables: dict[str, CustomTable]) -> tuple[list[CustomTable], list[CustomTable]]:
    """(tables in an order where each comes after the custom tables it reads, tables caught in a cycle)."""
    pending = {name: {r for r in t.reads if r in tables} for name, t in tables.items()}
    ordered: list[CustomTable] = []
    while True:
        ready = sorted(name for name, needs in pending.items() if not needs)
        if not ready:
            break
        for name in ready:
            ordered.append(tables[name])
            del pending[name]
        for needs in pending.values():
            needs.difference_update(ready)
    return ordered, [tables[name] for name in sorted(pending)]


def _cycle(start: str, tables: dict[str, CustomTable]) -> str:
    path, name = [start], start
    while True:
        name = next(r for r in tables[name].reads if r in tables and _reaches(r, start, tables))
        path.append(name)
        if name == start:
            return " → ".join(path)


def _reaches(source: str, target: str, tables: dict[str, CustomTable]) -> bool:
    seen, stack = set(), [source]
    while stack:
        name = stack.pop()
        if name == target:
            return True
        if name in seen or name not in tables:
            continue
        seen.add(name)
        stack.extend(tables[name].reads)
    return False


# ------------------------------------------------------------------------------------- the database


def relations(engine: Engine) -> dict[str, str]:
    """Every table and view in the registry database: name → "table" | "view"."""
    inspector = sa.inspect(engine)
    found = dict.fromkeys(inspector.get_table_names(), "table")
    found.update(dict.fromkeys(inspector.get_view_names(), "view"))
    return found


@dataclass(frozen=True)
class ViewInfo:
    name: str
    columns: list[tuple[str, str]]
    row_count: int
    sql: str


def create_view(engine: Engine, table: CustomTable, dependents: Sequence[CustomTable] = ()) -> ViewInfo:
    """(Re)create the view for `table` in one transaction and describe it; raises CustomTableError.

    `dependents` are the custom tables built on this one: PostgreSQL refuses to drop a view that others
    read, so when the columns change they are dropped and recreated in the same transaction."""
    existing = relations(engine)
    if existing.get(table.name) == "table":
        raise CustomTableError(
            table.path,
            f"a table named {table.name!r} already exists in the database; a custom table is a view — rename the file",
        )
    if missing := [r for r in table.reads if r not in existing]:
        raise CustomTableError(
            table.path,
            f"reads {', '.join(missing)}, which does not exist in the database (materialize it first)",
        )
    dialect = engine.dialect.name
    quote = engine.dialect.identifier_preparer.quote_identifier
    sql = table.sql_for(dialect)
    try:
        # Two syncs may rebuild the same views at once; PostgreSQL's catalog does not take concurrent
        # DDL on one view gracefully ("tuple concurrently updated", duplicate type names).
        with write_transaction(engine, advisory_lock=ADVISORY_LOCK_VIEWS) as conn:
            if dialect == "postgresql":
                try:
                    with conn.begin_nested():
                        _ddl(conn, f"CREATE OR REPLACE VIEW {quote(table.name)} AS {sql}")
                except sa.exc.DBAPIError:
                    # PostgreSQL replaces a view only if its columns keep their names and types.
                    rebuilt = [d for d in dependents if existing.get(d.name) == "view"]
                    for dependent in reversed(rebuilt):
                        _ddl(conn, f"DROP VIEW IF EXISTS {quote(dependent.name)}")
                    _ddl(conn, f"DROP VIEW IF EXISTS {quote(table.name)}")
                    _ddl(conn, f"CREATE VIEW {quote(table.name)} AS {sql}")
                    for dependent in rebuilt:
                        _ddl(conn, f"CREATE VIEW {quote(dependent.name)} AS {dependent.sql_for(dialect)}")
            else:
                _ddl(conn, f"DROP VIEW IF EXISTS {quote(table.name)}")
                _ddl(conn, f"CREATE VIEW {quote(table.name)} AS {sql}")
            row_count = conn.execute(sa.text(f"SELECT count(*) FROM {quote(table.name)}")).scalar_one()
    except sa.exc.DBAPIError as exc:
        message = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise CustomTableError(table.path, f"the database refused the view: {message}") from None
    return ViewInfo(name=table.name, columns=view_columns(engine, table.name), row_count=row_count, sql=sql)


def _ddl(conn: sa.Connection, statement: str) -> None:
    """Run one statement that takes no parameters. psycopg reads `%` as the start of a placeholder even
    then, so a view with `LIKE '%free'` needs it doubled; the driver turns `%%` back into `%`."""
    if conn.dialect.paramstyle in ("format", "pyformat"):
        statement = statement.replace("%", "%%")
    conn.exec_driver_sql(statement)


def view_columns(engine: Engine, name: str) -> list[tuple[str, str]]:
    """(column, type) of a table or view; [] when it does not exist or cannot be read."""
    try:
        columns = sa.inspect(engine).get_columns(name)
    except (sa.exc.NoSuchTableError, sa.exc.DBAPIError):
        return []
    return [(c["name"], _type_name(c["type"])) for c in columns]


def _type_name(type_: Any) -> str:
    try:
        return str(type_)
    except Exception:  # some reflected types (e.g. SQLite's NullType for expressions) cannot render
        return ""
