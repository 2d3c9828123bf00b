"""HTTP for the REST API source: a rate limiter, and GET with retries that honour ``Retry-After``.

Retries use tenacity rather than urllib3's ``Retry`` mounted on the session: tenacity takes the
``sleep`` to call (so tests assert the waits that were asked for, never the wall clock), and every
attempt, a retry too, passes through the rate limiter (urllib3 retries inside the adapter, below it).
The wait is the answer's ``Retry-After`` (seconds or an HTTP date, honoured as sent), else an
exponential backoff (``backoff_seconds`` doubling per attempt, capped at ``max_backoff_seconds``).

Every clock is injectable: ``monotonic`` and ``sleep`` for the rate limiter and the retries, ``now``
(an aware UTC datetime) for ``Retry-After`` dates.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import tenacity

from ingestion.protocol import ConnectorError

Sleep = Callable[[float], None]
Clock = Callable[[], float]
Now = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, aware, in UTC (the default ``now`` of the client)."""
    return datetime.now(UTC)


class RateLimiter:
    """At most ``per_second`` calls a second, evenly spaced; thread-safe.

    Args:
        per_second: the rate; None or 0 for no limit.
        clock: a monotonic clock in seconds (default ``time.monotonic``).
        sleep: called with the seconds to wait (default ``time.sleep``).
    """

    def __init__(self, per_second: float | None, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def wait(self) -> float:
        """Wait for the next slot.

        Returns:
            The seconds it asked ``sleep`` for (0 when the slot was free).
        """
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            self._sleep(delay)
            return delay
        return 0.0


def retry_after_seconds(value: str | None, now: Now = utc_now) -> float | None:
    """``Retry-After`` as seconds to wait.

    Args:
        value: the header: a number of seconds or an HTTP date (RFC 9110).
        now: the current time (aware), for a date.

    Returns:
        Seconds (never negative), or None when the header is absent or unreadable.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


def strip_query(url: str) -> str:
    """The URL without its query and fragment (what errors show: a query may carry tokens)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class _Retryable(Exception):
    """An answer worth retrying (429, 5xx, no connection), with the wait the server asked for."""

    def __init__(self, problem: str, retry_after: float | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


class HttpClient:
    """GET JSON pages with auth, a rate limit and retries (see the module docstring).

    Args:
        session: the requests session.
        sleep: called with every wait (rate limit and retries).
        monotonic: the rate limiter's clock.
        now: the wall clock for ``Retry-After`` dates.
    """

    def __init__(self, session: requests.Session, sleep: Sleep = time.sleep, monotonic: Clock = time.monotonic,
                 now: Now = utc_now) -> None:
        self.session = session
        self.sleep = sleep
        self.monotonic = monotonic
        self.now = now
        self.requests_made = 0
        self.retries_made = 0

    def limiter(self, per_second: float | None) -> RateLimiter:
        """A rate limiter on this client's clocks."""
        return RateLimiter(per_second, self.monotonic, self.sleep)

    @staticmethod
    def auth(config: Mapping[str, Any]) -> tuple[dict[str, str], Any]:
        """Request headers and the basic-auth pair from the ``auth`` and ``headers`` options."""
        auth = config.get("auth") or {"type": "none"}
        headers = dict(config.get("headers") or {})
        kind = auth.get("type", "none")
        if kind == "bearer":
            headers["Authorization"] = f"Bearer {auth['token']}"
        elif kind == "header":
            headers[auth.get("header", "Authorization")] = str(auth["token"])
        elif kind == "basic":
            return headers, (auth.get("username", ""), auth.get("password", ""))
        return headers, None

    def get(self, config: Mapping[str, Any], url: str, params: Mapping[str, Any], where: str,
            limiter: RateLimiter) -> tuple[Any, requests.Response]:
        """GET one JSON page, retrying 429, 5xx and connection errors.

        Args:
            config: the source's options (auth, headers, retries, timeout).
            url: the page URL.
            params: query parameters (added to the URL's own).
            where: names the stream in errors.
            limiter: every attempt waits for its slot.

        Returns:
            The parsed JSON body and the response (its headers carry ``Link``).

        Raises:
            ConnectorError: a 4xx other than 429, a body that is not JSON, or retries used up (the
                message names the URL without its query and the last problem).
        """
        headers, basic = self.auth(config)
        retries = int(config.get("max_retries", 5))
        timeout = float(config.get("timeout_seconds", 30))
        shown = strip_query(url)
        backoff = tenacity.wait_exponential(multiplier=float(config.get("backoff_seconds", 1.0)),
                                            max=float(config.get("max_backoff_seconds", 60)))

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, _Retryable) and error.retry_after is not None:
                return error.retry_after  # honoured as sent; only the backoff is capped
            return backoff(state)

        def attempt() -> tuple[Any, requests.Response]:
            limiter.wait()
            self.requests_made += 1
            try:
                response = self.session.get(url, params=params, headers=headers, auth=basic, timeout=timeout)
            except requests.RequestException as e:
                raise _Retryable(f"{type(e).__name__} (connection failed or timed out)", None) from None
            status = response.status_code
            if status == 429 or status >= 500:
                raise _Retryable(f"HTTP {status}", retry_after_seconds(response.headers.get("Retry-After"), self.now))
            if status >= 400:
                hint = " (check the credentials in the environment variable named in the config)" if status in (401, 403) else ""
                raise ConnectorError(f"{where}: GET {shown} failed with HTTP {status}{hint}")
            try:
                return response.json(), response
            except ValueError:
                raise ConnectorError(f"{where}: GET {shown} answered {status} with a body that is not JSON") from None

        def count_retry(state: tenacity.RetryCallState) -> None:
            self.retries_made += 1

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(retries + 1),
            wait=wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self.sleep,
            before_sleep=count_retry,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as e:
            attempts = retrying.statistics.get("attempt_number", retries + 1)
            raise ConnectorError(f"{where}: GET {shown} failed after {attempts} attempt(s): {e.problem}") from None
