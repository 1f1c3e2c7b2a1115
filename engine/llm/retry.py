"""Which backend failures are worth another try, and how long to wait before it.

Backends translate their SDK's exceptions into `Transient` (429, 5xx, timeouts, dropped connections:
try again, honouring the server's `retry-after` when it sent one) or `Permanent` (bad request, unknown
model: trying again cannot help, this request fails with the reason). A 401 or 403 is `CredentialsRefused`,
a `ClioError`: every other call would be refused alike, so the stage stops with one line at the first. The wait before attempt n is `backoff_s · 2ⁿ⁻¹`, scaled by a
jitter in [0.5, 1.0) drawn from a generator seeded by (seed, request key, attempt) — runs spread their
retries the same way every time — and capped at `MAX_WAIT_S`.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import timezone

from clio_engine.errors import ConfigError

REFUSED = "refused"  # the reason a refusal fails with (the model's words follow)
NO_TEXT = "no text in the reply"  # the model answered with a tool call only
MAX_WAIT_S = 60.0  # no single wait longer than a minute, whatever the exponent or retry-after says


class BackendError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Transient(BackendError):
    """Worth retrying; `retry_after` is the server's requested wait in seconds, when it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class Permanent(BackendError):
    """Retrying cannot help (4xx other than 408/409/429, a refused schema, a missing model)."""


class CredentialsRefused(ConfigError):
    """The server refused the API key (401) or the key's permissions (403). Not one request's failure: the
    generator stops the stage (as for any `ClioError`), instead of sending — and recording as failed — every
    remaining request of a run with a wrong key."""


def parse_retry_after(headers, now: float | None = None) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds, or an HTTP date: the time until it, from
    `now` — time.time() by default); None without a usable hint (absent, negative, not a number)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            seconds = _seconds_until(value, now) if name == "retry-after" else None
        if seconds is not None and seconds == seconds:  # NaN is no hint
            return max(0.0, seconds)
    return None


def _seconds_until(http_date: str, now: float | None) -> float | None:
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() - (time.time() if now is None else now)


# Servers' error codes that say what to change (OpenAI's and serve-llm's `code`, llama.cpp's and Anthropic's `type`).
# Only these are named in a failure's kind, which the manifests count (and release/manifest.json publishes): a
# server's free text, its own codes included, may echo the prompt, and never goes there.
KNOWN_ERROR_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error", "model_not_found",
                               "not_found_error", "request_too_large", "insufficient_quota", "invalid_api_key",
                               "unsupported_media_type"})


def known_error_code(*candidates) -> str | None:
    """The first of `candidates` (an error body's code, its type) that is one of KNOWN_ERROR_CODES, else None."""
    return next((c for c in candidates if isinstance(c, str) and c in KNOWN_ERROR_CODES), None)


def status_error(status: int, message: str, headers=None, code: str | None = None) -> BackendError | CredentialsRefused:
    """The error class for an HTTP status: 408, 409, 429 and 5xx are transient; 401 and 403 stop the stage. The
    reason reads "HTTP 400 context_length_exceeded: <message>" where the server sent a known `code`
    (`known_error_code`), so the counted kind (`usage.reason_kind`: before the colon) says what to change."""
    named = f" {code}" if code in KNOWN_ERROR_CODES else ""
    reason = f"HTTP {status}{named}: {message}"[:300]
    if status in (401, 403):
        return CredentialsRefused(f"the LLM server refused the credentials ({' '.join(reason.split())}): check the "
                                  "key in the environment variable that llm.api_key_env names")
    if status in (408, 409, 429) or status >= 500:
        return Transient(reason, parse_retry_after(headers))
    return Permanent(reason)


@dataclass(frozen=True)
class Backoff:
    backoff_s: float = 1.0
    max_retries: int = 5
    seed: int = 0

    def wait(self, key: str, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(retry_after, MAX_WAIT_S)
        jitter = 0.5 + 0.5 * random.Random(f"{self.seed}:{key}:{attempt}").random()
        return min(self.backoff_s * 2 ** (attempt - 1) * jitter, MAX_WAIT_S)
