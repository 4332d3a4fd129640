"""fetch_provider end to end over real loopback HTTP against the fake provider server: pagination,
skipping, every fault ending in a one-line reason (or a retry that recovers), and keys kept in headers."""

from __future__ import annotations

import json
import socket
from hashlib import sha256

import pytest

from core_assets.providers import canonical_json, fetch_provider
from core_assets.settings import PROVIDERS, HttpLimits

COUNTS = {"google": 9, "mistral": 31, "openrouter": 549, "groq": 20, "ollama": 7}
# For faults that need a client timeout: short, and one retry.
QUICK = HttpLimits(timeout=0.3, max_attempts=2, max_retry_wait=0.01, max_body_bytes=4 << 20)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fetch_over_loopback(fake_providers, provider):
    """Each provider's list is fetched, normalized and fingerprinted."""
    outcome = fetch_provider(provider)
    assert (outcome.outcome, outcome.reason) == ("ok", None)
    assert len(outcome.models) == COUNTS[provider]
    assert outcome.http_status == 200
    assert outcome.sha256 == sha256(canonical_json(outcome.payload).encode()).hexdigest()
    assert outcome.skipped_items == 0
    assert outcome.requests == len(fake_providers.requests_to(provider))
    assert outcome.duration_ms >= 0


def test_google_follows_page_tokens(fake_providers):
    """Gemini pages of 4 are followed by nextPageToken: 3 requests, 3 untouched pages, 9 models."""
    outcome = fetch_provider("google")
    requests = fake_providers.requests_to("google")
    assert outcome.requests == len(requests) == 3
    assert [r.query.get("pageToken") for r in requests][0] is None
    assert all(r.query["pageSize"] == ["1000"] for r in requests)
    assert [r.query["pageToken"][0] for r in requests[1:]] == [
        outcome.payload["pages"][0]["nextPageToken"],
        outcome.payload["pages"][1]["nextPageToken"],
    ]
    assert [len(page["models"]) for page in outcome.payload["pages"]] == [4, 4, 1]
    assert len({m.model_id for m in outcome.models}) == 9


def test_openrouter_follows_links_next_with_all_modalities(fake_providers):
    """OpenRouter's links.next is followed on the base URL's host, asking for all modalities on every page."""
    fake_providers.page_size["openrouter"] = 200
    outcome = fetch_provider("openrouter")
    requests = fake_providers.requests_to("openrouter")
    assert outcome.outcome == "ok"
    assert len(requests) == 3
    assert all(r.query["output_modalities"] == ["all"] for r in requests)
    assert [r.query.get("offset") for r in requests] == [None, ["200"], ["400"]]
    assert len(outcome.models) == 549


def test_openrouter_without_key_is_fetched_publicly(fake_providers, monkeypatch):
    """OpenRouter's list is public: no key, no auth header, still ok."""
    monkeypatch.delenv("OPENROUTER_API_KEY")
    outcome = fetch_provider("openrouter")
    assert outcome.outcome == "ok"
    assert "authorization" not in fake_providers.requests_to("openrouter")[0].headers


@pytest.mark.parametrize(
    ("provider", "variable", "hint"),
    [
        ("google", "GEMINI_API_KEY", "GEMINI_API_KEY or GOOGLE_API_KEY"),
        ("mistral", "MISTRAL_API_KEY", "MISTRAL_API_KEY"),
        ("groq", "GROQ_API_KEY", "GROQ_API_KEY"),
    ],
)
def test_keyed_provider_without_key_is_skipped(fake_providers, monkeypatch, provider, variable, hint):
    """A keyed provider without its key is skipped with the variable to set, and nothing is requested."""
    monkeypatch.delenv(variable)
    outcome = fetch_provider(provider)
    assert (outcome.outcome, outcome.reason) == ("skipped", f"no API key (set {hint})")
    assert fake_providers.requests_to(provider) == []


def test_google_key_from_google_api_key(fake_providers, monkeypatch):
    """GOOGLE_API_KEY is accepted when GEMINI_API_KEY is not set."""
    key = fake_providers.keys["google"]
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("GOOGLE_API_KEY", key)
    assert fetch_provider("google").outcome == "ok"


