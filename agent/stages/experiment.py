"""The experiment stage: plan, edit, run, learn — until ALL_COMPLETED or the budget is spent.

Each turn is one self-contained prompt (idea, plan, compact results, current code), so the
input stays small and a resumed run rebuilds it from files and the journal alone.

The plan's hypotheses are registered (`hypotheses.json`, committed) before run 1 executes;
amendments in later replies are appended beside them; when the stage ends, code judges them
from the runs' intervals (`hypotheses_verdicts.json`). See `agent.hypotheses`.
"""

from __future__ import annotations

import re
import time
from typing import Any

from agent import hypotheses as hyp
from agent import judging, notes, prompting, runs
from agent.context import RunContext
from agent.errors import ReplayDiverged
from agent.llm.caching import Breakpoint
from agent.results import finished_runs, results_table
from agent.runs import RunAttempt
from agent.stages.common import StageFailed, ask_text, edit_session, is_completed, prose

STAGE = "experiment"
CODE_FILES_EXCLUDED = ("notes.txt", "plot.py", "latex/template.tex")
NOTES_TAIL_CHARS = 1500
PLAN_CHARS = 2000
HYPOTHESES_STEP = f"{STAGE}/hypotheses"
HYPOTHESES_REQUESTS = 2
"""How many times the model is asked for a corrected hypotheses block before run 1."""


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
    """The message every turn starts with: the rules, the codebase and the idea (none of which
    change during the stage, so providers' prompt caches serve it to every turn after the first)."""
    text = prompting.render(
        "system", template_name=ctx.template.name, template_description=ctx.template.description,
        editable=[*_code_files(ctx), "notes.txt"], command=" ".join(ctx.template.run_command),
        idea=ctx.idea.fields)
    return {"role": "system", "content": text}


def _breakpoints(user: str, plan: str) -> list[Breakpoint]:
    """Where a turn's prompt is cached: after the system message, and after the plan that opens
    the turns after run 1's (the same in each of them). The rest of a turn (results, notes, the
    code) is not marked: the next turn does not start with it."""
    head = f"Your plan was:\n{plan}"
    marks = [Breakpoint(0)]
    if plan and user.startswith(head):
        marks.append(Breakpoint(1, len(head)))
    return marks


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
    doc = _registered(ctx)  # None until run 1 is about to execute
    replies_before_run1: list[str] = []
    refused: list[str] = []  # amendments refused in the last reply, told in the next results prompt
    while run <= max_runs:
        table = results_table(ctx.template, finished_runs(ctx.ws.root, ctx.template))
        if run == 1 and attempt == 1:
            kind = "experiment.plan"
            user = prompting.render("experiment_plan", idea=ctx.idea.fields, max_runs=max_runs,
                                    baseline_table=table, files=_files(ctx), command=cmd,
                                    metrics=_metrics(ctx))
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
                                    plan=plan, notes_tail=_notes_tail(ctx), files=_files(ctx), command=cmd,
                                    hypotheses=_provisional(ctx, doc),
                                    hypotheses_problem=doc.problem if doc else None,
                                    amendment_problems=refused)
        ctx.status(f"run {run} attempt {attempt}: asking the model ({kind})")
        call_id = f"{STAGE}/run{run}/attempt{attempt}"
        messages = [system, {"role": "user", "content": user}]
        label = {"experiment.plan": "plan and run 1", "experiment.results": f"after run {run - 1}",
                 "experiment.failure": f"fix run {run}"}[kind] + f" (attempt {attempt})"
        session = edit_session(ctx, messages, stage=STAGE, prompt_kind=kind, call_id=call_id,
                               label=label, require_change=False,
                               editable=(*_code_files(ctx), "notes.txt"), cache=_breakpoints(user, plan))
        if not plan:
            plan = hyp.strip_blocks(prose(session.first_reply))[:PLAN_CHARS]
        if doc is None:
            replies_before_run1 += [session.first_reply, session.final_reply]
        elif kind == "experiment.results":
            doc, refused = _amend(ctx, doc, session.first_reply, session.final_reply, call_id, after_run=run - 1)
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
            if doc is None:
                doc = _register(ctx, replies_before_run1, plan)
            last = runs.execute(ctx, run, attempt)
            if last.ok:
                notes.append_notes(ctx, run, summary)
                succeeded.append(run)
                run, attempt, summary = run + 1, 1, ""
                continue
        attempt += 1
        if attempt > max_attempts:
            ctx.record("experiment.gave_up", run=run, attempts=max_attempts)
            break
    if doc is not None:
        _judge(ctx, doc)
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


