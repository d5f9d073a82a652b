"""The plot stage: the model edits plot.py, which declares the figures; a trusted renderer draws them.

plot.py (sandboxed) writes figures.json: what to draw, for which runs, with which labels. Then
`harness.figures` (project code, sandboxed, never importing LLM-edited code) draws each figure
from the runs' results and refuses a declaration that states a value no run has or puts an
unsupported number in its words. Only what it drew (journaled with sha256) may appear in the
paper; a figure plot.py draws itself is kept and marked in the report as drawn by LLM code.
Failures and refusals go back with the error tail (bounded); if no attempt succeeds, the
template's own plot.py is restored and run. Then the model describes each figure in notes.txt
from the data behind it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from agent import figures as figures_record
from agent import prompting, runfiles, runner
from agent.context import RunContext
from agent.executors import Process
from agent.results import finished_runs, full_table, run_summaries
from agent.stages.common import StageFailed, edit_session
from harness import figure_spec, provenance

STAGE = "plot"
PLOT_TIMEOUT_S = 600
RENDER_TIMEOUT_S = 300
SPEC = figure_spec.SPEC
MAX_SPEC_BYTES = figure_spec.MAX_SPEC_BYTES
_PNG = b"\x89PNG\r\n\x1a\n"
_PDF = b"%PDF-"


def figure_problem(path: Path) -> str | None:
    """None if `path` is a non-empty PNG or PDF file; else what is wrong with it."""
    if not path.is_file():
        return "missing"
    try:
        with runfiles.open_file(path) as f:
            head = f.read(8)
    except runfiles.UnsafeFile as exc:
        return f"not a plain file ({exc})"
    if not head:
        return "empty"
    if path.suffix.lower() == ".png" and not head.startswith(_PNG):
        return "not a valid PNG file"
    if path.suffix.lower() == ".pdf" and not head.startswith(_PDF):
        return "not a valid PDF file"
    if path.suffix.lower() not in (".png", ".pdf"):
        return "not a PNG or PDF file"
    return None


def expected_figures(ctx: RunContext) -> list[str]:
    """The template's figures plus any the script declares in `FIGURES = [...]`."""
    names = list(ctx.template.figures)
    text = ctx.ws.resolve("plot.py").read_text(encoding="utf-8") if ctx.ws.resolve("plot.py").is_file() else ""
    match = re.search(r"^FIGURES\s*=\s*\[([^\]]*)\]", text, re.M)
    if match:
        names += [n for n in re.findall(r"['\"]([^'\"]+\.(?:png|pdf))['\"]", match.group(1)) if n not in names]
    return names


def _execute(ctx: RunContext, attempt: int | str) -> tuple[bool, str, str]:
    """Run plot.py, then the trusted renderer, once (memoized); returns (ok, problem, stderr tail).

    Journaled like a run: `plot.started`, its processes, `plot.finished` with the figures the
    renderer drew (`rendered`: file -> sha256, the only ones the paper may show) and those
    plot.py drew itself (`by_plot_py`), the commit (found by its step), `plot.recorded`."""
    done = ctx.find("plot.recorded", attempt=attempt)
    if done is not None:
        return done.data["ok"], done.data["problem"], done.data["stderr_tail"]
    step = f"plot/attempt{attempt}"
    finished = ctx.find("plot.finished", attempt=attempt)
    if finished is None:
        ctx.record("plot.started", attempt=attempt, commit=ctx.ws.head())
        ctx.status(f"python plot.py (attempt {attempt})")
        log_dir = ctx.ws.resolve(f"logs/plot_attempt{attempt}")
        own = expected_figures(ctx)
        process = Process(tuple(ctx.template.plot_command), cwd=ctx.ws.root, log_dir=log_dir,
                          timeout_s=PLOT_TIMEOUT_S, sandbox=ctx.sandbox_for(new_files_only_except=[*own, SPEC]),
                          pass_env=tuple(ctx.template.pass_env), env_extra={"HARNESS_FIGURES": "declare"})
        outcome = ctx.execute(process, label="plot.py", on_start=ctx.process_started("plot"), gpu="none")
        _remove_strays(ctx, keep=[*own, SPEC, f"logs/plot_attempt{attempt}"])
        rendered, refused = _render(ctx, log_dir, attempt) if outcome.ok else ({}, "")
        figures = list(dict.fromkeys([*ctx.template.figures, *rendered, *own]))
        missing = [f for f in ctx.template.figures if f not in rendered]
        problem = (f"plot.py {outcome.describe()}" if not outcome.ok
                   else f"the figure renderer refused figures.json: {refused}" if refused
                   else "; ".join(f"{f}: not drawn by the renderer (declare it in figures.json: the paper shows "
                                  "only figures the renderer draws from the results)" for f in missing))
        existing = [f for f in figures if ctx.ws.resolve(f).is_file()]
        spec = [SPEC] if ctx.ws.resolve(SPEC).is_file() else []
        by_plot_py = [f for f in existing if f not in rendered and figure_problem(ctx.ws.resolve(f)) is None]
        finished = ctx.record("plot.finished", attempt=attempt, ok=not problem, problem=problem,
                              stderr_tail=outcome.stderr_tail, figures=figures, step=step, rendered=rendered,
                              by_plot_py=by_plot_py, outputs=[*existing, *spec, f"logs/plot_attempt{attempt}"])
    ctx.crashpoint("plot_finished")
    d = finished.data
    sha = ctx.ws.step_commit(step) or ctx.ws.commit(
        d["outputs"], f"plot: attempt {attempt} {'figures' if d['ok'] else 'failed: ' + d['problem'][:60]}",
        step=step)
    ctx.record("plot.recorded", attempt=attempt, ok=d["ok"], problem=d["problem"],
               stderr_tail=d["stderr_tail"], figures=d["figures"], sha=sha, step=step)
    return d["ok"], d["problem"], d["stderr_tail"]


