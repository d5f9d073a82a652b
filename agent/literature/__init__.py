"""One literature layer for ideas (novelty checks) and the writeup (citations).

    lit = Literature(cache_dir, "live")        # or "replay" / "offline"
    found = lit.search("sparse autoencoder feature splitting", limit=10)
    found.status, found.records, lit.log, lit.used_files()

- `records`: `Record` (one paper, normalized, with a BibTeX entry built from its fields) and
  `Search` (one question at one source: status, records, reason, cache key);
- `sources`: Semantic Scholar, OpenAlex and arXiv — the request and the parser of each;
- `transport`: one HTTP GET (no redirects), Retry-After and backoff arithmetic;
- `cache`: the content-addressed cache, `<dir>/<source>/<sha256>.json`, raw bodies;
- `layer`: `Literature` — cache, retries, deadlines, circuit breakers, fallback, the log.

Why the HTTP APIs and not the maintained clients (`semanticscholar`, `pyalex`, `arxiv` on
PyPI), read in their sources: none can serve a content-addressed cache of raw answers (each
hands back parsed objects, so replay could not parse exactly the bytes the live search
parsed); none honours Retry-After or a deadline — `semanticscholar` retries a 429 every 30 s up
to 10 times (five minutes per call, tenacity `wait_fixed(30)`), `pyalex` sends requests with no
timeout at all from a module-global config and retries through urllib3 (0 retries by
default), `arxiv` retries any failure `num_retries` times after a fixed 3 s delay and sends
without a timeout; and they would add `requests`, `tenacity`, `feedparser` and the three
clients to the lock. Three GET endpoints with documented JSON / Atom answers are ~150 lines
here, with one retry policy and one cache for all.

Keys come from the environment only (`S2_API_KEY` as the `x-api-key` header;
`OPENALEX_API_KEY` and `OPENALEX_EMAIL` as OpenAlex's documented `api_key` / `mailto`
parameters) and are never written: not to a cache entry, a reason or the log. Base URLs:
`S2_API_BASE`, `OPENALEX_API_BASE`, `ARXIV_API_BASE`.
"""

from agent.literature.layer import Literature, RetryPolicy
from agent.literature.records import SOURCES, Mode, Record, ReplayMiss, Search, Status

__all__ = ["SOURCES", "Literature", "Mode", "Record", "ReplayMiss", "RetryPolicy", "Search", "Status"]
