"""`Literature`: searches across the services, through the cache, within a time budget.

A search at one source reads the cache first (every mode); live mode then asks the service:
bounded tries, exponential backoff with jitter, Retry-After honoured, each request's timeout and
every wait capped by the search's deadline and the layer's own. A source that answers 429 or
5xx (or not at all) `breaker_after` times in a row is not asked again this session: its
circuit opens and it answers "rate_limited" / "failed" at once. Only a 200 answer that parses
is cached; "empty" means exactly that: the service answered 200 with no hits.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.literature import cache, transport
from agent.literature.records import SOURCES, Mode, Record, ReplayMiss, Search, Status
from agent.literature.sources import SOURCES as SERVICES
from agent.literature.sources import Malformed, Request, Source

_HINTS = {400: "the service refused the query", 401: "the API key was refused: check S2_API_KEY / OPENALEX_API_KEY",
          403: "forbidden: a refused API key, or OpenAlex's rate limit", 404: "the endpoint does not exist: "
          "check S2_API_BASE / OPENALEX_API_BASE / ARXIV_API_BASE"}


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often one search may try."""

    search_deadline_s: float = 20.0
    """Seconds one search at one source may take, tries and waits included."""
    request_timeout_s: float = 10.0
    """Seconds one request may wait for an answer (less when the deadline is nearer)."""
    max_tries: int = 4
    """Requests per search at one source."""
    breaker_after: int = 5
    """Consecutive 429 / 5xx / no-answer results that open a source's circuit for the session."""
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 16.0


