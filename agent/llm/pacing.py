"""How long to wait: backoff between retries, and the client-side tokens-per-minute window."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0
"""The tokens-per-minute window, in seconds."""


def backoff_s(attempt: int, retry_after_s: float | None, *, base_s: float, cap_s: float,
              rng: Callable[[], float]) -> float:
    """Seconds to sleep after failed attempt number `attempt` (from 1).

    The provider's Retry-After wins when it gave one; otherwise exponential backoff with full
    jitter (uniform in [0, min(cap, base * 2^(attempt-1))]), so parallel clients spread out.
    """
    if retry_after_s is not None:
        return retry_after_s
    ceiling = min(cap_s, base_s * 2.0 ** (attempt - 1))
    return rng() * ceiling


class TokenWindow:
    """Tokens sent in the last 60 s; says how long to wait before `tokens` more fit the limit.

    A provider's TPM limit rejects the request that crosses it (and the retries after it); waiting
    on our side first costs the same time without the failed requests.
    """

    def __init__(self, tpm_limit: int, clock: Callable[[], float]) -> None:
        self.tpm_limit = tpm_limit
        self._clock = clock
        self._sent: deque[tuple[float, int]] = deque()

    def used(self) -> int:
        self._expire()
        return sum(n for _, n in self._sent)

    def wait_s(self, tokens: int) -> float:
        """Seconds until `tokens` fit; 0 if they fit now or nothing else is in the window
        (a prompt larger than the whole budget goes alone rather than never)."""
        self._expire()
        used = sum(n for _, n in self._sent)
        if used + tokens <= self.tpm_limit or not self._sent:
            return 0.0
        now = self._clock()
        for sent_at, n in self._sent:
            used -= n
            if used + tokens <= self.tpm_limit:
                return max(0.0, sent_at + WINDOW_S - now)
        return max(0.0, self._sent[-1][0] + WINDOW_S - now)

    def record(self, tokens: int) -> None:
        self._sent.append((self._clock(), tokens))

    def _expire(self) -> None:
        now = self._clock()
        while self._sent and self._sent[0][0] + WINDOW_S <= now:
            self._sent.popleft()
