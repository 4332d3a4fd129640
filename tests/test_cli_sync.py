"""`core-registry sync`, `show`, `history` and `db upgrade`, called as a user would."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core_assets.cli import main


@pytest.fixture
def registry_url(monkeypatch, tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CORE_DATABASE_URL", url)
    return url


def test_demo_sync_prints_progress_and_summary(registry_url, capsys):
    """The demo sync shows each asset as it lands and a per-provider table, and exits 0."""
    assert main(["sync", "--demo"]) == 0
    out = capsys.readouterr().out
    assert "✓ raw_openrouter_models" in out and "✓ model_registry" in out
    table = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1]
             and line.split()[0] in {"google", "mistral", "openrouter", "groq", "ollama"}}
    assert set(table) == {"google", "mistral", "openrouter", "groq", "ollama"}
    assert table["openrouter"][1:4] == ["ok", "549", "549"]
    assert "sync finished" in out


def test_second_demo_sync_reports_nothing_new(registry_url, capsys):
    """A re-run on unchanged data reports the providers as unchanged with no new or changed rows."""
    assert main(["sync", "--demo"]) == 0
    capsys.readouterr()
    assert main(["sync", "--demo"]) == 0
    out = capsys.readouterr().out
    groq = next(line.split() for line in out.splitlines() if line.startswith("groq"))
    assert groq[1:6] == ["unchanged", "20", "0", "0", "0"]


def test_sync_of_one_provider_leaves_the_others(fake_providers, registry_url, capsys):
    """`--provider groq` fetches Groq only; nothing is asked of the other servers."""
    assert main(["sync", "--provider", "groq"]) == 0
    out = capsys.readouterr().out
    assert "✓ raw_groq_models" in out and "raw_mistral_models" not in out
    assert {r.provider for r in fake_providers.requests} == {"groq"}


def test_failed_provider_is_reported_with_its_reason(fake_providers, registry_url, capsys):
    """A provider answering 401 shows as failed with the provider's message; the sync still succeeds."""
    fake_providers.fail("mistral", "status", status=401)
    assert main(["sync"]) == 0
    out = capsys.readouterr().out
    mistral = next(line for line in out.splitlines() if line.startswith("mistral"))
    assert "failed" in mistral and "401" in mistral
    assert fake_providers.keys["mistral"] not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sync", "--provider", "anthropic"], "unknown provider 'anthropic'"),
        (["show", "groq/does-not-exist"], "no model groq/does-not-exist"),
        (["show", "nonsense"], "expected PROVIDER/MODEL"),
        (["history", "bogus/x"], "unknown provider 'bogus'"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(registry_url, capsys, argv, message):
    """Bad input ends with exit status 2 and a single line on stderr, never a traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_database_url_is_a_clear_error(monkeypatch, capsys):
    """An unusable CORE_DATABASE_URL is named in one line."""
    monkeypatch.setenv("CORE_DATABASE_URL", "mysql://nope")
    assert main(["show", "groq/x"]) == 2
    assert "CORE_DATABASE_URL" in capsys.readouterr().err


def test_show_and_history_after_sync(registry_url, capsys):
    """`show --json` returns the row with specs and provenance; `history --json` its price periods."""
    assert main(["sync", "--demo"]) == 0
    capsys.readouterr()
    assert main(["show", "openrouter/openai/gpt-4o", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["model_id"] == "openai/gpt-4o" and shown["specs"]["provenance"]["context_window"] == "provider"
    assert main(["history", "openrouter/openai/gpt-4o", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert history["status"] == "active" and len(history["prices"]) == 1
    assert history["prices"][0]["valid_to"] is None


def test_db_upgrade_and_console_script(registry_url):
    """The installed console script runs `db upgrade` and reports the database."""
    done = subprocess.run([sys.executable, "-m", "core_assets.cli", "db", "upgrade"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout
