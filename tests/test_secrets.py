"""Issue 7, item 6 — secrets: with a unique canary for every key (the four providers' and CORE_LLM_API_KEY),
a sync through the CLI on a real Dagster instance — with servers that echo keys back in error bodies, model
lists and LLM answers, a redirect to another host, failures and retries — leaves the canaries nowhere: not
in any table of the registry database (provider_snapshots included), not in Dagster's run and event
storage, not in any log record (DEBUG included), the console, the CLI's answers or the alert; and no key
travels to a host other than its own.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from core_assets import alerts
from core_assets.cli import main as cli
from core_assets.db.engine import connect
from core_assets.defs.alerts import failed_checks
from tests.support.fake_llm import completion, well_behaved

HEADERS = {"google": "x-goog-api-key", "mistral": "authorization", "groq": "authorization",
           "openrouter": "authorization"}  # fmt: skip


def files_holding(folder: Path, secrets: list[str]) -> list[str]:
    """Every file under `folder` whose bytes hold a secret (plain or JSON-escaped), with the secret found."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {s}" for s in secrets if s.encode() in data or json.dumps(s).encode() in data]
    return found


def rows_holding(database_url: str, secrets: list[str]) -> list[str]:
    """Every table and column of the registry database, read back as text, that holds a secret."""
    engine = connect(database_url)
    found = []
    with engine.connect() as conn:
        for table in sa.inspect(engine).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                text = repr(tuple(row))
                found += [f"{table}: {s}" for s in secrets if s in text]
    return found


def echoing_llm(fake_llm, canary: str):
    """An LLM endpoint that fails its first two calls quoting the key, then answers well except that the
    first model's answer repeats the key."""
    calls = {"n": 0}

    def reply(body):
        calls["n"] += 1
        if calls["n"] <= 2:
            return 500, {"error": {"message": f"upstream rejected Bearer {canary}"}}
        answers = json.loads(well_behaved(fake_llm.items(body)))["models"]
        answers[0]["family"] = canary
        return 200, completion(json.dumps({"models": answers}))

    return reply


@pytest.fixture
def canaries(fake_providers, fake_llm, monkeypatch) -> dict[str, str]:
    """A unique canary per key, every server primed to echo it back."""
    llm_key = f"canary-llm-{uuid.uuid4().hex[:16]}"
    fake_llm.api_key = llm_key
    monkeypatch.setenv("CORE_LLM_API_KEY", llm_key)
    monkeypatch.setenv("CORE_LLM_BATCH_SIZE", "50")
    monkeypatch.setenv("CORE_LLM_CONCURRENCY", "1")
    fake_llm.reply = echoing_llm(fake_llm, llm_key)
    keys = fake_providers.keys
    # Groq refuses the key, quoting it; Mistral's list quotes it in a model; Google's first answers are 500s
    # quoting it; OpenRouter's list moves to another host.
    fake_providers.fail("groq", "raw", status=403,
                        body=json.dumps({"error": {"message": f"key {keys['groq']} revoked"}}).encode())  # fmt: skip
    fake_providers.items("mistral")[0]["owned_by"] = f"echo {keys['mistral']}"
    fake_providers.fail("google", "raw", status=500, times=2,
                        body=json.dumps({"error": {"message": f"bad key {keys['google']}"}}).encode())  # fmt: skip
    fake_providers.fail("openrouter", "redirect")
    return {**keys, "llm": llm_key}


def test_canary_keys_appear_nowhere(canaries, fake_providers, fake_llm, sqlite_url, tmp_path, monkeypatch, caplog,
                                    capfd):  # fmt: skip
    """After a sync full of echoes, retries and redirects, no canary is stored, logged, printed or sent astray."""
    secrets = list(canaries.values())
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("CORE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CORE_REFERENCES", "offline")
    caplog.set_level(logging.DEBUG)

    assert cli(["sync"]) == 0
    mistral_model = fake_providers.items("mistral")[0]["name"]
    assert cli(["show", f"mistral/{mistral_model}", "--json"]) == 0
    assert cli(["select", "--needs", "chat", "--json"]) in (0, 1)
    assert cli(["tables"]) == 0

    # The echoes happened, and were masked.
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        report = alerts.RunReport(run.run_id, run.job_name, failed=False, checks=failed_checks(instance, run.run_id))
        alert = alerts.build_message(report)["text"]
    assert "`raw_groq_models` › `fetch_succeeded`: failed: groq models: HTTP 403 key *** revoked" in alert
    engine = connect(sqlite_url)
    with engine.connect() as conn:
        owned_by = conn.execute(sa.text(
            "SELECT json_extract(provider_data, '$.owned_by') FROM model_registry WHERE model_id = :m"
        ), {"m": mistral_model}).scalar_one()  # fmt: skip
    assert owned_by == "echo ***"
    assert fake_llm.calls >= 3

    out, err = capfd.readouterr()
    leaks = (
        rows_holding(sqlite_url, secrets)
        + files_holding(Path(sa.engine.make_url(sqlite_url).database).parent, secrets)
        + files_holding(dagster_home, secrets)
        + [f"log record: {s}" for r in caplog.records for s in secrets if s in r.getMessage()]
        + [f"console: {s}" for s in secrets if s in out + err]
        + [f"alert: {s}" for s in secrets if s in alert]
    )
    assert leaks == []

    # Keys travel only to their own provider, in their own header; the other host and the LLM get none.
    for request in fake_providers.requests:
        sent = {name: value for name, value in request.headers.items() if any(s in value for s in secrets)}
        if request.server == "other":
            assert sent == {}, request.path
            continue
        assert set(sent) <= {HEADERS.get(request.provider, "")}
        assert all(canaries[request.provider] in value for value in sent.values())
        assert not any(s in request.path + json.dumps(request.query) for s in secrets)
    assert fake_providers.requests_to("openrouter", server="other"), "the redirect was followed"
    for request in fake_llm.requests:
        text = json.dumps({k: v for k, v in request.items() if k not in ("_authorization", "_headers")})
        assert not any(s in text for s in secrets)
        assert not any(key in json.dumps(request["_headers"]) for key in fake_providers.keys.values())
