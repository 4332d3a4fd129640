"""Alerts for runs that need a person's attention, worded for and posted to a Slack-compatible webhook.

Plain Python: the sensors in `core_assets.defs.alerts` turn a run's events into a `RunReport`; this
module words it as one message per run (never one per row or per check) and posts it with bounded
retries through the project's HTTP helper. Posting never raises: an alert that cannot be delivered is
logged, and the sensor goes on with the next run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core_assets.http import FetchError, HttpClient, redact
from core_assets.settings import HttpLimits

log = logging.getLogger(__name__)

MAX_CHECKS_SHOWN = 10
MAX_MODELS_SHOWN = 5
# Slack folds a message after about 4,000 characters; the run link must stay visible.
MAX_TEXT_CHARS = 3500

# Few, short retries: a sensor tick has a time budget and may have other runs to report.
WEBHOOK_LIMITS = HttpLimits(
    timeout=10.0, max_attempts=3, max_total_seconds=30.0, max_retry_wait=10.0, max_body_bytes=1024 * 1024
)

# Metadata keys that name providers in the project's check results.
PROVIDER_KEYS = ("provider", "suspect_providers")
# The columns by which the Markdown tables of check metadata (`md_table`) name a model.
MODEL_COLUMNS = ("provider_id", "model_id")


@dataclass(frozen=True)
class CheckFailure:
    """One asset check of a run that did not pass."""

    asset: str
    check: str
    severity: str  # "ERROR" or "WARN"
    description: str | None = None
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # "provider/model"


@dataclass(frozen=True)
class StepFailure:
    """One step of a run that failed, with its error message."""

    step: str
    message: str


@dataclass(frozen=True)
class RunReport:
    """What an alert says about one run."""

    run_id: str
    job_name: str
    failed: bool
    failure_message: str | None = None
    steps: tuple[StepFailure, ...] = ()
    checks: tuple[CheckFailure, ...] = ()
    trigger: str | None = None  # "schedule <name>", "sensor <name>", "declarative automation", "cli"


def check_failure(
    asset: str, check: str, severity: str, description: str | None, metadata: Mapping[str, Any]
) -> CheckFailure:
    """A failed check, with the providers and models its metadata names (see `affected`)."""
    providers, models = affected(metadata)
    return CheckFailure(asset, check, severity, description or None, providers, models)


def affected(metadata: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The providers and `provider/model` pairs a check result names: provider-valued keys, and the
    rows of its Markdown tables that have provider and model columns."""
    providers: list[str] = []
    for key in PROVIDER_KEYS:
        value = metadata.get(key)
        if isinstance(value, str):
            providers += [p.strip() for p in value.split(",") if p.strip() and p.strip() != "none"]
    models: list[str] = []
    for value in metadata.values():
        if isinstance(value, str) and "|" in value:
            models += _models_in_table(value)
    return tuple(dict.fromkeys(providers)), tuple(dict.fromkeys(models))


def _models_in_table(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    header = _cells(lines[0]) if lines else []
    if len(lines) < 3 or not set(MODEL_COLUMNS) <= set(header):
        return []
    p, m = (header.index(column) for column in MODEL_COLUMNS)
    rows = [_cells(line) for line in lines[2:]]  # lines[1] is the |---| rule
    return [f"{row[p]}/{row[m]}" for row in rows if len(row) == len(header) and row[p] and row[m]]


def _cells(line: str) -> list[str]:
    """A Markdown table row's cells; `\\|` inside a cell is a literal `|` (see defs.metadata.md_table)."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


def _escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _listing(items: Iterable[str], limit: int) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def _check_line(check: CheckFailure) -> str:
    line = f"• {check.severity} `{check.asset}` › `{check.check}`"
    if check.description:
        line += f": {_escape(_one_line(check.description))}"
    if check.providers:
        label = "provider" if len(check.providers) == 1 else "providers"
        line += f" — {label}: {_escape(', '.join(check.providers))}"
    if check.models:
        line += f" — models: {_escape(_listing(check.models, MAX_MODELS_SHOWN))}"
    return line


def build_message(report: RunReport, ui_url: str = "") -> dict[str, Any]:
    """The Slack-compatible message (`{"text": ...}`, mrkdwn) for one run: what failed or warned,
    where (asset, check, provider/model), and the run id — a link when the UI address is known."""
    job = "asset materialization" if report.job_name.startswith("__") else report.job_name
    origin = f" ({report.trigger})" if report.trigger else ""
    if report.failed:
        title = f":rotating_light: *Run failed*: {job}{origin}"
    else:
        count = len(report.checks)
        title = f":warning: *{count} check warning{'s' if count != 1 else ''}*: {job}{origin}, run succeeded"
    run = f"<{ui_url}/runs/{report.run_id}|{report.run_id}>" if ui_url else f"`{report.run_id}`"
    lines = [title, f"Run: {run}"]
    if report.failure_message:
        lines.append(_escape(_one_line(report.failure_message)))
    if report.steps:
        lines.append("*Failed steps*")
        lines += [f"• `{s.step}`: {_escape(_one_line(s.message))}" for s in report.steps[:MAX_CHECKS_SHOWN]]
    if report.checks:
        lines.append("*Failed checks*" if report.failed else "*Check warnings*")
        # Errors first: they are what stopped the run.
        ordered = sorted(report.checks, key=lambda c: (c.severity != "ERROR", c.asset, c.check))
        lines += [_check_line(c) for c in ordered[:MAX_CHECKS_SHOWN]]
        if len(ordered) > MAX_CHECKS_SHOWN:
            lines.append(f"… and {len(ordered) - MAX_CHECKS_SHOWN} more; see the run in Dagster")
    text = "\n".join(lines)
    if len(text) > MAX_TEXT_CHARS:
        text = text[: MAX_TEXT_CHARS - 40].rsplit("\n", 1)[0] + "\n… (cut; see the run in Dagster)"
    return {"text": text}


def post(
    message: Mapping[str, Any],
    url: str,
    *,
    logger: logging.Logger | None = None,
    limits: HttpLimits = WEBHOOK_LIMITS,
) -> bool:
    """Post one message; True when the webhook accepted it. Never raises.

    With no `url` the message is only logged. Refused connections are not retried (the HTTP helper's
    policy); timeouts, 429 (honouring Retry-After) and 5xx are, within `limits`."""
    logger = logger or log
    if not url:
        logger.warning("alert not sent (CORE_ALERT_WEBHOOK_URL is empty):\n%s", message.get("text", message))
        return False
    try:
        # The URL itself is the webhook's secret: keep it out of every error message.
        with HttpClient(limits, secrets=[url]) as http:
            http.request_json("POST", url, json_body=dict(message), what="alert webhook", expect_json=False)
    except FetchError as exc:
        logger.error("alert not delivered: %s\n%s", exc.reason, message.get("text", message))
        return False
    except Exception as exc:  # an alert must never take the sensor down with it
        logger.error("alert not delivered: %s: %s", type(exc).__name__, redact(str(exc), [url]))
        return False
    logger.info("alert delivered")
    return True
