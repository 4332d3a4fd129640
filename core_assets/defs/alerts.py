"""Alert sensors: one webhook message per run that failed or passed with failed checks.

- `alert_on_run_failure` covers crashes, failed steps and blocking checks (a failed blocking check
  fails its run), and lists every failed check of the run in the same message.
- `alert_on_check_warnings` covers runs that succeeded but whose WARN checks failed: a provider fetch
  that failed (its last good snapshot stays in force), a price jump, a stale override, an empty custom
  table.

Both watch every run of the instance (`monitor_all_code_locations`), so `core-registry sync` runs that
share `DAGSTER_HOME` are reported too. They read the run's events with `get_records_for_run`, the
method `RunFailureSensorContext.get_step_failure_events` itself uses (not marked public in Dagster).
"""

import logging
import re

import dagster as dg
from pydantic import Field

from core_assets import alerts, settings

RUN_FAILURE_SENSOR = "alert_on_run_failure"
CHECK_WARNING_SENSOR = "alert_on_check_warnings"
# "dagster._core.errors.DagsterAssetCheckFailedError: ..." reads better as "DagsterAssetCheckFailedError: ..."
_QUALIFIED_NAME = re.compile(r"^(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*:)")


class AlertWebhook(dg.ConfigurableResource):
    """Posts alerts to `CORE_ALERT_WEBHOOK_URL` (Slack-compatible JSON); with the variable empty it
    only logs them. The URL is read when sending and never kept in the resource's config, which the
    UI displays: a webhook URL is a secret. `CORE_DAGSTER_URL`, when set, turns run ids into links."""

    max_attempts: int = Field(default=3, ge=1, description="attempts per message (timeouts, 429, 5xx)")
    timeout_seconds: float = Field(default=10.0, gt=0, description="timeout of one attempt")
    max_retry_wait_seconds: float = Field(default=10.0, ge=0, description="longest wait between attempts")

    def send(self, report: alerts.RunReport, logger: logging.Logger) -> bool:
        """Word and post the alert for one run; True when delivered. Never raises."""
        limits = settings.HttpLimits(
            timeout=self.timeout_seconds,
            max_attempts=self.max_attempts,
            max_total_seconds=alerts.WEBHOOK_LIMITS.max_total_seconds,
            max_retry_wait=self.max_retry_wait_seconds,
            max_body_bytes=alerts.WEBHOOK_LIMITS.max_body_bytes,
        )
        message = alerts.build_message(report, settings.dagster_ui_url())
        return alerts.post(message, settings.alert_webhook_url(), logger=logger, limits=limits)


def _plain(value: object) -> object:
    return getattr(value, "value", value)


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> tuple[alerts.CheckFailure, ...]:
    """Every check evaluation of the run that did not pass."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    failures = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.passed:
            continue
        failures.append(
            alerts.check_failure(
                asset=evaluation.asset_key.to_user_string(),
                check=evaluation.check_name,
                severity=evaluation.severity.value,
                description=evaluation.description,
                metadata={key: _plain(value) for key, value in evaluation.metadata.items()},
            )
        )
    return tuple(failures)


def _trigger(run: dg.DagsterRun) -> str | None:
    tags = run.tags
    if tags.get("dagster/from_automation_condition") == "true":
        return "declarative automation"
    if "dagster/schedule_name" in tags:
        return f"schedule {tags['dagster/schedule_name']}"
    if "dagster/sensor_name" in tags:
        return f"sensor {tags['dagster/sensor_name']}"
    return tags.get("core/trigger")


def _step_failures(context: dg.RunFailureSensorContext) -> tuple[alerts.StepFailure, ...]:
    steps = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        # Dagster wraps the user's exception ("Error occurred while executing op ..."); quote the original.
        while error is not None and error.cause is not None:
            error = error.cause
        message = error.message.strip() if error and error.message.strip() else "failed"
        steps.append(alerts.StepFailure(event.step_key or "?", _QUALIFIED_NAME.sub(r"\1", message)))
    return tuple(steps)


@dg.run_failure_sensor(
    name=RUN_FAILURE_SENSOR,
    description="Posts one alert per failed run (crash, failed step, failed blocking check) to CORE_ALERT_WEBHOOK_URL.",
    monitor_all_code_locations=True,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def alert_on_run_failure(context: dg.RunFailureSensorContext, alert_webhook: AlertWebhook) -> None:
    run = context.dagster_run
    try:
        steps, checks = _step_failures(context), failed_checks(context.instance, run.run_id)
    except Exception:  # the alert matters more than its details: send it without them
        context.log.exception(f"could not read the events of run {run.run_id}")
        steps, checks = (), ()
    report = alerts.RunReport(
        run_id=run.run_id,
        job_name=run.job_name,
        failed=True,
        failure_message=context.failure_event.message,
        steps=steps,
        checks=checks,
        trigger=_trigger(run),
    )
    alert_webhook.send(report, context.log)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name=CHECK_WARNING_SENSOR,
    description="Posts one alert per successful run whose checks warned (provider fetch failed, price jump, "
    "stale override, empty custom table, ...) to CORE_ALERT_WEBHOOK_URL.",
    monitor_all_code_locations=True,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def alert_on_check_warnings(context: dg.RunStatusSensorContext, alert_webhook: AlertWebhook) -> None:
    run = context.dagster_run
    checks = failed_checks(context.instance, run.run_id)
    if checks:
        report = alerts.RunReport(
            run_id=run.run_id, job_name=run.job_name, failed=False, checks=checks, trigger=_trigger(run)
        )
        alert_webhook.send(report, context.log)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        sensors=[alert_on_run_failure, alert_on_check_warnings],
        resources={"alert_webhook": AlertWebhook()},
    )
