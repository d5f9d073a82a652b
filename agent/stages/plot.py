"""The plot stage: the model edits plot.py, the runner runs it, the figures are verified.

Failures go back with the error tail (bounded); figures must exist and be valid PNG or PDF
files. If no attempt produces them, the template's own plot.py is restored and run. Then
the model describes each figure in notes.txt from the data behind it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from agent import prompting, runfiles
from agent.context import RunContext
from agent.executors import Process
from agent.results import finished_runs, full_table, run_summaries
from agent.stages.common import StageFailed, edit_session

STAGE = "plot"
PLOT_TIMEOUT_S = 600
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
    """Run plot.py once (memoized); returns (ok, problem, stderr tail).

    Journaled like a run: `plot.started`, its process, `plot.finished` with the figures it
    left (kept by a resume), the commit (found by its step), `plot.recorded`."""
    done = ctx.find("plot.recorded", attempt=attempt)
    if done is not None:
        return done.data["ok"], done.data["problem"], done.data["stderr_tail"]
    step = f"plot/attempt{attempt}"
    finished = ctx.find("plot.finished", attempt=attempt)
    if finished is None:
        ctx.record("plot.started", attempt=attempt, commit=ctx.ws.head())
        ctx.status(f"python plot.py (attempt {attempt})")
        log_dir = ctx.ws.resolve(f"logs/plot_attempt{attempt}")
        figures = expected_figures(ctx)
        process = Process(tuple(ctx.template.plot_command), cwd=ctx.ws.root, log_dir=log_dir,
                          timeout_s=PLOT_TIMEOUT_S, sandbox=ctx.sandbox_for(new_files_only_except=figures),
                          pass_env=tuple(ctx.template.pass_env))
        outcome = ctx.execute(process, label="plot.py", on_start=ctx.process_started("plot"))
        _remove_strays(ctx, keep=[*figures, f"logs/plot_attempt{attempt}"])
        bad = {f: p for f in figures if (p := figure_problem(ctx.ws.resolve(f)))}
        ok = outcome.ok and not bad and bool(figures)
        problem = ("" if ok else f"plot.py {outcome.describe()}" if not outcome.ok
                   else "; ".join(f"{f}: {p}" for f, p in bad.items()) or "no figures are expected")
        existing = [f for f in figures if ctx.ws.resolve(f).is_file()]
        finished = ctx.record("plot.finished", attempt=attempt, ok=ok, problem=problem,
                              stderr_tail=outcome.stderr_tail, figures=figures, step=step,
                              outputs=[*existing, f"logs/plot_attempt{attempt}"])
    ctx.crashpoint("plot_finished")
    d = finished.data
    sha = ctx.ws.step_commit(step) or ctx.ws.commit(
        d["outputs"], f"plot: attempt {attempt} {'figures' if d['ok'] else 'failed: ' + d['problem'][:60]}",
        step=step)
    ctx.record("plot.recorded", attempt=attempt, ok=d["ok"], problem=d["problem"],
               stderr_tail=d["stderr_tail"], figures=d["figures"], sha=sha, step=step)
    return d["ok"], d["problem"], d["stderr_tail"]


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
        editable=["plot.py"], command=" ".join(ctx.template.plot_command))}
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
    figures = [f for f in expected_figures(ctx) if figure_problem(ctx.ws.resolve(f)) is None]
    _describe(ctx, system, runs, figures)
    how = "the template's default plot.py (the model's attempts failed)" if fallback else f"attempt {attempt}"
    return f"{len(figures)} figure(s) ({', '.join(figures)}) from {how}"


def _describe(ctx: RunContext, system: dict[str, str], runs: list, figures: list[str]) -> None:  # type: ignore[type-arg]
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
        listing = "\n".join(f"- {f}" for f in figures)
        path.write_text(f"{text}\n\n## Figures (listed by the orchestrator)\n{listing}\n", encoding="utf-8")
        sha = ctx.ws.commit(["notes.txt"], "notes: list of figure files (orchestrator)")
        ctx.record("notes.figures_listed", figures=figures, sha=sha, described=session.ok)
