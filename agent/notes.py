"""The orchestrator's own section of `notes.txt` for each finished run: what was tried, what
changed since the baseline, every headline metric as the mean over the seeds with its interval
and per-seed values, the difference from the baseline with its Welch interval and verdict, the
seeds that failed, and the gates. Written and committed by the loop, so a failed edit of the
model's cannot lose it.
"""

from __future__ import annotations

from agent.context import RunContext
from agent.results import (
    RunRecord,
    config_changes,
    evaluated,
    finished_runs,
    format_config_changes,
    plus_minus,
    seed_lines,
)

BOOKKEEPING = ("notes.txt", "hypotheses.json", "hypotheses_verdicts.json")
"""Files of the run directory the loop writes that are not the experiment's code."""


def append_notes(ctx: RunContext, index: int, summary: str | None = None) -> None:
    """The orchestrator's own section for a finished run, so failed edits cannot lose it."""
    if ctx.find("notes.appended", run=index) is not None:
        return
    runs = finished_runs(ctx.ws.root, ctx.template)
    run = next(r for r in runs if r.index == index)
    base = next((r for r in runs if r.index == 0), None)
    files = []
    if base is not None and base.commit and run.commit and index != 0:
        files = [f for f in ctx.ws.changed_files(base_commit(ctx), run.commit) if not f.startswith(("run_", "logs/")) and f not in BOOKKEEPING]
    lines = [f"## Run {index}" + (" (baseline)" if index == 0 else ""),
             f"Recorded by the orchestrator from run_{index}/final_info.json (code commit {(run.commit or '?')[:10]}).",
             ]
    if not evaluated(ctx.template, run):
        lines.append("UNTRUSTED: these metrics were written by the experiment itself (its own "
                     "final_info.json), not by a trusted evaluator"
                     + (": the template has none." if not ctx.template.evaluator else "."))
    if summary:
        lines.append(f"What was tried: {summary}")
    if index != 0:
        lines.append(f"Code changed since the baseline: {', '.join(files) if files else 'none'}")
        lines.append(f"Config changed since the baseline: {format_config_changes(config_changes(base, run))}")
    lines += _metric_lines(ctx, run, base)
    lines += [line.removeprefix(f"- {run.label} ").replace("(", "Seeds (", 1)
              for line in seed_lines([run])]
    failing = run.failing(severity=None)
    lines.append("Gates: " + ("all pass" if not failing else
                              "; ".join(f"[{g.severity}] {g.message}" for g in failing)))
    step = f"notes/run{index}"
    sha = ctx.ws.step_commit(step)
    if sha is None:  # else a crash came between the commit and the journal: nothing to redo
        ctx.record("notes.appending", run=index, step=step, text="\n".join(lines) + "\n")
        _append(ctx, "\n".join(lines) + "\n\n")  # a blank line before whatever is appended next
        ctx.crashpoint("notes_written")
        sha = ctx.ws.commit(["notes.txt"], f"notes: run {index} results section (orchestrator)", step=step)
        ctx.crashpoint("notes_committed")
    ctx.record("notes.appended", run=index, sha=sha, step=step)


def _metric_lines(ctx: RunContext, run: RunRecord, base: RunRecord | None) -> list[str]:
    """`- L0: 30.2 ± 1.1 (seeds 30.1, 29.5, 31.0); against the baseline -3.1 [95% CI -4.0,
    -2.2]: better` per headline metric: the numbers and the verdict, computed here."""
    from agent.stats import compare_runs, seed_values

    n = run.seed_count
    lines = [f"Metrics are means over {n} seeds ± the half-width of the 95% interval of the mean; "
             "differences use Welch's interval; verdicts are computed." if n > 1 else
             "Metrics are from one seed (no interval)."]
    for m in ctx.template.headline:
        v = run.metrics.get(m.name)
        if not isinstance(v, (int, float)):
            lines.append(f"- {m.label}: n/a")
            continue
        text = f"- {m.label}: {m.fmt(v)}{plus_minus(run, m.name, m.format)}"
        values = seed_values(run.raw, m.name)
        if len(values) > 1:
            text += f" (seeds {', '.join(m.fmt(x) for x in values)})"
        if base is not None and run.index != 0:
            found = compare_runs(run.raw, base.raw, m.name, m.direction, run.name, base.name)
            if found is not None:
                fmt = m.format if not m.format.endswith("d") else ".4g"
                text += f"; against the baseline {found.describe(fmt)}"
        lines.append(text)
    return lines


def recorded_sections(ctx: RunContext) -> tuple[tuple[str, str, str], ...]:
    """(path, text, whose) of every section the orchestrator wrote into notes.txt, as the
    journal holds it: what no edit may change (`EditPolicy.kept`)."""
    return tuple(("notes.txt", e.data["text"], f"the orchestrator's record of run {e.data['run']}")
                 for e in ctx.journal.of_kind("notes.appending") if e.data.get("text"))


def _append(ctx: RunContext, text: str) -> None:
    path = ctx.ws.resolve("notes.txt")
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    sep = "" if not old or old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
    path.write_text(old + sep + text, encoding="utf-8")


def base_commit(ctx: RunContext) -> str:
    """The commit the baseline ran at (the setup commit)."""
    event = ctx.find("run.recorded", run=0)
    return event.data["commit"] if event else ctx.ws.history()[0].sha