def test_ollama_unreachable_is_skipped(fake_providers, monkeypatch):
    """Nothing listening at OLLAMA_HOST: skipped with a warning reason, not failed."""
    host = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("OLLAMA_HOST", host)
    outcome = fetch_provider("ollama")
    assert (outcome.outcome, outcome.reason) == (
        "skipped",
        f"Ollama not reachable at {host} (cannot connect)",
    )


def test_ollama_timeout_is_skipped(fake_providers):
    """An Ollama that never answers /api/tags is unreachable too."""
    fake_providers.fail("ollama", "timeout", seconds=2)
    outcome = fetch_provider("ollama", limits=QUICK)
    assert outcome.outcome == "skipped"
    assert outcome.reason == f"Ollama not reachable at {fake_providers.url('ollama')} (timed out)"


def test_ollama_error_answer_is_failed(fake_providers):
    """An Ollama that answers with an error is failed, with its message."""
    fake_providers.fail("ollama", "status", status=500, endpoint="/api/tags")
    outcome = fetch_provider("ollama")
    assert outcome.outcome == "failed"
    assert outcome.reason == "ollama tags: HTTP 500 internal error (gave up after 3 attempts)"


def test_ollama_shows_every_model_once(fake_providers):
    """One POST /api/show per tag, with the tag name; the payload keeps each answer under its name."""
    outcome = fetch_provider("ollama")
    shows = [json.loads(r.body)["model"] for r in fake_providers.requests_to("ollama") if r.method == "POST"]
    names = [m["name"] for m in fake_providers.items("ollama")]
    assert sorted(shows) == sorted(names)
    assert set(outcome.payload["show"]) == set(names)
    assert outcome.payload["tags"]["models"] == fake_providers.items("ollama")


def test_ollama_failed_show_keeps_the_model(fake_providers):
    """A failing /api/show costs that model its context window, not the fetch."""
    fake_providers.fail("ollama", "status", status=404, endpoint="/api/show")
    outcome = fetch_provider("ollama")
    assert outcome.outcome == "ok"
    assert len(outcome.models) == 7
    assert set(outcome.payload["show"].values()) == {None}
    assert {m.facts["context_window"] for m in outcome.models} == {None}
    assert {m.facts["free_kind"] for m in outcome.models} == {"local"}


FAILURES = [
    ("groq", dict(kind="status", status=401), "groq models: HTTP 401 Invalid API Key"),
    ("mistral", dict(kind="status", status=401), "mistral models: HTTP 401 Unauthorized"),
    (
        "google",
        dict(kind="status", status=400),
        "google models: HTTP 400 API key not valid. Please pass a valid API key. (API_KEY_INVALID)",
    ),
    ("google", dict(kind="status", status=403), "google models: HTTP 403 Method doesn't allow unregistered"),
    (
        "groq",
        dict(kind="status", status=429, retry_after="60"),
        "(server asks to retry in 60s, beyond the retry budget)",
    ),
    (
        "google",
        dict(kind="status", status=429, retry_delay="37s"),
        "google models: HTTP 429 You exceeded your current quota",
    ),
    (
        "openrouter",
        dict(kind="status", status=500),
        "openrouter models: HTTP 500 Internal Server Error (gave up after 3 attempts)",
    ),
    (
        "mistral",
        dict(kind="status", status=502),
        "mistral models: HTTP 502 Bad Gateway (gave up after 3 attempts)",
    ),
    (
        "groq",
        dict(kind="status", status=503),
        "groq models: HTTP 503 Service Unavailable (gave up after 3 attempts)",
    ),
    ("openrouter", dict(kind="reset"), "openrouter models: connection error ("),
    ("mistral", dict(kind="html"), "mistral models: HTTP 200 but the body is not JSON (text/html)"),
    ("google", dict(kind="truncated"), "google models: HTTP 200 but the body is not JSON (application/json)"),
    ("groq", dict(kind="wrong_shape"), "wrong shape: expected 'data' to be a list, got an object"),
    (
        "ollama",
        dict(kind="wrong_shape", document={"models": "none"}),
        "wrong shape: expected 'models' to be a list, got a string",
    ),
    ("openrouter", dict(kind="oversized"), "openrouter models: response larger than 4 MB"),
    ("google", dict(kind="loop"), "google models: pagination loop (nextPageToken repeated)"),
    ("openrouter", dict(kind="loop"), "openrouter models: pagination loop (links.next repeats"),
]