class Literature:
    """Searches Semantic Scholar, OpenAlex and arXiv; see the module docstring."""

    def __init__(self, cache_dir: Path, mode: Mode = "live", *, sources: Sequence[str] = SOURCES,
                 deadline_s: float = 60.0, env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 policy: RetryPolicy | None = None, rng: random.Random | None = None,
                 also_read: Sequence[Path] = ()) -> None:
        """`env`: where keys and base URLs are read (default os.environ); `also_read`: caches
        consulted after `cache_dir` (an idea's, a recorded run's), whose entries used are copied
        into `cache_dir`; `rng`: the jitter's randomness."""
        unknown = [s for s in sources if s not in SERVICES]
        if unknown or mode not in ("live", "replay", "offline"):
            raise ValueError(f"unknown literature source(s) {unknown} or mode {mode!r}")
        self.cache_dir, self.mode, self.sources = Path(cache_dir), mode, tuple(sources)
        self.deadline_s, self.policy = deadline_s, policy or RetryPolicy()
        self._env = dict(os.environ if env is None else env)
        self._clock, self._sleep, self._rng = clock, sleep, rng or random.Random()
        self._also_read = tuple(Path(p) for p in also_read)
        self._end = clock() + deadline_s
        self._log: list[Search] = []
        self._used: dict[Path, None] = {}
        self._strikes: dict[str, int] = {}
        self._open: dict[str, Status] = {}

    @property
    def log(self) -> list[Search]:
        """Every search asked, per source, in order (fallbacks included)."""
        return list(self._log)

    def used_files(self) -> list[Path]:
        """The cache entries read or written (under `cache_dir`), in first-use order."""
        return list(self._used)

    def circuit_open(self, source: str) -> bool:
        return source in self._open

    def search(self, query: str, *, limit: int = 10, source: str | None = None) -> Search:
        """Search one source, or (None) each configured source in turn until one answers."""
        names = [source] if source else list(self.sources)
        if source is not None and source not in SERVICES:
            raise ValueError(f"unknown literature source {source!r}")
        query = cache.normalize_query(query)
        tried: list[Search] = []
        for i, name in enumerate(names):
            last = i == len(names) - 1
            found = self._search_one(SERVICES[name], query, limit, miss_raises=last or source is not None)
            if found is None:  # replay: not recorded at this source, try the next
                continue
            self._log.append(found)
            tried.append(found)
            if found.answered:
                return found
        if len(tried) == 1:
            return tried[0]
        statuses = {s.status for s in tried}
        status: Status = statuses.pop() if len(statuses) == 1 else "failed"
        last_search = tried[-1]
        return Search(query, last_search.source, status, (), "; ".join(s.reason or s.status for s in tried),
                      last_search.cache_key, False)

    def cached_searches(self, source: str | None = None) -> list[Search]:
        """Every answer in the cache (`cache_dir`, then `also_read`), read as searches; their
        files count as used (those of `also_read` copied into `cache_dir`)."""
        out, seen = [], set()
        for root in (self.cache_dir, *self._also_read):
            for name, key, _ in cache.entries(root):
                if name not in SERVICES or (source and name != source) or (name, key) in seen:
                    continue
                entry = self._lookup(name, key)  # an entry of `also_read` is copied into cache_dir
                if entry is None:
                    continue
                seen.add((name, key))
                out.append(self._from_entry(SERVICES[name], cache.query_of(entry.path), entry))
        return out

    # --- one source -----------------------------------------------------------------------
    def _search_one(self, src: Source, query: str, limit: int, *, miss_raises: bool) -> Search | None:
        request = src.build(self._env.get(src.base_env) or src.base, query, limit, self._env)
        key = cache.cache_key(src.name, request)
        if not query:
            return Search(query, src.name, "failed", (), "the query is empty", key, False)
        entry = self._lookup(src.name, key)
        if entry is not None:
            return self._from_entry(src, query, entry)
        if self.mode == "replay":
            if not miss_raises:
                return None
            raise ReplayMiss(f"replay: no recorded {src.name} answer for {query!r} (limit {limit}) in {self.cache_dir}")
        if self.mode == "offline":
            return Search(query, src.name, "unavailable", (), f"{src.name}: offline, and no cached answer", key, False)
        if src.name in self._open:
            return Search(query, src.name, self._open[src.name], (), f"{src.name}: not asked: its circuit is open "
                          f"after {self.policy.breaker_after} consecutive refusals or failures this session", key, False)
        if self._clock() >= self._end:
            return Search(query, src.name, "unavailable", (), f"{src.name}: not asked: the literature time "
                          f"budget ({self.deadline_s:g} s) is spent", key, False)
        return self._ask(src, query, request, key)

    def _lookup(self, source: str, key: str) -> cache.Entry | None:
        own = cache.path_for(self.cache_dir, source, key)
        entry = cache.read(own, source, key)
        for other in self._also_read:
            if entry is not None:
                break
            found = cache.read(cache.path_for(other, source, key), source, key)
            if found is not None:
                own.parent.mkdir(parents=True, exist_ok=True)
                own.write_bytes(found.path.read_bytes())
                entry = cache.Entry(own, source, key, found.status, found.body)
        if entry is not None:
            self._used[entry.path] = None
        return entry

    def _from_entry(self, src: Source, query: str, entry: cache.Entry) -> Search:
        self._used[entry.path] = None
        try:
            records = src.parse(entry.body)
        except Malformed as exc:
            return Search(query, src.name, "failed", (), f"{src.name}: the cached answer cannot be read ({exc})",
                          entry.key, True)
        return _answered(query, src.name, records, entry.key, True)

    def _ask(self, src: Source, query: str, request: Request, key: str) -> Search:
        policy, secrets = self.policy, request.secrets()
        end = min(self._clock() + policy.search_deadline_s, self._end)
        status: Status = "failed"
        problem, tries = "no request was sent", 0
        while tries < policy.max_tries and (remaining := end - self._clock()) > 0:
            tries += 1
            wait = transport.backoff_s(tries - 1, self._rng, policy.backoff_base_s, policy.backoff_cap_s)
            try:
                resp = transport.get(request, min(policy.request_timeout_s, remaining))
            except transport.Unreachable as exc:
                status, problem = "failed", str(exc)
            else:
                if resp.status == 200:
                    self._strikes[src.name] = 0
                    return self._answer(src, query, request, key, resp.body, secrets)
                if resp.status != 429 and resp.status < 500:
                    hint = _HINTS.get(resp.status, "not retried")
                    return Search(query, src.name, "failed", (), _scrub(f"{src.name}: HTTP {resp.status} ({hint})",
                                                                          secrets), key, False)
                status = "rate_limited" if resp.status == 429 else "failed"
                problem = "rate limited (HTTP 429)" if resp.status == 429 else f"HTTP {resp.status}"
                asked = transport.retry_after_s(resp.retry_after)
                wait = asked if asked is not None else wait
            self._strikes[src.name] = self._strikes.get(src.name, 0) + 1
            if self._strikes[src.name] >= policy.breaker_after:
                self._open[src.name] = status
                problem += f"; circuit opened after {policy.breaker_after} in a row"
                break
            if tries < policy.max_tries:
                if self._clock() + wait >= end:
                    problem += f"; the next try (in {wait:.1f} s) would pass the deadline"
                    break
                self._sleep(wait)
        reason = f"{src.name}: {problem} after {tries} tr{'y' if tries == 1 else 'ies'}"
        return Search(query, src.name, status, (), _scrub(reason, secrets), key, False)

    def _answer(self, src: Source, query: str, request: Request, key: str, body: str, secrets: list[str]) -> Search:
        try:
            records = src.parse(body)
        except Malformed as exc:
            return Search(query, src.name, "failed", (), _scrub(f"{src.name}: malformed answer: {exc}", secrets),
                          key, False)
        try:
            path = cache.write(self.cache_dir, src.name, key, request, query, 200, body, secrets)
        except ValueError as exc:  # the answer echoes a credential: neither written nor used
            return Search(query, src.name, "failed", (), f"{src.name}: {exc}", key, False)
        self._used[path] = None
        return _answered(query, src.name, records, key, False)


def _answered(query: str, source: str, records: tuple[Record, ...], key: str, from_cache: bool) -> Search:
    if records:
        return Search(query, source, "ok", records, None, key, from_cache)
    return Search(query, source, "empty", (), f"{source}: the service answered with no hits", key, from_cache)


def _scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text
