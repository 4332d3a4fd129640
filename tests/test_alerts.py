"""Alerts: message wording, delivery to a loopback webhook, and the two sensors on real runs."""

from __future__ import annotations

import logging

import dagster as dg
import pytest

from core_assets import alerts
from core_assets.definitions import defs as load_defs
from core_assets.defs.alerts import (
    CHECK_WARNING_SENSOR,
    RUN_FAILURE_SENSOR,
    AlertWebhook,
    alert_on_check_warnings,
    alert_on_run_failure,
)
from core_assets.defs.jobs import SYNC_JOB_NAME
from core_assets.defs.metadata import md_table
from core_assets.settings import HttpLimits
from tests.support.webhook import WebhookReceiver, refused_url

FAST = HttpLimits(timeout=2.0, max_attempts=3, max_total_seconds=5.0, max_retry_wait=0.01)


@pytest.fixture
def webhook(monkeypatch):
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("CORE_ALERT_WEBHOOK_URL", receiver.url)
        yield receiver


@pytest.fixture(scope="module")
def sync_job() -> dg.JobDefinition:
    return load_defs().resolve_job_def(SYNC_JOB_NAME)


def sync(job: dg.JobDefinition, instance: dg.DagsterInstance, database_url: str) -> dg.ExecuteInProcessResult:
    return job.execute_in_process(
        run_config={"resources": {"registry_db": {"config": {"url": database_url}}}},
        instance=instance,
        raise_on_error=False,
    )


def fast_webhook() -> AlertWebhook:
    return AlertWebhook(max_retry_wait_seconds=0.01)


def sensor_context(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance, name: str):
    event = result.get_run_failure_event() if not result.success else result.get_run_success_event()
    return dg.build_run_status_sensor_context(
        sensor_name=name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=event,
        resources={"alert_webhook": fast_webhook()},
    )


def report(**changes) -> alerts.RunReport:
    fields = {
        "run_id": "5f0c1e2a-0000-4000-8000-000000000001",
        "job_name": SYNC_JOB_NAME,
        "failed": False,
        "checks": (
            alerts.CheckFailure(
                "raw_mistral_models", "fetch_succeeded", "WARN", "failed: HTTP 500", ("mistral",)
            ),
        ),
    }
    return alerts.RunReport(**{**fields, **changes})


# ##### WORDING


def test_warning_message_names_asset_check_provider_and_run():
    """A warning alert names the asset, the check, its reason, the provider and the run id."""
    text = alerts.build_message(report(trigger="schedule model_registry_sync_schedule"))["text"]
    assert text.startswith(":warning: *1 check warning*: model_registry_sync (schedule")
    assert "`raw_mistral_models` › `fetch_succeeded`: failed: HTTP 500 — provider: mistral" in text
    assert "`5f0c1e2a-0000-4000-8000-000000000001`" in text


def test_run_id_becomes_a_link_to_the_ui():
    """With the UI's address known, the run id links to the run's page."""
    text = alerts.build_message(report(), ui_url="http://dagster.internal:3000")["text"]
    run_id = "5f0c1e2a-0000-4000-8000-000000000001"
    assert f"<http://dagster.internal:3000/runs/{run_id}|{run_id}>" in text


def test_models_are_read_from_the_checks_markdown_tables():
    """Models named in a check's Markdown table appear as provider/model, a few of them."""
    rows = [
        {"provider_id": "openrouter", "model_id": f"vendor/model-{i}", "old": 1, "new": 3} for i in range(8)
    ]
    failure = alerts.check_failure(
        "model_specs",
        "model_specs_price_jump",
        "WARN",
        "8 price(s) changed",
        {"changes": md_table(rows).value},
    )
    assert failure.models[:2] == ("openrouter/vendor/model-0", "openrouter/vendor/model-1")
    text = alerts.build_message(report(checks=(failure,)))["text"]
    assert "models: openrouter/vendor/model-0, " in text and "(+3 more)" in text