@pytest.mark.parametrize(("provider", "fault", "expected"), FAILURES)
def test_faults_fail_with_a_one_line_reason(fake_providers, provider, fault, expected):
    """Each fault ends in outcome 'failed' with a one-line, key-free reason saying what went wrong."""
    if provider == "openrouter" and fault["kind"] == "loop":
        fake_providers.page_size["openrouter"] = 100
    fake_providers.fail(provider, **fault)
    outcome = fetch_provider(provider)
    assert outcome.outcome == "failed"
    assert expected in outcome.reason
    assert "\n" not in outcome.reason
    assert not any(key in outcome.reason for key in fake_providers.keys.values())
    assert outcome.models == []


def test_read_timeout_fails_after_bounded_retries(fake_providers):
    """A provider that never answers is tried max_attempts times, then reported as a timeout."""
    fake_providers.fail("mistral", "timeout", seconds=2)
    outcome = fetch_provider("mistral", limits=QUICK)
    assert (outcome.outcome, outcome.requests) == ("failed", 2)
    assert outcome.reason == "mistral models: timed out after 0.3s (gave up after 2 attempts)"


def test_wrong_shape_keeps_the_payload_for_inspection(fake_providers):
    """A well-formed answer of the wrong shape is failed, but its payload and fingerprint are reported."""
    fake_providers.fail("groq", "wrong_shape")
    outcome = fetch_provider("groq")
    assert outcome.outcome == "failed"
    assert outcome.payload == {"pages": [{"data": {"unexpected": True}}]}
    assert outcome.sha256 == sha256(canonical_json(outcome.payload).encode()).hexdigest()


def test_nan_in_the_answer_is_failed(fake_providers):
    """NaN is accepted by Python's decoder but is not JSON (nor storable as jsonb): failed."""
    fake_providers.fail(
        "groq", "raw", body=b'{"object": "list", "data": [{"id": "x", "context_window": NaN}]}'
    )
    outcome = fetch_provider("groq")
    assert outcome.outcome == "failed"
    assert outcome.reason == "wrong shape: the answer holds NaN or Infinity, which is not JSON"


@pytest.mark.parametrize(
    ("provider", "fault", "requests"),
    [
        ("groq", dict(kind="status", status=503, times=2), 3),
        ("openrouter", dict(kind="status", status=502, times=1), 2),
        ("mistral", dict(kind="status", status=429, retry_after="0", times=1), 2),
        ("google", dict(kind="status", status=429, retry_delay="0.01s", times=1), 4),
        ("groq", dict(kind="reset", times=1), 2),
        ("ollama", dict(kind="status", status=500, times=1, endpoint="/api/tags"), 9),
    ],
)
def test_transient_faults_are_retried_then_ok(fake_providers, provider, fault, requests):
    """A fault that clears within the attempts costs extra requests, not the fetch."""
    fake_providers.fail(provider, **fault)
    outcome = fetch_provider(provider)
    assert (outcome.outcome, outcome.reason) == ("ok", None)
    assert len(outcome.models) == COUNTS[provider]
    assert outcome.requests == len(fake_providers.requests_to(provider)) == requests


def test_timeout_then_recovery(fake_providers):
    """One slow answer is retried and the fetch succeeds."""
    fake_providers.fail("groq", "timeout", seconds=2, times=1)
    outcome = fetch_provider("groq", limits=QUICK)
    assert (outcome.outcome, outcome.requests) == ("ok", 2)


def test_retries_are_bounded_on_a_paged_api(fake_providers):
    """A page that keeps failing ends the fetch after max_attempts requests for it."""
    fake_providers.fail("google", "status", status=503)
    outcome = fetch_provider("google")
    assert (outcome.outcome, outcome.requests) == ("failed", 3)


def test_empty_list_is_ok_with_no_models(fake_providers):
    """An empty list is a successful fetch of zero models (the shrink guard judges it later)."""
    fake_providers.fail("mistral", "empty")
    outcome = fetch_provider("mistral")
    assert (outcome.outcome, outcome.models) == ("ok", [])


def test_items_without_id_are_counted(fake_providers):
    """List items that cannot be a model are dropped and counted in skipped_items."""
    fake_providers.items("groq").extend([{"object": "model"}, {"id": None}, "junk"])
    outcome = fetch_provider("groq")
    assert (len(outcome.models), outcome.skipped_items) == (20, 3)


