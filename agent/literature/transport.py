"""One HTTP GET, and the arithmetic of waiting between tries (backoff, Retry-After).

urllib, not a client library: one request with a timeout and no redirects (a redirect would
carry the API key header to whatever host it names), answered as a value — status, headers,
body — or as `Unreachable` for a timeout or a connection that failed.
"""

from __future__ import annotations

import email.utils
import ipaddress
import random
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.literature.sources import USER_AGENT, Request

MAX_BODY_BYTES = 8 * 2**20  # a search answer is tens of kB; more is not an answer


@dataclass(frozen=True)
class Response:
    """What the server answered."""

    status: int
    retry_after: str | None
    """The Retry-After header as sent (seconds or an HTTP date), if any."""
    content_type: str
    body: str


class Unreachable(Exception):
    """No answer: a timeout, a refused or dropped connection. The message names no secret."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 3xx is answered as it is (and counted as a failed search)


def _opener(url: str) -> urllib.request.OpenerDirector:
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    # a loopback server (the tests') is reached directly, whatever proxy the environment names
    proxies = urllib.request.ProxyHandler({}) if loopback else urllib.request.ProxyHandler()
    return urllib.request.build_opener(proxies, _NoRedirect())


def get(request: Request, timeout_s: float) -> Response:
    """Send `request` once; any HTTP status is a Response, no answer is `Unreachable`."""
    query = urllib.parse.urlencode((*request.params, *request.secret_params))
    headers = {"User-Agent": USER_AGENT, **dict(request.secret_headers)}
    req = urllib.request.Request(f"{request.url}?{query}", headers=headers)
    try:
        with _opener(request.url).open(req, timeout=max(timeout_s, 0.001)) as resp:
            return Response(resp.status, resp.headers.get("Retry-After"), resp.headers.get("Content-Type", ""),
                            _read(resp))
    except urllib.error.HTTPError as exc:
        body = _read(exc) if exc.fp is not None else ""
        return Response(exc.code, exc.headers.get("Retry-After") if exc.headers else None,
                        exc.headers.get("Content-Type", "") if exc.headers else "", body)
    except TimeoutError as exc:
        raise Unreachable(f"no answer within {timeout_s:.1f} s") from exc
    except urllib.error.URLError as exc:
        raise Unreachable(f"cannot be reached ({_reason(exc.reason)})") from exc
    except (OSError, ValueError) as exc:  # reset connections, bad status lines
        raise Unreachable(f"the connection failed ({type(exc).__name__})") from exc


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)


def _read(resp: object) -> str:
    data = resp.read(MAX_BODY_BYTES + 1)  # type: ignore[attr-defined]
    if len(data) > MAX_BODY_BYTES:
        raise Unreachable(f"the answer is larger than {MAX_BODY_BYTES // 2**20} MiB")
    return bytes(data).decode("utf-8", errors="replace")


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_s(attempt: int, rng: random.Random, base_s: float = 1.0, cap_s: float = 30.0) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random (attempt 0 first)."""
    step = min(cap_s, base_s * 2 ** attempt)
    return step / 2 + rng.uniform(0, step / 2)
