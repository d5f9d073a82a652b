"""What a literature search gives: one `Record` per paper, one `Search` per question asked.

A record's BibTeX entry is built here from its fields, never taken from text a model or a
service typed: the fields are escaped for LaTeX and folded to what pdflatex (T1, utf8) can set,
so an entry can neither break the compile nor smuggle a command into the paper.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["live", "replay", "offline"]
"""live: ask the services, reusing cached answers; replay: cache only, a miss raises
`ReplayMiss`; offline: cache only, a miss is a search with status "unavailable"."""
Status = Literal["ok", "empty", "rate_limited", "failed", "unavailable"]
"""ok: the service answered with hits; empty: it answered 200 with none; rate_limited: 429
past the deadline, or the source's circuit is open after repeated 429s; failed: 5xx, a
timeout, a refused request or an answer we could not read; unavailable: not asked (offline
miss, or the layer's time budget was spent before asking)."""
SOURCES = ("semantic_scholar", "openalex", "arxiv")


class ReplayMiss(RuntimeError):
    """Replay mode met a search that was never recorded: replay cannot say what it answered."""


@dataclass(frozen=True)
class Record:
    """One paper, normalized across sources."""

    source: str
    """"semantic_scholar" | "openalex" | "arxiv"."""
    id: str
    """The source's own id: S2 paperId, OpenAlex W..., arXiv id (without version)."""
    title: str
    year: int | None
    authors: tuple[str, ...]
    """Display names, in the order the source gives them."""
    venue: str | None
    abstract: str | None
    url: str | None
    doi: str | None
    """Bare DOI (`10.xxxx/...`), without the https://doi.org/ prefix."""
    bibtex: str = field(default="", compare=False)
    """The BibTeX entry built from the fields above (key = `key`)."""
    key: str = field(default="", compare=False)
    """A stable BibTeX key: first author's last name, year, first significant title word."""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", bibtex_key(self.authors, self.year, self.title))
        if not self.bibtex:
            object.__setattr__(self, "bibtex", bibtex_entry(self, self.key))

    def summary(self) -> dict[str, object]:
        """What provenance keeps of a paper seen: source, id, title, year."""
        return {"source": self.source, "id": self.id, "title": self.title, "year": self.year}


@dataclass(frozen=True)
class Search:
    """One search at one source (or the combined outcome of a fallback across sources)."""

    query: str
    source: str
    status: Status
    records: tuple[Record, ...]
    reason: str | None
    """Plain words when status is not "ok"."""
    cache_key: str
    """sha256 of (source, normalized request): the cache entry's file name."""
    from_cache: bool

    @property
    def answered(self) -> bool:
        """The service answered (with or without hits): the search tells something."""
        return self.status in ("ok", "empty")


_STOPWORDS = frozenset("a an the on of in for to towards toward and with via from by at is are do does "
                       "what when why how can".split())
_GREEK_MATH = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
               "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"}
_GREEK_CAPITALS = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "%": r"\%",
                  "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def last_name(author: str) -> str:
    """`Hoagy Cunningham` -> Cunningham; `Cunningham, Hoagy` -> Cunningham."""
    author = author.strip()
    if "," in author:
        return author.split(",")[0].strip()
    parts = author.split()
    return parts[-1] if parts else ""


def bibtex_key(authors: tuple[str, ...], year: int | None, title: str) -> str:
    """firstauthorYEARfirstword, as the curated bibs write them (`cunningham2024sparse`)."""
    name = _ascii_word(last_name(authors[0])) if authors else ""
    words = [w for w in (_ascii_word(t) for t in re.split(r"[\s\-:/]+", title)) if w]
    word = next((w for w in words if w not in _STOPWORDS), words[0] if words else "")
    return (name or "anon") + (str(year) if year else "") + word


def _char(c: str) -> str:
    """One character as pdflatex (T1 + utf8) can set it."""
    if c in _LATEX_SPECIAL:
        return _LATEX_SPECIAL[c]
    if ord(c) < 128:
        return c if c.isprintable() else " "
    if 0xC0 <= ord(c) <= 0x17F and c not in "×÷":  # Latin-1 and Latin Extended-A letters: utf8.def sets them
        return c
    name = unicodedata.name(c, "")
    if name.startswith("GREEK SMALL LETTER ") and name.split()[-1].lower() in _GREEK_MATH:
        return f"$\\{name.split()[-1].lower()}$"
    if name.startswith("GREEK CAPITAL LETTER ") and name.split()[-1].title() in _GREEK_CAPITALS:
        return f"$\\{name.split()[-1].title()}$"
    if unicodedata.category(c).startswith("Z"):
        return " "
    return unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()


def latex_text(text: str) -> str:
    """`text` as a BibTeX field value: LaTeX specials escaped, one line, nothing pdflatex refuses."""
    return " ".join("".join(_char(c) for c in text).split())


def bibtex_entry(record: Record, key: str) -> str:
    """The entry for `record` under `key`: @article with a venue, @misc (arXiv e-print) without."""
    fields: list[tuple[str, str]] = [("title", "{" + latex_text(record.title) + "}")]
    if record.authors:
        fields.append(("author", " and ".join(latex_text(a) for a in record.authors)))
    if record.year:
        fields.append(("year", str(record.year)))
    kind = "article" if record.venue else "misc"
    if record.venue:
        fields.append(("journal", latex_text(record.venue)))
    if record.source == "arxiv":
        fields += [("eprint", latex_text(record.id)), ("archivePrefix", "arXiv")]
    if record.doi:
        fields.append(("doi", latex_text(record.doi)))
    if record.url and re.fullmatch(r"https?://[^\s{}\\%#]+", record.url):
        fields.append(("url", record.url))
    body = ",\n".join(f"  {name:<13} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}"