def test_served_data_changes_are_seen(fake_providers):
    """Removing a model and changing a price on the server change the result and its fingerprint."""
    before = fetch_provider("openrouter")
    fake_providers.remove_model("openrouter", "openrouter/auto")
    fake_providers.model("openrouter", "qwen/qwen3.8-27b")["pricing"]["prompt"] = "0.000001"
    after = fetch_provider("openrouter")
    models = {m.model_id: m for m in after.models}
    assert len(after.models) == 548 and "openrouter/auto" not in models
    assert str(models["qwen/qwen3.8-27b"].facts["input_cost_per_1k"]) == "0.001"
    assert after.sha256 != before.sha256


def test_keys_travel_only_in_their_own_auth_header(fake_providers):
    """Each canary key is sent only to its provider, only in its auth header, never in a URL."""
    for provider in PROVIDERS:
        assert fetch_provider(provider).outcome == "ok"
    header = {
        "google": "x-goog-api-key",
        "mistral": "authorization",
        "groq": "authorization",
        "openrouter": "authorization",
    }
    for request in fake_providers.requests:
        url = request.path + json.dumps(request.query)
        for provider, key in fake_providers.keys.items():
            assert key not in url
            carriers = [name for name, value in request.headers.items() if key in value]
            assert carriers in ([], [header[provider]])
            if carriers:
                assert request.provider == provider


def test_keys_never_reach_reasons_or_payloads(fake_providers):
    """An error body or a model that echoes the key is masked in the reason and in the payload."""
    key = fake_providers.keys["groq"]
    fake_providers.fail(
        "groq", "raw", status=403, body=json.dumps({"error": {"message": f"key {key} revoked"}}).encode()
    )
    failed = fetch_provider("groq")
    assert failed.reason == "groq models: HTTP 403 key *** revoked"
    fake_providers.clear_faults()
    fake_providers.model("groq", "allam-2-7b")["owned_by"] = f"echo {key}"
    outcome = fetch_provider("groq")
    assert outcome.outcome == "ok"
    text = canonical_json(outcome.payload)
    assert key not in text and "echo ***" in text
    assert key not in json.dumps([m.provider_data for m in outcome.models])


def test_cross_host_redirect_sends_no_key(fake_providers):
    """Redirected to another host, the request goes without its key (and a keyed API then refuses it)."""
    fake_providers.fail("groq", "redirect")
    outcome = fetch_provider("groq")
    assert outcome.outcome == "failed"
    assert outcome.reason == "groq models: HTTP 401 Invalid API Key"
    (elsewhere,) = fake_providers.requests_to("groq", server="other")
    assert "authorization" not in elsewhere.headers
    assert fake_providers.requests_to("groq")[0].headers["authorization"].startswith("Bearer canary-groq-")


def test_cross_host_redirect_of_a_public_list_succeeds_without_key(fake_providers):
    """OpenRouter's public list still arrives through a redirect to another host, minus the key."""
    fake_providers.fail("openrouter", "redirect")
    outcome = fetch_provider("openrouter")
    assert outcome.outcome == "ok"
    others = fake_providers.requests_to("openrouter", server="other")
    assert others and all("authorization" not in r.headers for r in others)


def test_demo_replays_the_bundled_recordings_without_keys(fake_providers, monkeypatch):
    """demo=True answers every provider from the package (≈616 models) with no key and no request out."""
    for variable in ("GEMINI_API_KEY", "MISTRAL_API_KEY", "GROQ_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(variable)
    outcomes = {p: fetch_provider(p, demo=True) for p in PROVIDERS}
    assert {p: (o.outcome, len(o.models)) for p, o in outcomes.items()} == {
        p: ("ok", n) for p, n in COUNTS.items()
    }
    assert sum(len(o.models) for o in outcomes.values()) == 616
    assert fake_providers.requests == []
    assert outcomes["ollama"].requests == 8


def test_demo_runs_the_live_code_on_the_same_data(fake_providers):
    """The demo and a live fetch of the same answer produce the same payload and fingerprint."""
    for provider in ("groq", "mistral", "openrouter"):
        live, demo = fetch_provider(provider), fetch_provider(provider, demo=True)
        assert demo.sha256 == live.sha256
        assert [m.as_row() for m in demo.models] == [m.as_row() for m in live.models]