def test_failure_message_lists_steps_then_errors_before_warnings():
    """A failed run's alert gives the failure, the failed steps, and the blocking check first."""
    checks = (
        alerts.CheckFailure("raw_groq_models", "fetch_succeeded", "WARN", "failed: timeout", ("groq",)),
        alerts.CheckFailure(
            "model_registry", "shrink_guard", "ERROR", "openrouter: 10 of 549", ("openrouter",)
        ),
    )
    message = alerts.build_message(
        report(
            failed=True,
            failure_message='Execution of run for "model_registry_sync" failed.',
            steps=(alerts.StepFailure("model_registry", "DagsterAssetCheckFailedError: blocking check"),),
            checks=checks,
        )
    )
    lines = message["text"].splitlines()
    assert lines[0] == ":rotating_light: *Run failed*: model_registry_sync"
    assert lines.index("*Failed steps*") < lines.index("*Failed checks*")
    shrink = next(i for i, line in enumerate(lines) if "shrink_guard" in line)
    groq = next(i for i, line in enumerate(lines) if "raw_groq_models" in line)
    assert shrink < groq and "ERROR" in lines[shrink] and "providers" not in lines[shrink]


def test_message_is_one_bounded_text_with_slack_escaping():
    """Hundreds of failures still make one message of bounded size; <, > and & are escaped."""
    many = tuple(
        alerts.CheckFailure(f"view_{i}", "not_empty", "WARN", "the view is <empty> & unused")
        for i in range(300)
    )
    text = alerts.build_message(report(checks=many))["text"]
    assert len(text) <= alerts.MAX_TEXT_CHARS
    assert "&lt;empty&gt; &amp; unused" in text
    assert f"… and {300 - alerts.MAX_CHECKS_SHOWN} more" in text


def test_asset_jobs_are_named_for_people():
    """A run launched by materializing assets in the UI is not called __ASSET_JOB."""
    assert "asset materialization" in alerts.build_message(report(job_name="__ASSET_JOB"))["text"]


# ##### DELIVERY


def test_post_delivers_json_and_accepts_a_plain_ok(webhook):
    """The message arrives as JSON; Slack's plain-text `ok` counts as delivered."""
    assert alerts.post({"text": "hello"}, webhook.url, limits=FAST)
    assert webhook.messages == [{"text": "hello"}]


def test_post_retries_server_errors_a_bounded_number_of_times(webhook, caplog):
    """5xx answers are retried up to the limit, then logged without the secret URL; nothing raises."""
    webhook.always(503)
    with caplog.at_level(logging.ERROR):
        assert not alerts.post({"text": "hello"}, webhook.url, limits=FAST)
    assert len(webhook.attempts) == FAST.max_attempts
    assert "alert not delivered" in caplog.text and "secret-token-123" not in caplog.text


def test_post_succeeds_after_a_transient_error(webhook):
    """One 502 then `ok`: delivered on the second attempt."""
    webhook.answer(502)
    assert alerts.post({"text": "hello"}, webhook.url, limits=FAST)
    assert [a["status"] for a in webhook.attempts] == [502, 200]


def test_post_does_not_retry_a_wrong_url(webhook):
    """A 404 (revoked or mistyped webhook) is not retried."""
    webhook.always(404)
    assert not alerts.post({"text": "hello"}, webhook.url, limits=FAST)
    assert len(webhook.attempts) == 1


def test_post_to_a_webhook_that_is_down_returns_false(caplog):
    """A refused connection is logged and reported as not delivered."""
    with caplog.at_level(logging.ERROR):
        assert not alerts.post({"text": "hello"}, refused_url(), limits=FAST)
    assert "cannot connect" in caplog.text


def test_without_url_the_alert_is_only_logged(caplog):
    """An empty CORE_ALERT_WEBHOOK_URL logs the alert text and sends nothing."""
    with caplog.at_level(logging.WARNING):
        assert not alerts.post({"text": "the alert"}, "", limits=FAST)
    assert "CORE_ALERT_WEBHOOK_URL is empty" in caplog.text and "the alert" in caplog.text


# ##### SENSORS ON REAL RUNS


def test_fetch_failures_of_one_run_make_one_warning_message(sync_job, fake_providers, sqlite_url, webhook):
    """Two providers failing in one successful run: one message naming both, with the run id."""
    fake_providers.fail("mistral", kind="status", status=500)
    fake_providers.fail("groq", kind="html")
    instance = dg.DagsterInstance.ephemeral()
    result = sync(sync_job, instance, sqlite_url)
    assert result.success

    alert_on_check_warnings(sensor_context(result, instance, CHECK_WARNING_SENSOR))

    assert len(webhook.messages) == 1
    text = webhook.messages[0]["text"]
    assert result.run_id in text
    assert "`raw_mistral_models` › `fetch_succeeded`" in text and "provider: mistral" in text
    assert "`raw_groq_models` › `fetch_succeeded`" in text and "provider: groq" in text
    assert "HTTP 500" in text


