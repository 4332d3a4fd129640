"""Configuration read from the environment (SPEC §6). Read at call time, never cached: tests and the
CLI change variables between runs, and API keys must not be copied into long-lived objects."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROVIDERS: tuple[str, ...] = ("google", "mistral", "openrouter", "groq", "ollama")

DEFAULT_BASE_URLS = {
    "google": "https://generativelanguage.googleapis.com/v1beta",
    "mistral": "https://api.mistral.ai/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "groq": "https://api.groq.com/openai/v1",
    "ollama": "http://localhost:11434",
}

# Which variables hold each provider's key, in order of preference. Ollama needs none.
KEY_VARIABLES = {
    "google": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "ollama": (),
}

# OpenRouter's list endpoint is public; a key only adds account context.
KEY_OPTIONAL = {"openrouter", "ollama"}

DEFAULT_DATABASE_URL = "sqlite:///.core/registry.db"
DEFAULT_SYNC_CRON = "0 */6 * * *"


class ConfigError(ValueError):
    """A setting has a value the program cannot use; the message says which and why."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _csv(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return [part.strip().lower() for part in raw.split(",") if part.strip()]


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def database_url() -> str:
    return os.environ.get("CORE_DATABASE_URL") or DEFAULT_DATABASE_URL


def enabled_providers() -> list[str]:
    chosen = _csv("CORE_PROVIDERS")
    if chosen is None:
        return list(PROVIDERS)
    unknown = [p for p in chosen if p not in PROVIDERS]
    if unknown:
        raise ConfigError(
            f"CORE_PROVIDERS names unknown provider(s) {', '.join(unknown)}; known: {', '.join(PROVIDERS)}"
        )
    return [p for p in PROVIDERS if p in chosen]


def base_url(provider: str) -> str:
    if provider == "ollama":
        url = os.environ.get("OLLAMA_HOST") or DEFAULT_BASE_URLS["ollama"]
        # OLLAMA_HOST is often given as host:port without a scheme (the ollama CLI accepts that).
        if "://" not in url:
            url = "http://" + url
    else:
        url = os.environ.get(f"CORE_{provider.upper()}_BASE_URL") or DEFAULT_BASE_URLS[provider]
    return url.rstrip("/")


def api_key(provider: str) -> str | None:
    for name in KEY_VARIABLES[provider]:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def all_api_keys() -> list[str]:
    """Every configured secret, so that messages can be scrubbed of them."""
    names = [n for names in KEY_VARIABLES.values() for n in names] + ["CORE_LLM_API_KEY"]
    return [v for v in (os.environ.get(n, "").strip() for n in names) if len(v) >= 4]


def free_tier(provider: str) -> bool:
    return _flag(f"CORE_{provider.upper()}_FREE_TIER")


def sql_dir() -> Path:
    raw = os.environ.get("CORE_SQL_DIR")
    return Path(raw).expanduser().resolve() if raw else project_root() / "sql"


def demo_mode() -> bool:
    """`CORE_DEMO=1` replays the bundled recorded responses (what `sync --demo` does), e.g. for `dagster dev`."""
    return _flag("CORE_DEMO")


def shrink_ratio() -> float:
    """A successful fetch with fewer than this share of the provider's active rows is suspect (0 disables)."""
    raw = os.environ.get("CORE_SHRINK_GUARD_RATIO", "0.5")
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"CORE_SHRINK_GUARD_RATIO must be a number between 0 and 1, got {raw!r}") from exc
    if not 0 <= value <= 1:
        raise ConfigError(f"CORE_SHRINK_GUARD_RATIO must be between 0 and 1, got {raw!r}")
    return value


def sync_cron() -> str:
    return os.environ.get("CORE_SYNC_CRON") or DEFAULT_SYNC_CRON


@dataclass(frozen=True)
class HttpLimits:
    """Bounds on every provider call: retries are finite in count and in time."""

    timeout: float = 30.0
    max_attempts: int = 4
    max_total_seconds: float = 90.0
    max_retry_wait: float = 30.0
    max_body_bytes: int = 64 * 1024 * 1024
    max_pages: int = 200

    @classmethod
    def from_env(cls) -> HttpLimits:
        def num(name: str, default: float) -> float:
            raw = os.environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                return float(raw)
            except ValueError as exc:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from exc

        d = cls()
        return cls(
            timeout=num("CORE_HTTP_TIMEOUT", d.timeout),
            max_attempts=int(num("CORE_HTTP_MAX_ATTEMPTS", d.max_attempts)),
            max_total_seconds=num("CORE_HTTP_MAX_SECONDS", d.max_total_seconds),
            max_retry_wait=num("CORE_HTTP_MAX_RETRY_WAIT", d.max_retry_wait),
            max_body_bytes=int(num("CORE_HTTP_MAX_BODY_BYTES", d.max_body_bytes)),
            max_pages=int(num("CORE_HTTP_MAX_PAGES", d.max_pages)),
        )


def alert_webhook_url() -> str:
    """`CORE_ALERT_WEBHOOK_URL`: the Slack-compatible webhook that alerts are posted to; empty = log only."""
    return os.environ.get("CORE_ALERT_WEBHOOK_URL", "").strip()


def dagster_ui_url() -> str:
    """`CORE_DAGSTER_URL`: the Dagster UI's address, so that alerts link to their run (empty = run id only)."""
    return os.environ.get("CORE_DAGSTER_URL", "").strip().rstrip("/")


DEFAULT_ASSET_OWNERS = ("team:llm-platform",)


def asset_owners() -> list[str]:
    """`CORE_ASSET_OWNERS`: comma list of owners (e-mail addresses or `team:<name>`) shown on every asset."""
    raw = os.environ.get("CORE_ASSET_OWNERS", "")
    owners = [part.strip() for part in raw.split(",") if part.strip()]
    bad = [o for o in owners if "@" not in o and not (o.startswith("team:") and len(o) > len("team:"))]
    if bad:
        raise ConfigError(
            f"CORE_ASSET_OWNERS: {', '.join(bad)} is neither an e-mail address nor a `team:<name>`"
        )
    return owners or list(DEFAULT_ASSET_OWNERS)
