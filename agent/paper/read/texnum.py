"""Run references and run counts: `Run 3`, `Runs 2--4`, `run_5`, `eight runs`.

The claims checker (`agent.paper.ground.claims`) finds them on the prose view (`agent.paper.read.prose`);
the grounding rules find run references in the text `agent.paper.read.reading` read, with the same
`run_refs_in`. Numbers themselves are `agent.paper.read.mentions`'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.paper.read.prose import prose_view

_RUN_REF = re.compile(r"\b([Rr]uns?)(?:\s|~|\\,|\\ |\\?_|\{|\})*(\d+)(?![.,]\d)((?:\s*(?:,|and|&|--|-|–|—|to|through|or)"
                      r"\s*(?:[Rr]uns?(?:\s|~|\\?_)*)?\d+(?![.,]?\d|\s*\\?%))*)")
WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                    "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_COUNT = re.compile(r"\b(" + "|".join(WORDS) + r"|\d+)\s+(?:(?:complete|full|training|experimental|additional|"
                    r"separate|independent|different|distinct|total|new|further|successful|main)\s+){0,2}"
                    r"(runs|experiments|trials|configurations|variants|ablations)\b", re.I)


@dataclass(frozen=True)
class RunRef:
    """`Run 3`, `Runs 2--4`, `run_5` in the prose."""

    text: str
    indices: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class CountClaim:
    """`eight runs`, `3 experiments`."""

    text: str
    count: int
    start: int


def run_refs_in(text: str, offset: int = 0) -> list[RunRef]:
    """Every `Run N` / `Runs N--M` / `run_N` in `text` (a prose view, or text already read by
    `agent.paper.read.reading`); positions are `offset` + the position in `text`."""
    refs = []
    for m in _RUN_REF.finditer(text):
        indices: list[int] = [int(m.group(2))]
        rest = m.group(3) or ""
        for sep, num in re.findall(r"(,|and|&|--|-|–|—|to|through|or)\s*(?:[Rr]uns?(?:\s|~|\\?_)*)?(\d+)", rest):
            n = int(num)
            if sep in ("--", "-", "–", "—", "to", "through") and n > indices[-1] and n - indices[-1] < 50:
                indices.extend(range(indices[-1] + 1, n + 1))
            else:
                indices.append(n)
        refs.append(RunRef(m.group(0), tuple(indices), offset + m.start(), offset + m.end()))
    return refs


def run_refs(tex: str, view: str | None = None) -> list[RunRef]:
    """Every run reference in the prose of `tex`, with its text as written in the source."""
    view = prose_view(tex) if view is None else view
    return [RunRef(tex[r.start:r.end], r.indices, r.start, r.end) for r in run_refs_in(view)]


def count_value(word: str) -> int:
    """`eight` or `8` as a number (a count the prose writes in words or digits)."""
    word = word.lower()
    return WORDS[word] if word in WORDS else int(word)


def count_claims(tex: str, view: str | None = None) -> list[CountClaim]:
    """`eight runs`, `3 experiments`: how many runs the prose says there were."""
    view = prose_view(tex) if view is None else view
    return [CountClaim(m.group(0), count_value(m.group(1)), m.start()) for m in _COUNT.finditer(view)]


