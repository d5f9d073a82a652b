"""The three services: how to ask each one a search, and how to read its answer into records.

A `Request` keeps what may be written down (endpoint, public parameters) apart from what may
not (API keys, the contact e-mail): only the public part enters the cache key, the cache
entry and any message. Each parser raises `Malformed` with plain words for an answer it cannot
read; it never guesses a record from a partial one.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.literature.records import Record

USER_AGENT = "trusted-scientist (literature search)"


class Malformed(ValueError):
    """An answer with status 200 that is not what the service's documentation describes."""


@dataclass(frozen=True)
class Request:
    """One GET: its public part (cached, hashed, shown) and its secrets (sent, never written)."""

    url: str
    """Endpoint, without a query string."""
    params: tuple[tuple[str, str], ...]
    """Public query parameters, in a fixed order."""
    secret_params: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    secret_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def public(self) -> dict[str, Any]:
        return {"url": self.url, "params": dict(self.params)}

    def secrets(self) -> list[str]:
        return [v for _, v in (*self.secret_params, *self.secret_headers) if v]


@dataclass(frozen=True)
class Source:
    """A literature service: where it lives, how to ask it, how to read it."""

    name: str
    base: str
    """Default base URL."""
    base_env: str
    """Environment variable overriding the base URL (tests point it at a loopback server)."""
    build: Callable[[str, str, int, Mapping[str, str]], Request]
    """(base, query, limit, env) -> the request."""
    parse: Callable[[str], tuple[Record, ...]]
    """The body of a 200 answer -> records (raises Malformed)."""