def _render(ctx: RunContext, log_dir: Path, attempt: int | str) -> tuple[dict[str, str], str]:
    """Run the trusted renderer on figures.json: ({file: sha256} of what it drew, its refusal).

    It may write only the files the declaration names (every other entry of the run directory
    is read-only to it); a refusal is journaled as `figures.refused` for the report."""
    declared = declared_files(ctx.ws.resolve(SPEC))
    argv = provenance.figures_command(Path("."), manifest=ctx.template.root / "template.toml")
    process = Process(tuple(argv), cwd=ctx.ws.root, log_dir=log_dir, timeout_s=RENDER_TIMEOUT_S, name="render",
                      sandbox=ctx.sandbox_for(new_files_only_except=declared))
    outcome = ctx.execute(process, label="figure renderer", gpu="none")
    stdout = runner.log_paths(log_dir, "render")[0]
    receipt = runner.last_json(stdout.read_text(encoding="utf-8", errors="replace") if stdout.is_file() else "")
    problems = [str(p) for p in receipt.get("problems") or []]
    if not outcome.ok and not problems:
        problems = [f"the renderer {outcome.describe()}: {outcome.stderr_tail[-300:]}"]
    if problems:
        ctx.record("figures.refused", attempt=attempt, problems=problems[:5])
        return {}, "; ".join(problems[:3])
    drawn = [f for f in receipt.get("rendered") or [] if f in declared and figure_problem(ctx.ws.resolve(f)) is None]
    rendered = {f: runfiles.sha256(ctx.ws.resolve(f)) for f in drawn}
    return rendered, ""


def declared_files(spec: Path) -> list[str]:
    """The figure files a figures.json names (what the renderer may write); [] if unreadable."""
    try:
        data = json.loads(runfiles.read_bytes(spec)[:MAX_SPEC_BYTES].decode("utf-8"))
    except (OSError, ValueError, runfiles.UnsafeFile):
        return []
    return figure_spec.figure_files(data)


def trusted_figures(ctx: RunContext) -> list[str]:
    """The figures the renderer drew and that are unchanged since: the only ones the paper may show."""
    return [f for f in figures_record.trusted(ctx.ws.root, ctx.journal.events())
            if figure_problem(ctx.ws.resolve(f)) is None]


def _remove_strays(ctx: RunContext, keep: list[str]) -> None:
    """Delete the files plot.py created besides its figures (a `latex/` folder, a fake
    results file): only its figures go on to the commit and the paper."""
    strays = [rel for rel in ctx.ws.repo.untracked_files
              if not any(rel == k or rel.startswith(k.rstrip("/") + "/") for k in keep)]
    for rel in strays:
        ctx.ws.resolve(rel).unlink(missing_ok=True)
    if strays:
        ctx.record("plot.strays", removed=strays[:50])
        ctx.console.warn(f"plot.py wrote {len(strays)} file(s) besides its figures, deleted: "
                         f"{', '.join(strays[:5])}")


