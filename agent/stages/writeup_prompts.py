"""The writeup's messages, laid out for providers' prompt caches.

Every writeup call starts with the same system message: the writeup's rules
(`writeup_system.j2`) and the paper's material (`writeup_context.j2`: idea, runs, references,
figures, statistics, hypotheses, the macros of results.tex, notes.txt), which do not change
while the paper is written. What changes (the current paper and the part to draft, a refine
request, findings to fix) comes after it, so consecutive calls share the long prefix and a
provider serves it from its cache (`agent.llm.caching`). A draft's prompt starts with the
paper, whose drafted sections the next draft starts with too (`draft`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from agent import prompting, stats
from agent.llm.caching import Breakpoint


def macro_listing(macros: Sequence[Any]) -> str:
    """The macros of results.tex for the prompts, one line per run and metric: the value macro
    and, after `|`, each macro whose name extends it (`\\RunOneMse = 0.19 | Low 0.18 | ...`),
    instead of one annotated line per macro (a third of the tokens, the same names and values).
    A `DeltaCI` that only spells out `DeltaLow` and `DeltaHigh` is listed by name alone
    (`writeup_context.j2` says what it prints)."""
    lines: list[str] = []
    i = 0
    while i < len(macros):
        m = macros[i]
        j = i + 1
        if m.kind == "value" and m.run:
            while (j < len(macros) and macros[j].kind != "value" and macros[j].run == m.run
                   and macros[j].metric == m.metric and macros[j].name.startswith(m.name)):
                j += 1
        group = {g.name[len(m.name):]: g.value for g in macros[i + 1:j]}
        parts = [f"\\{m.name} = {m.value}"] + [
            suffix if suffix == "DeltaCI" and value == _spelled_interval(group) else f"{suffix} {value}"
            for suffix, value in group.items()]
        where = f"  ({m.run}, {m.metric})" if m.run else ""
        lines.append(" | ".join(parts) + where)
        i = j
    return "\n".join(lines)


def _spelled_interval(group: dict[str, str]) -> str | None:
    """What `...DeltaCI` prints when it spells out the interval of `...DeltaLow`, `...DeltaHigh`."""
    if "DeltaLow" not in group or "DeltaHigh" not in group:
        return None
    return f"{round(stats.LEVEL * 100)}\\% CI [{group['DeltaLow']}, {group['DeltaHigh']}]"


def notes_for_writeup(notes: str, recorded: Iterable[str], labels: Iterable[str]) -> str:
    """notes.txt as the writeup's material shows it: the orchestrator's record of each run
    (`recorded`, as the journal holds it) without its metric lines (each headline metric's mean,
    interval, per-seed values and verdict), which the macros of results.tex and the comparisons
    already hold and which a paper cites only through the macros; what was tried, the
    configuration, failed seeds, gates and every analysis stay as they are."""
    heads = tuple(f"- {label}: " for label in labels)
    for section in recorded:
        if not section.strip() or section not in notes:
            continue
        kept: list[str] = []
        for line in section.splitlines(keepends=True):
            if line.startswith("Metrics are "):
                kept.append("Metrics: in the macros of results.tex (listed above) and the comparisons.\n")
            elif not line.startswith(heads):
                kept.append(line)
        notes = notes.replace(section, "".join(kept))
    return notes


def system_message(template_name: str, template_description: str, **material: Any) -> dict[str, str]:
    """The system message every writeup call shares: the rules, then the paper's material."""
    rules = prompting.render("writeup_system", template_name=template_name,
                             template_description=template_description)
    return {"role": "system", "content": rules + "\n" + prompting.render("writeup_context", **material)}


def paper_before(tex: str, stubs: Sequence[str]) -> str:
    """The paper up to the line of the first of `stubs` it still holds ("" if none): what the
    drafting of their part leaves as it is, and the next part's draft starts with (parts are
    drafted in document order, but Related Work)."""
    found = [tex.find(s) for s in stubs if s in tex]
    return tex[:tex.rfind("\n", 0, min(found)) + 1] if found else ""


def draft(system: dict[str, str], part: str, stubs: Sequence[str], table_macro: str, tex: str,
          shared: str) -> tuple[list[dict[str, str]], list[Breakpoint], str]:
    """The messages that ask for `part`, where they are cached, and the paper prefix the next
    draft will share. Breakpoints: after the system message; after `shared` (the prefix the
    draft before wrote to the cache), where the paper still starts with it, so this call reads
    it; after the paper before this part's stubs, written for the next draft; at the end, since
    the part's refine resends the whole prompt. Four, the most a provider accepts."""
    user = prompting.render("writeup_section", section=part, stubs=list(stubs), table_macro=table_macro, tex=tex)
    start = user.index(tex)  # the message opens with the paper
    before = paper_before(tex, stubs)
    marks = [Breakpoint(0), Breakpoint(1)]
    if shared and tex.startswith(shared):
        marks.append(Breakpoint(1, start + len(shared)))
    if before:
        marks.append(Breakpoint(1, start + len(before)))
    return [system, {"role": "user", "content": user}], marks, before