def _json(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise Malformed(f"the answer is not JSON ({exc})") from exc


def _str(value: Any) -> str | None:
    return " ".join(value.split()) if isinstance(value, str) and value.strip() else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _year(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1000 < value < 3000:
        return value
    if isinstance(value, str) and re.match(r"^\d{4}", value):
        return int(value[:4])
    return None


def _doi(value: Any) -> str | None:
    text = _str(value)
    return re.sub(r"^https?://(dx\.)?doi\.org/", "", text, flags=re.I) if text else None


# --- Semantic Scholar (api.semanticscholar.org/graph/v1/paper/search) ---------------------
S2_FIELDS = "paperId,title,year,authors,venue,abstract,url,externalIds"


def _s2_build(base: str, query: str, limit: int, env: Mapping[str, str]) -> Request:
    key = env.get("S2_API_KEY", "")
    return Request(f"{base.rstrip('/')}/paper/search",
                   (("query", query), ("limit", str(min(limit, 100))), ("fields", S2_FIELDS)),
                   secret_headers=(("x-api-key", key),) if key else ())


def _s2_parse(body: str) -> tuple[Record, ...]:
    data = _json(body)
    if not isinstance(data, dict):
        raise Malformed("the answer is not a JSON object")
    items = data.get("data")
    if items is None and data.get("total") == 0:  # no hits: S2 leaves `data` out
        return ()
    if not isinstance(items, list):
        raise Malformed("the answer has no `data` list")
    out = []
    for item in items:
        if not isinstance(item, dict) or not _str(item.get("paperId")) or not _str(item.get("title")):
            raise Malformed("a hit lacks its paperId or title")
        ids = _dict(item.get("externalIds"))
        authors = tuple(n for a in item.get("authors") or [] if isinstance(a, dict) and (n := _str(a.get("name"))))
        out.append(Record("semantic_scholar", _str(item["paperId"]) or "", _str(item["title"]) or "", _year(item.get("year")),
                          authors, _str(item.get("venue")), _str(item.get("abstract")), _str(item.get("url")),
                          _doi(ids.get("DOI"))))
    return tuple(out)


# --- OpenAlex (api.openalex.org/works?search=) -------------------------------------------
OPENALEX_SELECT = "id,display_name,publication_year,authorships,primary_location,doi,abstract_inverted_index"


def _openalex_build(base: str, query: str, limit: int, env: Mapping[str, str]) -> Request:
    # The documented way: `api_key=` (and `mailto=` for the polite pool) as query parameters.
    secret = tuple((k, env[e]) for k, e in (("api_key", "OPENALEX_API_KEY"), ("mailto", "OPENALEX_EMAIL"))
                   if env.get(e))
    return Request(f"{base.rstrip('/')}/works",
                   (("search", query), ("per-page", str(min(limit, 200))), ("select", OPENALEX_SELECT)),
                   secret_params=secret)


def _abstract(index: Any) -> str | None:
    """OpenAlex ships abstracts as {word: [positions]}; put the words back in order."""
    if not isinstance(index, dict):
        return None
    words = sorted((p, w) for w, ps in index.items() if isinstance(ps, list) for p in ps if isinstance(p, int))
    return " ".join(w for _, w in words) or None


def _openalex_parse(body: str) -> tuple[Record, ...]:
    data = _json(body)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise Malformed("the answer has no `results` list")
    out = []
    for item in data["results"]:
        if not isinstance(item, dict) or not _str(item.get("id")) or not _str(item.get("display_name")):
            raise Malformed("a work lacks its id or display_name")
        authors = tuple(n for a in item.get("authorships") or []
                        if (n := _str(_dict(_dict(a).get("author")).get("display_name"))))
        location = _dict(item.get("primary_location"))
        venue_source = _dict(location.get("source"))
        work_id = (_str(item["id"]) or "").rstrip("/").rsplit("/", 1)[-1]
        out.append(Record("openalex", work_id, _str(item["display_name"]) or "", _year(item.get("publication_year")),
                          authors, _str(venue_source.get("display_name")), _abstract(item.get("abstract_inverted_index")),
                          _str(location.get("landing_page_url")) or _str(item["id"]), _doi(item.get("doi"))))
    return tuple(out)


# --- arXiv (export.arxiv.org/api/query, Atom) --------------------------------------------
_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"


def _arxiv_query(query: str) -> str:
    """arXiv's own syntax: every word in any field (`all:sparse AND all:autoencoders`)."""
    words = [w for w in re.split(r"[^\w\-.]+", query) if w and w.upper() not in ("AND", "OR", "ANDNOT")]
    return " AND ".join(f"all:{w}" for w in words)


def _arxiv_build(base: str, query: str, limit: int, env: Mapping[str, str]) -> Request:
    return Request(base.rstrip("/"), (("search_query", _arxiv_query(query)), ("start", "0"),
                                      ("max_results", str(min(limit, 100)))))


def _arxiv_parse(body: str) -> tuple[Record, ...]:
    # xml.etree resolves no external entities, and expat (>= 2.4.1, as Python ships it) stops
    # entity-expansion bombs; a DOCTYPE has no business in an Atom feed, so it is refused.
    if "<!DOCTYPE" in body[:2000] or "<!ENTITY" in body:
        raise Malformed("the answer declares a DOCTYPE or entities (not an arXiv Atom feed)")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise Malformed(f"the answer is not XML ({exc})") from exc
    if root.tag != f"{_ATOM}feed":
        raise Malformed("the answer is not an Atom feed")
    out = []
    for entry in root.findall(f"{_ATOM}entry"):
        link = (entry.findtext(f"{_ATOM}id") or "").strip()
        if "/api/errors" in link:
            raise Malformed(f"arXiv answered an error: {' '.join((entry.findtext(f'{_ATOM}summary') or '').split())}")
        m = re.search(r"arxiv\.org/abs/(.+?)(v\d+)?$", link)
        title = _str(entry.findtext(f"{_ATOM}title"))
        if not m or not title:
            raise Malformed("an entry lacks its arXiv id or title")
        authors = tuple(n for a in entry.findall(f"{_ATOM}author") if (n := _str(a.findtext(f"{_ATOM}name"))))
        out.append(Record("arxiv", m.group(1), title, _year(entry.findtext(f"{_ATOM}published")), authors,
                          _str(entry.findtext(f"{_ARXIV}journal_ref")), _str(entry.findtext(f"{_ATOM}summary")),
                          f"https://arxiv.org/abs/{m.group(1)}", _doi(entry.findtext(f"{_ARXIV}doi"))))
    return tuple(out)


SOURCES: dict[str, Source] = {
    "semantic_scholar": Source("semantic_scholar", "https://api.semanticscholar.org/graph/v1", "S2_API_BASE",
                               _s2_build, _s2_parse),
    "openalex": Source("openalex", "https://api.openalex.org", "OPENALEX_API_BASE", _openalex_build, _openalex_parse),
    "arxiv": Source("arxiv", "https://export.arxiv.org/api/query", "ARXIV_API_BASE", _arxiv_build, _arxiv_parse),
}
