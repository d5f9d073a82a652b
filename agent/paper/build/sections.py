"""The parts of the paper, in the order the writeup stage drafts them.

Related Work comes last in drafting (it compares against everything else) but second in the
paper. Each part starts as a `\\writeupstub{<stub>}` line of the skeleton (latex/skeleton.tex).
"""

from __future__ import annotations

import re
from typing import Literal

Part = Literal["Title and Abstract", "Introduction", "Background", "Method", "Experimental Setup",
               "Results", "Conclusion", "Related Work"]
DRAFT_ORDER: tuple[Part, ...] = ("Title and Abstract", "Introduction", "Background", "Method",
                                 "Experimental Setup", "Results", "Conclusion", "Related Work")
# The \section title (or abstract) each part lives under, as the grounding checker names it.
SECTION_TITLES: dict[Part, tuple[str, ...]] = {
    "Title and Abstract": ("Front matter", "Abstract"),
    "Introduction": ("Introduction",), "Background": ("Background",), "Method": ("Method",),
    "Experimental Setup": ("Experimental Setup",), "Results": ("Results",),
    "Conclusion": ("Conclusion",), "Related Work": ("Related Work",),
}


def stubs(part: Part) -> tuple[str, ...]:
    """The skeleton lines the drafting of `part` replaces."""
    names = ("Title", "Abstract") if part == "Title and Abstract" else (part,)
    return tuple(f"\\writeupstub{{{n}}}" for n in names)


def is_drafted(tex: str, part: Part) -> bool:
    """Whether none of the part's stubs is left in `tex`."""
    return not any(re.search(re.escape(s), tex) for s in stubs(part))