# --- pre-registered hypotheses ---------------------------------------------------------------

def _metrics(ctx: RunContext) -> list[dict[str, str]]:
    return [{"name": m.name, "label": m.label, "direction": m.direction, "format": m.format}
            for m in ctx.template.metrics]


def _final_infos(ctx: RunContext) -> dict[str, dict[str, Any]]:
    from agent.paper.build.results_tex import load_final_infos

    return load_final_infos(ctx.ws.root)


def _provisional(ctx: RunContext, doc: hyp.HypothesesDoc | None) -> list[str]:
    return judging.provisional(doc, _final_infos(ctx), ctx.template.metrics) if doc else []


def _registered(ctx: RunContext) -> hyp.HypothesesDoc | None:
    """The registration with its amendments so far, folded from the journal (resume)."""
    event = ctx.find("hypotheses.registered")
    if event is None:
        return None
    doc = hyp.HypothesesDoc.from_json(event.data["doc"])
    for e in ctx.journal.of_kind("hypotheses.amended"):
        doc = doc.amended(hyp.HypothesesDoc.from_json({"amendments": e.data["amendments"]}).amendments)
    return doc


def _parse(ctx: RunContext, reply: str) -> tuple[bool, list[hyp.Hypothesis], list[str]]:
    """(whether the reply has a hypotheses block, its valid hypotheses, what is wrong)."""
    found = hyp.extract(reply, "hypotheses")
    if found.items is None:
        return bool(found.problem), [], [found.problem or "the reply has no ```json block of the form "
                                         '{"hypotheses": [...]}']
    valid, errors = hyp.validate(found.items, ctx.template.metrics, ctx.config.max_runs)
    return True, valid, errors


def _register(ctx: RunContext, replies: list[str], plan: str) -> hyp.HypothesesDoc:
    """Validate the plan's hypotheses (asking for a corrected block up to twice), write
    hypotheses.json and commit it; run 1 has not executed yet."""
    valid: list[hyp.Hypothesis] = []
    errors = ["the reply has no ```json block of the form {\"hypotheses\": [...]}"]
    for reply in reversed(replies):  # the latest reply that has a block
        has_block, valid, errors = _parse(ctx, reply)
        if has_block:
            break
    requests = 0
    if ctx.find("run.started", run=1) is not None:  # a run directory older than pre-registration
        valid, errors = [], ["run 1 had started before hypotheses were asked for"]
        requests = HYPOTHESES_REQUESTS
    while errors and requests < HYPOTHESES_REQUESTS:
        requests += 1
        user = prompting.render("experiment_hypotheses", idea_title=ctx.idea.fields.get("Title", ctx.idea.name),
                                plan=plan, problems=errors, metrics=_metrics(ctx),
                                max_runs=ctx.config.max_runs, attempt=requests, max_attempts=HYPOTHESES_REQUESTS)
        ctx.status(f"asking the model for its hypotheses (request {requests})")
        try:
            answer = ask_text(ctx, [_system(ctx), {"role": "user", "content": user}], stage=STAGE,
                              prompt_kind="experiment.hypotheses", call_id=f"{HYPOTHESES_STEP}/request{requests}")
        except ReplayDiverged:  # a recording made before hypotheses were asked for
            errors.append("the replayed recording has no answer to the request for a corrected block")
            break
        has_block, new_valid, new_errors = _parse(ctx, answer)
        if has_block or not valid:  # else keep the valid ones and the problems of the others
            valid, errors = new_valid, new_errors
    problem = None if valid else "; ".join(errors)
    doc = hyp.HypothesesDoc(1, time.strftime("%Y-%m-%dT%H:%M:%S%z"), tuple(valid), problem=problem,
                            refused=tuple(errors) if valid else ())
    sha = ctx.ws.step_commit(HYPOTHESES_STEP)
    if sha is None:
        hyp.write(ctx.ws.root, doc)
        ctx.crashpoint("hypotheses_written")
        what = f"{len(valid)} hypotheses" if valid else "none valid"
        sha = ctx.ws.commit([hyp.HYPOTHESES_FILE], f"{STAGE}: hypotheses registered before run 1 ({what})",
                            step=HYPOTHESES_STEP)
    else:  # a crash after the commit: the committed file is the registration
        doc = hyp.load(ctx.ws.root) or doc
    ctx.record("hypotheses.registered", doc=doc.to_json(), ids=[h.id for h in doc.hypotheses],
               problem=doc.problem, requests=requests, sha=sha, step=HYPOTHESES_STEP)
    if doc.problem:
        ctx.console.warn(f"no hypotheses were registered before run 1 ({doc.problem}); the runs go on "
                         "without pre-registration")
    elif doc.refused:
        ctx.console.warn(f"{len(doc.refused)} problem(s) in the hypotheses left items out: {'; '.join(doc.refused)}")
    return doc