def test_clean_run_sends_nothing(sync_job, fake_providers, sqlite_url, webhook):
    """A successful run whose checks all passed raises no alert."""
    instance = dg.DagsterInstance.ephemeral()
    result = sync(sync_job, instance, sqlite_url)
    assert result.success
    alert_on_check_warnings(sensor_context(result, instance, CHECK_WARNING_SENSOR))
    assert webhook.attempts == []


def test_blocking_check_failure_alerts_once_with_check_and_provider(
    sync_job, fake_providers, sqlite_url, webhook
):
    """The shrink guard stops the run: the failure alert names the step, the check and the provider."""
    instance = dg.DagsterInstance.ephemeral()
    assert sync(sync_job, instance, sqlite_url).success
    fake_providers.set_items("openrouter", fake_providers.items("openrouter")[:10])
    result = sync(sync_job, instance, sqlite_url)
    assert not result.success

    alert_on_run_failure(sensor_context(result, instance, RUN_FAILURE_SENSOR).for_run_failure())

    assert len(webhook.messages) == 1
    text = webhook.messages[0]["text"]
    assert text.startswith(":rotating_light: *Run failed*: model_registry_sync")
    assert result.run_id in text
    assert "ERROR `model_registry` › `shrink_guard`" in text and "provider: openrouter" in text
    assert "*Failed steps*" in text


def test_crashed_step_is_reported(webhook):
    """A step that raises: the alert quotes the step and its error."""

    @dg.op
    def fetch_everything():
        raise RuntimeError("database is on fire")

    @dg.job
    def fragile():
        fetch_everything()

    instance = dg.DagsterInstance.ephemeral()
    result = fragile.execute_in_process(instance=instance, raise_on_error=False)
    alert_on_run_failure(sensor_context(result, instance, RUN_FAILURE_SENSOR).for_run_failure())
    text = webhook.messages[0]["text"]
    assert "*Run failed*: fragile" in text
    assert "`fetch_everything`: RuntimeError: database is on fire" in text


def test_webhook_down_never_breaks_the_sensor(sync_job, fake_providers, sqlite_url, monkeypatch):
    """With the webhook refusing connections or failing, the sensor returns normally."""
    fake_providers.fail("mistral", kind="status", status=500)
    instance = dg.DagsterInstance.ephemeral()
    result = sync(sync_job, instance, sqlite_url)
    monkeypatch.setenv("CORE_ALERT_WEBHOOK_URL", refused_url())
    alert_on_check_warnings(sensor_context(result, instance, CHECK_WARNING_SENSOR))
    with WebhookReceiver() as failing:
        failing.always(500)
        monkeypatch.setenv("CORE_ALERT_WEBHOOK_URL", failing.url)
        alert_on_check_warnings(sensor_context(result, instance, CHECK_WARNING_SENSOR))
        assert len(failing.attempts) == AlertWebhook().max_attempts


def test_sensor_ticks_report_each_run_once(sync_job, fake_providers, sqlite_url, webhook):
    """Through the sensor's own cursor: one message for the run with warnings, none for the clean one,
    and nothing again on the next tick."""
    instance = dg.DagsterInstance.ephemeral()
    defs = load_defs()
    sensor = defs.resolve_sensor_def(CHECK_WARNING_SENSOR)

    def tick(cursor):
        context = dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            repository_def=defs.get_repository_def(),
            resources={"alert_webhook": fast_webhook()},
        )
        sensor.evaluate_tick(context)
        return context.cursor

    cursor = tick(None)  # the first tick only places the cursor
    assert sync(sync_job, instance, sqlite_url).success
    fake_providers.fail("ollama", kind="status", status=500)
    warned = sync(sync_job, instance, sqlite_url)
    cursor = tick(cursor)
    tick(cursor)
    assert len(webhook.messages) == 1
    assert warned.run_id in webhook.messages[0]["text"] and "provider: ollama" in webhook.messages[0]["text"]


def test_model_ids_with_pipes_survive_the_markdown_tables():
    """A `|` or a line break in a provider's model id neither breaks the check's table nor the alert's list."""
    rows = [{"provider_id": "openrouter", "model_id": "vendor/odd|id", "old": 1, "new": 3},
            {"provider_id": "ollama", "model_id": "two\nlines", "old": 1, "new": 3}]
    table = md_table(rows).value
    assert all(line.count("|") - line.count("\\|") == 5 for line in table.splitlines())
    failure = alerts.check_failure("model_specs", "model_specs_price_jump", "WARN", "2 price(s) changed",
                                   {"changes": table})
    assert failure.models == ("openrouter/vendor/odd|id", "ollama/two lines")
