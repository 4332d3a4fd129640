"""core_assets.http.HttpClient against the fake provider server over real loopback HTTP.

Retry waits are captured through the client's `sleep` hook instead of being slept, so the backoff and
Retry-After arithmetic is asserted exactly and the tests stay fast."""

from __future__ import annotations

import socket

import pytest

from core_assets.http import FetchError, HttpClient
from core_assets.settings import HttpLimits

LIMITS = HttpLimits(
    timeout=2.0, max_attempts=3, max_total_seconds=60, max_retry_wait=30, max_body_bytes=4 << 20
)


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(fake_providers, waits):
    with HttpClient(LIMITS, secrets=list(fake_providers.keys.values()), sleep=waits.append) as http:
        yield http


def groq_get(fake, http: HttpClient, key: str | None = None):
    key = key or fake.keys["groq"]
    return http.request_json("GET", fake.url("groq") + "/models", headers={"authorization": f"Bearer {key}"})


def test_returns_decoded_json(fake_providers, client):
    """A 200 JSON answer comes back decoded, after one attempt."""
    response = groq_get(fake_providers, client)
    assert response.status == 200
    assert len(response.data["data"]) == 20
    assert response.attempts == 1


def test_server_errors_are_retried_with_exponential_backoff(fake_providers, client, waits):
    """Two 503s then a 200: three attempts, waiting 0.5 s then 1 s."""
    fake_providers.fail("groq", "status", status=503, times=2)
    response = groq_get(fake_providers, client)
    assert response.attempts == 3
    assert waits == [0.5, 1.0]


def test_gives_up_after_max_attempts(fake_providers, client):
    """A provider that keeps failing gets exactly max_attempts requests, then a one-line reason."""
    fake_providers.fail("groq", "status", status=500)
    with pytest.raises(FetchError) as caught:
        groq_get(fake_providers, client)
    assert len(fake_providers.requests_to("groq")) == LIMITS.max_attempts
    assert caught.value.reason == "GET: HTTP 500 Service Unavailable (gave up after 3 attempts)"
    assert caught.value.status == 500


def test_retry_after_header_sets_the_wait(fake_providers, client, waits):
    """A 429 with `Retry-After: 7` waits 7 s before the next attempt."""
    fake_providers.fail("groq", "status", status=429, retry_after="7", times=1)
    assert groq_get(fake_providers, client).attempts == 2
    assert waits == [7.0]


def test_google_retry_delay_sets_the_wait(fake_providers, client, waits):
    """Gemini's 429 carries no header; the RetryInfo `retryDelay` in the body sets the wait."""
    fake_providers.fail("google", "status", status=429, retry_delay="3.5s", times=1)
    headers = {"x-goog-api-key": fake_providers.keys["google"]}
    assert client.request_json("GET", fake_providers.url("google") + "/models", headers=headers).attempts == 2
    assert waits == [3.5]


def test_retry_after_beyond_budget_fails_at_once(fake_providers, client, waits):
    """A server asking for a longer wait than max_retry_wait is not waited for."""
    fake_providers.fail("google", "status", status=429, retry_delay="37s")
    with pytest.raises(FetchError, match=r"asks to retry in 37s, beyond the retry budget"):
        client.request_json(
            "GET",
            fake_providers.url("google") + "/models",
            headers={"x-goog-api-key": fake_providers.keys["google"]},
        )
    assert waits == []
    assert len(fake_providers.requests_to("google")) == 1


def test_unreadable_retry_after_falls_back_to_backoff(fake_providers, client, waits):
    """A Retry-After that is neither seconds nor a date is ignored, not a crash."""
    fake_providers.fail("groq", "status", status=503, retry_after="soon", times=1)
    assert groq_get(fake_providers, client).attempts == 2
    assert waits == [0.5]


def test_client_errors_are_not_retried(fake_providers, client):
    """A 401 is final: one request, the provider's own message in the reason."""
    with pytest.raises(FetchError) as caught:
        groq_get(fake_providers, client, key="wrong-key")
    assert caught.value.reason == "GET: HTTP 401 Invalid API Key"
    assert caught.value.status == 401
    assert len(fake_providers.requests_to("groq")) == 1


def test_google_bad_key_reason_names_the_error(fake_providers, client):
    """Gemini answers a bad key with 400; the ErrorInfo reason API_KEY_INVALID reaches the message."""
    with pytest.raises(FetchError, match=r"HTTP 400 API key not valid\. .*\(API_KEY_INVALID\)"):
        client.request_json(
            "GET", fake_providers.url("google") + "/models", headers={"x-goog-api-key": "nope"}
        )


def test_secrets_are_redacted_from_reasons(fake_providers, client):
    """An error body that echoes the key is masked before it becomes a reason."""
    key = fake_providers.keys["groq"]
    body = f'{{"error": {{"message": "key {key} is revoked"}}}}'.encode()
    fake_providers.fail("groq", "raw", status=403, body=body)
    with pytest.raises(FetchError) as caught:
        groq_get(fake_providers, client)
    assert key not in caught.value.reason
    assert caught.value.reason == "GET: HTTP 403 key *** is revoked"


def test_read_timeout_is_retried_then_reported(fake_providers, waits):
    """A server that does not answer within the timeout costs max_attempts tries, then a timeout reason."""
    fake_providers.fail("groq", "timeout", seconds=2)
    limits = HttpLimits(timeout=0.2, max_attempts=2, max_retry_wait=0.01)
    with HttpClient(limits, sleep=waits.append) as http, pytest.raises(FetchError) as caught:
        groq_get(fake_providers, http)
    assert caught.value.reason == "GET: timed out after 0.2s (gave up after 2 attempts)"


def test_connection_refused(waits):
    """Nothing listening on the port: one attempt, no waiting, a 'cannot connect' reason marked unreachable."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with HttpClient(LIMITS, sleep=waits.append) as http, pytest.raises(FetchError) as caught:
        http.request_json("GET", f"http://127.0.0.1:{port}/api/tags")
    assert "cannot connect" in caught.value.reason and "Connection refused" in caught.value.reason
    assert caught.value.unreachable and caught.value.attempts == 1 and waits == []


def test_connection_reset_mid_body_is_retried(fake_providers, client):
    """A connection reset halfway through the body is retried, and the retry succeeds."""
    fake_providers.fail("groq", "reset", times=1)
    response = groq_get(fake_providers, client)
    assert response.attempts == 2
    assert len(response.data["data"]) == 20


@pytest.mark.parametrize("declare_length", [True, False])
def test_body_over_the_size_limit_is_refused(fake_providers, client, declare_length):
    """A body larger than max_body_bytes fails at once, whether or not Content-Length announces it."""
    fake_providers.fail("groq", "oversized", size=6 << 20, declare_length=declare_length)
    with pytest.raises(FetchError, match=r"^GET: response larger than 4 MB$"):
        groq_get(fake_providers, client)
    assert len(fake_providers.requests_to("groq")) == 1


def test_html_page_with_200_is_not_json(fake_providers, client):
    """A login page served with 200 is a one-line 'not JSON' reason naming the content type."""
    fake_providers.fail("groq", "html")
    with pytest.raises(
        FetchError, match=r"^GET: HTTP 200 but the body is not JSON \(text/html\): '<!DOCTYPE"
    ):
        groq_get(fake_providers, client)


def test_truncated_json_is_not_json(fake_providers, client):
    """A body cut short is reported, not retried."""
    fake_providers.fail("groq", "truncated")
    with pytest.raises(FetchError, match=r"body is not JSON \(application/json\)"):
        groq_get(fake_providers, client)
    assert len(fake_providers.requests_to("groq")) == 1


def test_absurdly_nested_json_is_not_a_crash(fake_providers, client):
    """JSON nested deeper than the decoder can go is a FetchError like any other unusable body."""
    fake_providers.fail("groq", "raw", body=b"[" * 200_000)
    with pytest.raises(FetchError, match=r"body is not JSON"):
        groq_get(fake_providers, client)


def test_undecodable_content_encoding_is_not_a_crash(fake_providers, client):
    """A body that claims gzip but is not gzip is a FetchError."""
    fake_providers.fail("groq", "raw", body=b"not gzip at all", headers={"content-encoding": "gzip"})
    with pytest.raises(FetchError, match=r"^GET: .*(decod|gzip)"):
        groq_get(fake_providers, client)


def test_same_host_redirect_keeps_the_key(fake_providers, client):
    """A redirect within the same origin is followed with the auth header still sent."""
    fake_providers.fail("groq", "redirect", same_host=True, times=1)
    assert groq_get(fake_providers, client).status == 200
    sent = [r.headers.get("authorization") for r in fake_providers.requests_to("groq")]
    assert sent == [f"Bearer {fake_providers.keys['groq']}"] * 2


def test_cross_host_redirect_drops_the_key(fake_providers, client):
    """A redirect to another host is followed without the auth header."""
    fake_providers.fail("openrouter", "redirect")
    headers = {"authorization": f"Bearer {fake_providers.keys['openrouter']}"}
    response = client.request_json("GET", fake_providers.url("openrouter") + "/models", headers=headers)
    assert response.url.startswith(fake_providers.other_origin)
    (elsewhere,) = fake_providers.requests_to("openrouter", server="other")
    assert "authorization" not in elsewhere.headers
    assert fake_providers.keys["openrouter"] not in str(elsewhere)


def test_redirect_loop_is_a_fetch_error(fake_providers, client):
    """Endless redirects end in a FetchError, not an exception from httpx."""
    fake_providers.fail("groq", "redirect", same_host=True)
    with pytest.raises(FetchError, match=r"redirects"):
        groq_get(fake_providers, client)


def test_post_sends_a_json_body(fake_providers, client):
    """POST with json_body reaches the server as JSON (Ollama's /api/show)."""
    response = client.request_json(
        "POST", fake_providers.url("ollama") + "/api/show", json_body={"model": "gemma3:4b"}
    )
    assert response.data["model_info"]["gemma3.context_length"] == 131072
    (request,) = fake_providers.requests_to("ollama")
    assert request.body == b'{"model":"gemma3:4b"}'
