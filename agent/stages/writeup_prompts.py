"""The writeup's messages, laid out for providers' prompt caches.

Every writeup call starts with the same system message: the writeup's rules
(`writeup_system.j2`) and the paper's material (`writeup_context.j2`: idea, runs, references,
figures, statistics, hypotheses, the macros of results.tex, notes.txt), which do not change
while the paper is written. What changes (the part to draft and the current paper, a refine
request, findings to fix) comes after it, so consecutive calls share the long prefix and a
provider serves it from its cache (`agent.llm.caching`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent import prompting


def macro_listing(macros: Sequence[Any]) -> str:
    """The macros of results.tex for the prompts, one line per run and metric: the value macro
    and, after `|`, each macro whose name extends it (`\\RunOneMse = 0.19 | Low 0.18 | ...`),
    instead of one annotated line per macro (a third of the tokens, the same names and values)."""
    lines: list[str] = []
    i = 0
    while i < len(macros):
        m = macros[i]
        j = i + 1
        if m.kind == "value" and m.run:
            while (j < len(macros) and macros[j].kind != "value" and macros[j].run == m.run
                   and macros[j].metric == m.metric and macros[j].name.startswith(m.name)):
                j += 1
        parts = [f"\\{m.name} = {m.value}"] + [f"{g.name[len(m.name):]} {g.value}" for g in macros[i + 1:j]]
        where = f"  ({m.run}, {m.metric})" if m.run else ""
        lines.append(" | ".join(parts) + where)
        i = j
    return "\n".join(lines)


def system_message(template_name: str, template_description: str, **material: Any) -> dict[str, str]:
    """The system message every writeup call shares: the rules, then the paper's material."""
    rules = prompting.render("writeup_system", template_name=template_name,
                             template_description=template_description)
    return {"role": "system", "content": rules + "\n" + prompting.render("writeup_context", **material)}
