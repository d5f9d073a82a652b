"""Optional literature search for the writeup (`--literature-search`): Semantic Scholar.

Answers are cached on disk by query, so a resumed or repeated run asks nothing twice. When
the service cannot be reached, is rate limited or answers badly, the search is skipped with a
message: it never hangs the run (one request, a short timeout, no retries).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

API_BASE = "https://api.semanticscholar.org/graph/v1"
FIELDS = "title,authors,year,venue,citationStyles,citationCount"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Paper:
    """One search hit with a usable BibTeX entry."""

    key: str
    """The BibTeX key."""
    title: str
    year: int | None
    bibtex: str
    """The entry as Semantic Scholar gives it."""


@dataclass(frozen=True)
class SearchResult:
    """What a search gave: papers, or why it was skipped."""

    papers: tuple[Paper, ...]
    skipped: str | None
    """None when the search ran (or came from the cache); else the reason, for people."""
    cached: bool = False


def cache_dir() -> Path:
    root = os.environ.get("HARNESS_CACHE_DIR") or os.path.expanduser("~/.cache/trusted_scientist")
    return Path(root) / "literature"


def search(query: str, limit: int = 10, *, api_base: str | None = None, cache: Path | None = None) -> SearchResult:
    """Search once (or read the cache); never raises for network trouble."""
    base = api_base or os.environ.get("S2_API_BASE", API_BASE)
    cache = cache or cache_dir()
    path = cache / (hashlib.sha256(f"{base}|{query}|{limit}".encode()).hexdigest()[:24] + ".json")
    if path.is_file():
        return SearchResult(_papers(json.loads(path.read_text(encoding="utf-8"))), None, cached=True)
    url = f"{base}/paper/search?" + urllib.parse.urlencode({"query": query, "limit": limit, "fields": FIELDS})
    headers = {"User-Agent": "trusted-scientist"}
    if os.environ.get("S2_API_KEY"):
        headers["x-api-key"] = os.environ["S2_API_KEY"]
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S) as resp:
            data = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        why = "rate limited (HTTP 429)" if exc.code == 429 else f"HTTP {exc.code}"
        return SearchResult((), f"literature search skipped: Semantic Scholar answered {why}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return SearchResult((), f"literature search skipped: Semantic Scholar cannot be reached ({exc})")
    except ValueError as exc:
        return SearchResult((), f"literature search skipped: the answer was not JSON ({exc})")
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return SearchResult(_papers(data), None)


def _papers(data: object) -> tuple[Paper, ...]:
    out = []
    for item in (data.get("data") or []) if isinstance(data, dict) else []:
        bib = ((item or {}).get("citationStyles") or {}).get("bibtex") or ""
        match = re.match(r"\s*@\w+\s*\{\s*([^,\s]+)\s*,", bib)
        if match and item.get("title"):
            out.append(Paper(match.group(1), item["title"], item.get("year"), bib.strip()))
    return tuple(out)


def merge_into_bib(bib_text: str, papers: tuple[Paper, ...]) -> tuple[str, list[str]]:
    """`bib_text` plus the papers whose keys it lacks; returns the new text and added keys."""
    present = set(re.findall(r"@\w+\s*\{\s*([^,\s]+)\s*,", bib_text))
    added = [p for p in papers if p.key not in present]
    text = bib_text.rstrip("\n") + "\n"
    for p in added:
        text += f"\n% Found by the literature search (Semantic Scholar).\n{p.bibtex}\n"
    return text, [p.key for p in added]
