"""The writeup's citations (`--literature-search`), through the literature layer.

Papers come from the run's own cache of `agent.literature` (`literature/<source>/<sha256>.json`
in the run directory), which also reads the idea's novelty-search cache when the idea has one
(`<idea>.literature/` beside its file): what the novelty check saw is offered first, then what
a search for the idea's title finds. Every entry added to references.bib is built by the
layer from a search result's fields (never typed by a model), and the cache entries it came
from are committed with references.bib, so a review sees what was searched and answered.
`agent.paper.tex.checks` then refuses any `\\cite` key that no bib entry has.

A search that cannot run (offline, rate limited, failed) is skipped with its reason: it never
hangs the run (the layer's deadline) and is never mistaken for "no related work".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.literature import Literature, Mode, Record, Search
from agent.literature.records import bibtex_entry

RUN_DIR = "literature"
"""The run directory's cache of the layer (committed with the writeup step that used it)."""
IDEA_CACHE_SUFFIX = ".literature"
"""An idea's novelty-search cache: `<ideas dir>/<name>.literature/`."""
MAX_PAPERS = 12
DEADLINE_S = 60.0


@dataclass(frozen=True)
class SearchResult:
    """What the writeup's search gave: papers, or why it was skipped."""

    papers: tuple[Record, ...]
    skipped: str | None
    """None when papers were found (or came from a cache); else the reason, for people."""
    cached: bool = False
    """Every paper came from a cache (nothing was asked)."""
    used: tuple[Path, ...] = ()
    """The cache entries read or written: to commit with references.bib."""
    searches: tuple[Search, ...] = ()
    """The searches asked, per source, and the cached ones offered (for the journal)."""


def idea_caches(idea_path: Path, idea_name: str) -> list[Path]:
    """The idea's novelty-search cache, when it has one."""
    folder = idea_path.with_name(idea_name + IDEA_CACHE_SUFFIX)
    return [folder] if folder.is_dir() else []


def search(query: str, limit: int = 10, *, cache: Path, mode: Mode = "live", also_read: Sequence[Path] = (),
           env: Mapping[str, str] | None = None, deadline_s: float = DEADLINE_S) -> SearchResult:
    """The papers the cached (novelty) searches saw, then a search for `query`; never raises
    for network trouble (replay mode aside: a miss there is `ReplayMiss`)."""
    lit = Literature(cache, mode, env=env, deadline_s=deadline_s, also_read=also_read)
    offered = lit.cached_searches()
    asked = lit.search(query, limit=limit)
    papers = _unique([r for s in (*offered, asked) for r in s.records])[:MAX_PAPERS]
    searches = (*offered, *lit.log)
    skipped = None if papers else f"literature search skipped: {asked.reason or asked.status}"
    return SearchResult(tuple(papers), skipped, cached=all(s.from_cache for s in searches if s.records),
                        used=tuple(lit.used_files()), searches=searches)


def _norm_title(title: str) -> str:
    return re.sub(r"[^a-z0-9]", "", title.lower())


def _unique(records: list[Record]) -> list[Record]:
    out: list[Record] = []
    seen: set[tuple[str, str]] = set()
    for r in records:
        ids = {("title", _norm_title(r.title))} | ({("doi", r.doi.lower())} if r.doi else set())
        if not ids & seen:
            out.append(r)
        seen |= ids
    return out


def _bib_titles(bib_text: str) -> dict[str, str]:
    from agent.paper.tex.checks import bib_entries

    return {e.key: _norm_title(e.title) for e in bib_entries(bib_text)}


def merge_into_bib(bib_text: str, papers: Sequence[Record]) -> tuple[str, list[str]]:
    """`bib_text` plus the papers it lacks (a paper already there under its title is not added
    again; a key taken by another paper gets a letter); returns the new text and added keys."""
    titles = _bib_titles(bib_text)
    present = set(titles.values())
    text, added = bib_text.rstrip("\n") + "\n", list[str]()
    for p in papers:
        if _norm_title(p.title) in present:
            continue
        key = p.key
        for suffix in "bcdefghijklmnopqrstuvwxyz":
            if key not in titles:
                break
            key = p.key + suffix
        where = re.sub(r"[^\w./:-]", "", f"{p.source} {p.id}".replace(" ", ":"))
        text += f"\n% Found by a literature search ({where}); built from its fields.\n"
        text += bibtex_entry(p, key) + "\n"
        titles[key], added = _norm_title(p.title), [*added, key]
        present.add(titles[key])
    return text, added
