"""`core-registry`: sync the registry, inspect it, and choose the table the orchestrator reads (SPEC §6).

User mistakes end with one clear line on stderr and exit status 2; failures of the sync itself with 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from core_assets import settings
from core_assets.db.engine import connect, json_default
from core_assets.settings import ConfigError


class UserError(Exception):
    """A mistake in what the user asked for; printed as one line, exit status 2."""


def _engine():
    return connect(settings.database_url())


def _split_model_ref(ref: str) -> tuple[str, str]:
    provider, sep, model = ref.partition("/")
    if not sep or not model:
        raise UserError(f"expected PROVIDER/MODEL (e.g. groq/llama-3.3-70b-versatile), got {ref!r}")
    if provider not in settings.PROVIDERS:
        raise UserError(f"unknown provider {provider!r}; known: {', '.join(settings.PROVIDERS)}")
    return provider, model


def _json_default(value):
    if isinstance(value, datetime):
        # SQLite returns timestamps without a zone; every timestamp the registry writes is UTC.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return json_default(value)


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default))


# ---------------------------------------------------------------------------------------------- commands


def cmd_db_upgrade(args) -> int:
    from core_assets.db.engine import get_engine, upgrade

    engine = get_engine(settings.database_url())
    upgrade(engine)
    print(f"registry database is up to date ({engine.url.render_as_string(hide_password=True)})")
    return 0


def cmd_show(args) -> int:
    from core_assets.registry_read import find_model, format_model

    provider, model = _split_model_ref(args.model)
    row = find_model(_engine(), provider, model)
    if row is None:
        raise UserError(f"no model {provider}/{model} in the registry (try `core-registry select --provider {provider}`)")
    if args.json:
        _print_json(row)
    else:
        print(format_model(row))
    return 0


def cmd_history(args) -> int:
    from core_assets.registry_read import find_model, format_history, price_history

    provider, model = _split_model_ref(args.model)
    row = find_model(_engine(), provider, model)
    if row is None:
        raise UserError(f"no model {provider}/{model} in the registry")
    history = price_history(_engine(), provider, row["model_id"])
    if args.json:
        _print_json({"provider_id": provider, "model_id": row["model_id"], "status": row["status"],
                     "first_seen_at": row["first_seen_at"], "last_seen_at": row["last_seen_at"],
                     "prices": history})
    else:
        print(format_history(row, history))
    return 0


def cmd_sync(args) -> int:
    from core_assets.sync_runner import run_sync

    providers = _providers_arg(args.provider)
    return run_sync(demo=args.demo, providers=providers, out=sys.stdout)


def cmd_tables(args) -> int:
    from core_assets.active_table import list_tables

    rows = list_tables(_engine())
    if args.json:
        _print_json(rows)
        return 0
    header = ("", "name", "kind", "rows", "reads", "fallbacks", "last used")
    lines = [
        ("*" if r["active"] else "", r["name"], r["kind"], "?" if r["rows"] is None else str(r["rows"]),
         str(r.get("reads") or 0), str(r.get("fallbacks") or 0), str(r.get("last_used_at") or "-"))
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *lines, strict=False)]
    for line in (header, *lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return 0


def cmd_use(args) -> int:
    from core_assets.active_table import InvalidTableError, set_active_table

    try:
        previous = set_active_table(_engine(), args.name, actor="cli")
    except InvalidTableError as exc:
        raise UserError(str(exc)) from None
    print(f"active table: {args.name} (was {previous})")
    return 0


def cmd_select(args) -> int:
    from core_assets.selector import ModelSelector

    selector = ModelSelector(database_url=settings.database_url())
    needs = [n.strip() for n in (args.needs or "").split(",") if n.strip()]
    # Passed through as given: the selector also accepts PROVIDER/MODEL refs and aliases, and says
    # which entry it does not know.
    providers = [p for value in args.provider or () for p in value.split(",") if p.strip()]
    excluded = [p for value in args.exclude_provider or () for p in value.split(",") if p.strip()]
    try:
        selection = selector.select(
            needs=needs,
            min_context=args.min_context,
            max_cost_per_1k=args.max_cost,
            free_only=args.free,
            providers=providers or None,
            exclude_providers=excluded or None,
            strategy=args.strategy.replace("-", "_"),
            include_deprecated=args.include_deprecated,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    finally:
        selector.flush_usage()
    if args.json:
        _print_json(selection.to_dict())
    else:
        print(selection.describe())
    return 0 if selection.primary is not None else 1


def _providers_arg(values: Sequence[str] | None) -> list[str]:
    chosen: list[str] = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in settings.PROVIDERS:
                raise UserError(f"unknown provider {name!r}; known: {', '.join(settings.PROVIDERS)}")
            chosen.append(name)
    return chosen


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of tokens, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a price in USD per 1k tokens, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError("must be a non-negative number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="core-registry",
        description="Build and query the model registry. Database: CORE_DATABASE_URL (default .core/registry.db).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("sync", help="run the Dagster asset graph: fetch providers, merge, write the registry")
    p.add_argument("--demo", action="store_true", help="replay bundled recorded responses (no network, no keys)")
    p.add_argument("--provider", action="append", metavar="P", help="fetch only these providers (repeatable)")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("tables", help="list the registry and custom tables, marking the active one")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser("use", help="make NAME the active table the selector reads")
    p.add_argument("name")
    p.set_defaults(func=cmd_use)

    p = sub.add_parser("select", help="pick a model from the active table")
    p.add_argument("--needs", metavar="CAP,...", help="required capabilities, e.g. tools,vision")
    p.add_argument("--min-context", type=_non_negative_int, metavar="N")
    p.add_argument("--max-cost", type=_non_negative_float, metavar="USD_PER_1K")
    p.add_argument("--free", action="store_true", help="only models with zero marginal cost")
    p.add_argument("--provider", action="append", metavar="P", help="allowed providers (repeatable)")
    p.add_argument("--exclude-provider", action="append", metavar="P", help="denied providers (repeatable)")
    p.add_argument("--strategy", choices=["cheapest", "largest-context", "balanced"], default="cheapest")
    p.add_argument("--include-deprecated", action="store_true", help="also consider deprecated models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("show", help="one model with every field and its source")
    p.add_argument("model", metavar="PROVIDER/MODEL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("history", help="lifecycle and price history of one model")
    p.add_argument("model", metavar="PROVIDER/MODEL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("db", help="database maintenance")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="apply pending schema migrations (also done automatically)")
    up.set_defaults(func=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ConfigError) as exc:
        print(f"core-registry: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("core-registry: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
