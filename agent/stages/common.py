"""What every LLM-driven stage does the same way: ask (memoized by call id), and run one
edit session whose applied edits are each one commit, resumable after a crash."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.context import RunContext
from agent.errors import AgentError, ReplayDiverged

if TYPE_CHECKING:
    from agent.llm.caching import Breakpoint

PROTECTED = (".git/*", "run_*/*", "logs/*", "idea.json", "preset.json", "journal.jsonl", "journal/*",
             "template.toml", "experiment/*", "harness/*")
COMPLETED = "ALL_COMPLETED"


@dataclass(frozen=True)
class EditOutcome:
    """An edit session as the stages need it (also rebuilt from the journal on resume)."""

    ok: bool
    changed_files: tuple[str, ...]
    problem: str | None
    final_reply: str
    first_reply: str


class StageFailed(AgentError):
    """A stage could not reach its goal; what it produced is committed."""

    exit_code = 6


def policy(ctx: RunContext, editable: tuple[str, ...] | None = None):  # noqa: ANN201
    from agent.edits import EditPolicy
    from agent.notes import recorded_sections

    return EditPolicy(root=ctx.ws.root, editable=frozenset(editable or ctx.template.editable),
                      protected=PROTECTED, kept=recorded_sections(ctx))


def ask_text(ctx: RunContext, messages: list[dict[str, str]], *, stage: str, prompt_kind: str,
             call_id: str, cache: Sequence[Breakpoint] | None = None) -> str:
    """The model's answer, shrinking nothing: a context overflow is a stage failure here.
    `cache`: the call's cache breakpoints (None: the system message's)."""
    from agent.llm import ContextOverflow

    answer = ctx.ask(messages, stage=stage, prompt_kind=prompt_kind, call_id=call_id, cache=cache)
    if isinstance(answer, ContextOverflow):
        raise StageFailed(f"{stage}: the prompt for {call_id} does not fit the model's context "
                          f"window ({answer}). Use a model with a larger context.")
    return str(answer.text)


def edit_session(ctx: RunContext, messages: list[dict[str, str]], *, stage: str, prompt_kind: str,
                 call_id: str, label: str, require_change: bool = True,
                 editable: tuple[str, ...] | None = None,
                 cache: Sequence[Breakpoint] | None = None) -> EditOutcome:
    """Ask for an edit, apply it with bounded reflections, commit each applied reply.
    `cache`: the first call's cache breakpoints (None: the system message's); a reflection
    marks its last message too, since the next reflection resends it."""
    finished = ctx.find("edit.session_finished", call_id=call_id)
    if finished is not None:
        d = finished.data
        return EditOutcome(d["ok"], tuple(d["changed_files"]), d.get("problem"), d["final_reply"], d["first_reply"])
    started = ctx.find("edit.session_started", call_id=call_id)
    if started is not None and ctx.ws.head() != started.data["head"]:
        # A crash in the middle of this session: redo it from its start; the model's answers
        # come back from the journal, so the same edits are made again.
        ctx.ws.reset_to(started.data["head"])
        ctx.record("edit.session_rewound", call_id=call_id, head=started.data["head"])
    else:
        ctx.record("edit.session_started", call_id=call_id, head=ctx.ws.head())
    from agent.edits import EditReport, converse
    from agent.llm.caching import MAX_BREAKPOINTS, Breakpoint, system_breakpoint

    first = ask_text(ctx, messages, stage=stage, prompt_kind=prompt_kind, call_id=call_id, cache=cache)
    kept = list(system_breakpoint(messages) if cache is None else cache)
    history = [*messages, {"role": "assistant", "content": first}]
    n_reflections = 0

    def ask(feedback: str) -> str | None:
        nonlocal n_reflections
        n_reflections += 1
        history.append({"role": "user", "content": feedback})
        try:
            marks = [*kept[:1], *kept[1:][-(MAX_BREAKPOINTS - 2):], Breakpoint(len(history) - 1)]
            text = ask_text(ctx, history, stage=stage, prompt_kind="edit.retry",
                            call_id=f"{call_id}/reflection{n_reflections}", cache=marks)
        except ReplayDiverged as exc:
            raise ReplayDiverged(f"{exc}\nThe recorded edits of {call_id} no longer apply here:\n{feedback}") from exc
        history.append({"role": "assistant", "content": text})
        return text

    def on_applied(report: EditReport) -> None:
        ctx.crashpoint("edit_applied")
        files = list(report.changed_files)
        sha = ctx.ws.commit(files, f"{stage}: {label}: edit {', '.join(files)}")
        ctx.record("edit.applied", call_id=call_id, files=files, sha=sha,
                   blocks=len(report.applied), how=[str(a.kind) for a in report.applied])

    def on_report(report: EditReport, repairs: list[str]) -> None:  # journaled as each reply is applied
        for note in repairs:
            ctx.record("edit.repaired", call_id=call_id, note=note)
        for f in report.failed:
            ctx.record("edit.failed", call_id=call_id, path=f.block.path, reason=f.reason)
        for r in report.refused:
            ctx.record("edit.refused", call_id=call_id, path=r.block.path, reason=r.reason)

    session = converse(first, ask, policy(ctx, editable), max_reflections=ctx.config.max_reflections,
                       require_change=require_change, on_applied=on_applied, on_report=on_report)
    outcome = EditOutcome(session.ok, tuple(session.changed_files), session.problem,
                          session.final_reply, first)
    ctx.record("edit.session_finished", call_id=call_id, ok=outcome.ok, changed_files=list(outcome.changed_files),
               problem=outcome.problem, final_reply=outcome.final_reply, first_reply=first)
    return outcome




def prose(reply: str) -> str:
    """A reply without its edit blocks (and without file-name lines above them)."""
    text = re.sub(r"(?ms)^[^\n]*\n```[^\n]*\n<{5,9} SEARCH.*?>{5,9} REPLACE\s*\n```[ \t]*\n?", "", reply)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def is_completed(reply: str) -> bool:
    return COMPLETED in reply
