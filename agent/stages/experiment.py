"""The experiment stage: plan, edit, run, learn — until ALL_COMPLETED or the budget is spent.

Each turn is one self-contained prompt (idea, plan, compact results, current code), so the
input stays small and a resumed run rebuilds it from files and the journal alone.
"""

from __future__ import annotations

import re

from agent import prompting, runs
from agent.context import RunContext
from agent.results import finished_runs, results_table
from agent.runs import RunAttempt
from agent.stages.common import StageFailed, edit_session, is_completed, prose

STAGE = "experiment"
CODE_FILES_EXCLUDED = ("notes.txt", "plot.py", "latex/template.tex")
NOTES_TAIL_CHARS = 1500
PLAN_CHARS = 2000


def _code_files(ctx: RunContext) -> list[str]:
    """The editable files this stage shows and changes: the experiment code."""
    return [f for f in ctx.template.editable if f not in CODE_FILES_EXCLUDED]


def _files(ctx: RunContext) -> list[dict[str, str]]:
    out = []
    for rel in _code_files(ctx):
        path = ctx.ws.resolve(rel)
        if path.is_file():
            out.append({"path": rel, "text": path.read_text(encoding="utf-8")})
    return out


def _system(ctx: RunContext) -> dict[str, str]:
    text = prompting.render(
        "system", template_name=ctx.template.name, template_description=ctx.template.description,
        editable=[*_code_files(ctx), "notes.txt"], command=" ".join(ctx.template.run_command))
    return {"role": "system", "content": text}


def _notes_tail(ctx: RunContext) -> str:
    text = ctx.ws.resolve("notes.txt").read_text(encoding="utf-8")
    return text[-NOTES_TAIL_CHARS:] if len(text) > NOTES_TAIL_CHARS else text


def _run_summary(reply: str, run: int) -> str:
    """The model's one-line description of run `run` (`Run N: ...`), else its first line."""
    match = re.search(rf"(?im)^\W*run\s*{run}\s*[:\-–]\s*(.+)$", reply)
    if match:
        return match.group(1).strip()[:300]
    first = next((line.strip() for line in prose(reply).splitlines() if line.strip()), "")
    return first[:300] or "(no description given)"


def run_stage(ctx: RunContext) -> str:
    """Returns a one-line summary; raises StageFailed when no run succeeded."""
    cmd = " ".join(ctx.template.run_command)
    system = _system(ctx)
    max_runs, max_attempts = ctx.config.max_runs, ctx.config.max_attempts
    plan = ""
    run, attempt = 1, 1
    last: RunAttempt | None = None
    edit_problem: str | None = None
    succeeded: list[int] = []
    summary = ""
    while run <= max_runs:
        table = results_table(ctx.template, finished_runs(ctx.ws.root, ctx.template))
        if run == 1 and attempt == 1:
            kind = "experiment.plan"
            user = prompting.render("experiment_plan", idea=ctx.idea.fields, max_runs=max_runs,
                                    baseline_table=table, files=_files(ctx), command=cmd)
        elif attempt > 1:
            kind = "experiment.failure"
            outcome = (f"was not run: {edit_problem}" if edit_problem else last.describe if last else "failed")
            user = prompting.render("experiment_failure", run=run, attempt=attempt - 1, max_attempts=max_attempts,
                                    outcome=outcome, stderr_tail="" if edit_problem else (last.stderr_tail if last else ""),
                                    plan=plan, files=_files(ctx), command=cmd)
        else:
            kind = "experiment.results"
            user = prompting.render("experiment_results", run=run - 1, next_run=run, max_runs=max_runs,
                                    results_table=table, run_summary=last.describe if last else "",
                                    plan=plan, notes_tail=_notes_tail(ctx), files=_files(ctx), command=cmd)
        ctx.status(f"run {run} attempt {attempt}: asking the model ({kind})")
        call_id = f"{STAGE}/run{run}/attempt{attempt}"
        messages = [system, {"role": "user", "content": user}]
        label = {"experiment.plan": "plan and run 1", "experiment.results": f"after run {run - 1}",
                 "experiment.failure": f"fix run {run}"}[kind] + f" (attempt {attempt})"
        session = edit_session(ctx, messages, stage=STAGE, prompt_kind=kind, call_id=call_id,
                               label=label, require_change=False,
                               editable=(*_code_files(ctx), "notes.txt"))
        if not plan:
            plan = prose(session.first_reply)[:PLAN_CHARS]
        code_changed = [f for f in session.changed_files if f in _code_files(ctx)]
        if is_completed(session.final_reply) and not code_changed:
            ctx.record("experiment.completed_by_model", after_run=run - 1)
            break
        edit_problem = None
        if not session.ok:
            edit_problem = f"its edits did not apply: {session.problem}"
        elif not code_changed:
            edit_problem = "the reply changed no code, so there was nothing new to run"
        if edit_problem:
            ctx.record("run.skipped", run=run, attempt=attempt, reason=edit_problem)
        else:
            if attempt == 1 or not summary:  # a fix keeps what the run is meant to test
                summary = _run_summary(session.first_reply, run)
            if ctx.find("run.planned", run=run, attempt=attempt) is None:
                ctx.record("run.planned", run=run, attempt=attempt, summary=summary, commit=ctx.ws.head())
            last = runs.execute(ctx, run, attempt)
            if last.ok:
                runs.append_notes(ctx, run, summary)
                succeeded.append(run)
                run, attempt, summary = run + 1, 1, ""
                continue
        attempt += 1
        if attempt > max_attempts:
            ctx.record("experiment.gave_up", run=run, attempts=max_attempts)
            break
    return _finish(ctx, succeeded, run, attempt > max_attempts)


def _finish(ctx: RunContext, succeeded: list[int], run: int, gave_up: bool) -> str:
    if not succeeded:
        why = (f"run {run} failed all {ctx.config.max_attempts} attempts" if gave_up
               else "the model answered ALL_COMPLETED before any run succeeded")
        raise StageFailed(f"experiment stage failed: {why}; no result beyond the baseline exists. "
                          f"See {ctx.ws.root}/journal.jsonl and the logs/ folder.")
    ran = ", ".join(f"run_{i}" for i in succeeded)
    if gave_up:
        return (f"{len(succeeded)} run(s) succeeded ({ran}); run {run} failed all "
                f"{ctx.config.max_attempts} attempts, so the stage ends with what it has")
    return f"{len(succeeded)} run(s) succeeded ({ran})"