def run_stage(ctx: RunContext) -> str:
    runs = finished_runs(ctx.ws.root, ctx.template)
    if len(runs) < 2:
        raise StageFailed("plot stage: there is no finished run besides the baseline to plot")
    summaries = run_summaries(ctx.journal.events())
    system = {"role": "system", "content": prompting.render(
        "system", template_name=ctx.template.name, template_description=ctx.template.description,
        editable=["plot.py"], command=" ".join(ctx.template.plot_command), idea=None)}
    plot_py = ctx.ws.resolve("plot.py")
    user = prompting.render(
        "plot_edit",
        runs=[{"name": r.name, "label": r.label, "summary": summaries.get(r.index, "")} for r in runs],
        metrics=[{"name": m.name, "label": m.label, "direction": m.direction} for m in ctx.template.metrics],
        figures=list(ctx.template.figures), plot_py=plot_py.read_text(encoding="utf-8"))
    kind, messages = "plot.edit", [system, {"role": "user", "content": user}]
    ok, attempt, fallback = False, 0, False
    for attempt in range(1, ctx.config.max_attempts + 1):
        session = edit_session(ctx, messages, stage=STAGE, prompt_kind=kind, call_id=f"plot/attempt{attempt}",
                               label=f"attempt {attempt}", editable=("plot.py",), require_change=attempt == 1)
        ok, problem, tail = _execute(ctx, attempt)
        if ok:
            break
        if not session.ok:
            problem = f"{problem}; also, the edits did not all apply: {session.problem}"
        kind = "plot.failure"
        messages = [system, {"role": "user", "content": prompting.render(
            "plot_failure", attempt=attempt, max_attempts=ctx.config.max_attempts, problem=problem,
            stderr_tail=tail, plot_py=plot_py.read_text(encoding="utf-8"))}]
    if not ok:
        fallback = True
        shutil.copy2(ctx.template.root / "plot.py", plot_py)
        ctx.ws.commit(["plot.py"], "plot: fall back to the template's default plot.py")
        ctx.record("plot.fallback", reason="no attempt produced the figures")
        ok, problem, tail = _execute(ctx, "default")
        if not ok:
            raise StageFailed(f"plot stage: even the template's default plot.py failed: {problem}\n{tail}")
    figures = trusted_figures(ctx)
    _describe(ctx, system, runs, figures, figures_record.last_plot(ctx.journal.events()).get("by_plot_py") or [])
    how = "the template's default plot.py (the model's attempts failed)" if fallback else f"attempt {attempt}"
    return f"{len(figures)} figure(s) ({', '.join(figures)}) drawn by the renderer from {how}'s declaration"


def _describe(ctx: RunContext, system: dict[str, str], runs: list, figures: list[str],  # type: ignore[type-arg]
              own: list[str]) -> None:
    notes = ctx.ws.resolve("notes.txt").read_text(encoding="utf-8")
    user = prompting.render("plot_describe", figures=[{"path": f, "caption_hint": ""} for f in figures],
                            data_table=full_table(ctx.template, runs), notes_tail=notes[-1500:])
    messages = [{**system, "content": system["content"].replace("plot.py", "notes.txt")},
                {"role": "user", "content": user}]
    session = edit_session(ctx, messages, stage=STAGE, prompt_kind="plot.describe", call_id="plot/describe",
                           label="figure notes", editable=("notes.txt",), require_change=True)
    if ctx.find("notes.figures_listed") is None:
        path = ctx.ws.resolve("notes.txt")
        text = path.read_text(encoding="utf-8").rstrip("\n")
        listing = "\n".join([*(f"- {f}" for f in figures),
                             *(f"- {f} (drawn by plot.py itself: not for the paper)" for f in own)])
        path.write_text(f"{text}\n\n## Figures (listed by the orchestrator)\n{listing}\n", encoding="utf-8")
        sha = ctx.ws.commit(["notes.txt"], "notes: list of figure files (orchestrator)")
        ctx.record("notes.figures_listed", figures=figures, by_plot_py=own, sha=sha, described=session.ok)