def _amend(ctx: RunContext, doc: hyp.HypothesesDoc, first: str, final: str, call_id: str,
           after_run: int) -> tuple[hyp.HypothesesDoc, list[str]]:
    """Apply the amendments of a results reply (committed and journaled); returns the amended
    document and why amendments were refused (to be told to the model)."""
    for kind in ("hypotheses.amended", "hypotheses.amendment_refused"):
        event = ctx.find(kind, call_id=call_id)
        if event is not None:  # done before a resume; `doc` was folded from the journal
            return doc, list(event.data["refused"])
    found = hyp.extract(first, "amendments")
    if found.items is None and not found.problem:
        found = hyp.extract(final, "amendments")
    if found.items is None and not found.problem:
        return doc, []
    new, accepted, refused = hyp.amend(doc, found.items or [], ctx.template.metrics, ctx.config.max_runs,
                                       after_run)
    if found.problem:
        refused = [found.problem + "; nothing was amended"]
    if refused:
        ctx.console.warn(f"amendments to the hypotheses refused after run {after_run}: {'; '.join(refused)}")
    if not accepted:
        ctx.record("hypotheses.amendment_refused", call_id=call_id, after_run=after_run, refused=refused)
        return doc, refused
    step = f"{HYPOTHESES_STEP}/amend{after_run}"
    sha = ctx.ws.step_commit(step)
    if sha is None:
        hyp.write(ctx.ws.root, new)
        ids = ", ".join(a.id for a in accepted)
        sha = ctx.ws.commit([hyp.HYPOTHESES_FILE], f"{STAGE}: hypotheses amended after run {after_run} ({ids})",
                            step=step)
    ctx.record("hypotheses.amended", call_id=call_id, after_run=after_run,
               amendments=[a.to_json() for a in accepted], refused=refused, sha=sha, step=step)
    for a in accepted:
        ctx.console.info(f"hypothesis {a.id} amended after run {after_run}: {a.reason}")
    return new, refused


def _judge(ctx: RunContext, doc: hyp.HypothesesDoc) -> None:
    """Verdicts by code from the runs' records: hypotheses_verdicts.json, committed."""
    if ctx.find("hypotheses.judged") is not None:
        return
    judged = judging.judge(doc, _final_infos(ctx), ctx.template.metrics)
    step = f"{HYPOTHESES_STEP}/verdicts"
    sha = ctx.ws.step_commit(step)
    if sha is None:
        hyp.write_verdicts(ctx.ws.root, judging.verdicts_json(doc, judged))
        registered = [j.counted for j in judged if not j.effective.added_after_results]
        counts = ", ".join(f"{sum(j.verdict == v for j in registered)} {v}"
                           for v in ("supported", "refuted", "inconclusive")) if registered else "no hypotheses"
        sha = ctx.ws.commit([hyp.VERDICTS_FILE], f"{STAGE}: verdicts of the hypotheses ({counts})", step=step)
    ctx.record("hypotheses.judged", verdicts={j.effective.hypothesis.id: j.counted.verdict for j in judged},
               sha=sha, step=step)
    for j in judged:
        ctx.console.info(f"hypothesis {j.line()}")
