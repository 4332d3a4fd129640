"""The benchmark harness in its CI size: it runs end to end and its figures are sane (no targets enforced)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_smoke_run_produces_sane_figures(tmp_path):
    """`python -m benchmarks --smoke` syncs, re-syncs and selects, and writes JSON and Markdown results."""
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--output", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    document = json.loads((tmp_path / "latest.json").read_text())
    assert "| sqlite |" in (tmp_path / "latest.md").read_text()
    [result] = document["results"]
    assert result["database"] == "sqlite" and result["runs"] == 1
    assert result["floor_a_s"] > 0 and result["floor_b_s"] > 0 and result["full_sync_s"] > 0
    assert sum(result["models_per_provider"].values()) == result["models"]
    assert result["noop_rows_rewritten"] == [0]
    assert result["incremental_rows_rewritten"] == [result["incremental_changed"]] and result["incremental_changed"] > 0
    assert result["llm"]["full"]["calls"] > 0 and result["llm"]["noop"]["calls"] == 0
    assert 0 < result["selector"]["p50_us"] <= result["selector"]["p99_us"]
    assert set(result["http"]["providers"]) == {"openrouter", "google", "mistral", "groq", "ollama"}
    assert result["peak_rss_mb"] >= result["rss_before_sync_mb"] > 0
