"""Executing one experiment run inside the run directory, and recording it.

A run is executed through the runner, its outcome journaled, its result files committed
(one commit per finished run), and the orchestrator's own notes section appended and
committed. Each step is journaled before and after its side effects, and its commit carries
the step's name, so a resumed launch finds what was done and never repeats it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import runner
from agent.context import RunContext
from agent.journal import Event
from agent.results import RunRecord, config_changes, finished_runs, format_config_changes, load_run
from harness import provenance


@dataclass(frozen=True)
class RunAttempt:
    """What one execution of `python experiment.py --out_dir=run_i` produced."""

    index: int
    attempt: int
    status: runner.RunStatus | str
    """Runner status, or `no_results` when it exited 0 without writing final_info.json."""
    describe: str
    """One line: how it ended."""
    stderr_tail: str
    commit: str
    """The code commit that ran."""
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _from_event(data: dict[str, Any]) -> RunAttempt:
    return RunAttempt(data["run"], data["attempt"], data["status"], data["describe"],
                      data.get("stderr_tail", ""), data["commit"], data.get("duration_s", 0.0))


def execute(ctx: RunContext, index: int, attempt: int, *, stage: str = "experiment") -> RunAttempt:
    """Run `run_{index}` (attempt `attempt`) unless the journal says it already ran.

    Journaled before and after each side effect: `run.started`, the process, `run.finished`
    (with its outputs), the results commit (found again by its step trailer), `run.recorded`.
    A crash anywhere in between resumes without running the experiment a second time once
    `run.finished` is written: resume keeps the outputs and this function commits them.
    """
    done = ctx.find("run.recorded", run=index, attempt=attempt)
    if done is not None:
        return _from_event(done.data)
    out_name = f"run_{index}"
    out_dir = ctx.ws.resolve(out_name)
    finished = ctx.find("run.finished", run=index, attempt=attempt)
    if finished is None:
        finished = _run_process(ctx, index, attempt, stage, out_name)
    ctx.crashpoint("run_finished")
    data = finished.data
    status, describe = data["status"], data.get("describe") or data["status"]
    started = ctx.find("run.started", run=index, attempt=attempt)
    commit = data.get("commit") or (started.data["commit"] if started else ctx.ws.head())
    step = f"{stage}/run{index}/attempt{attempt}"
    sha = ctx.ws.step_commit(step)
    if sha is None and status == "ok":
        sha = ctx.ws.commit([out_name], f"{stage}: run {index} results (attempt {attempt}, {describe})", step=step)
    elif sha is None:
        # Keep the failed attempt's logs in history, out of the way of the next attempt.
        logs_rel = f"logs/{out_name}_attempt{attempt}"
        logs = ctx.ws.resolve(logs_rel)
        if out_dir.exists():
            logs.parent.mkdir(exist_ok=True)
            if logs.exists():
                shutil.rmtree(logs)
            shutil.move(str(out_dir), logs)
        sha = ctx.ws.commit([logs_rel], f"{stage}: run {index} attempt {attempt} {status}: logs", step=step)
    ctx.crashpoint("run_committed")
    result = RunAttempt(index, attempt, status, describe, data.get("stderr_tail", ""), commit,
                        data.get("duration_s", 0.0))
    ctx.console.info(_progress_line(ctx, result))
    ctx.record("run.recorded", stage=stage, run=index, attempt=attempt, status=status, describe=describe,
               stderr_tail=result.stderr_tail, commit=result.commit, sha=sha,
               duration_s=result.duration_s, step=step)
    return result


def _run_process(ctx: RunContext, index: int, attempt: int, stage: str, out_name: str) -> Event:
    """Execute the experiment once; returns the `run.finished` event it journaled."""
    out_dir = ctx.ws.resolve(out_name)
    if out_dir.exists():  # leftovers of an attempt that did not finish
        shutil.rmtree(out_dir)
    commit = ctx.ws.head()
    timeout = ctx.template.timeout_for(ctx.preset, ctx.config.timeout_s)
    argv = ctx.template.command_for(out_name)
    ctx.record("run.started", stage=stage, run=index, attempt=attempt, commit=commit,
               command=" ".join(argv), timeout_s=timeout, preset=ctx.preset)
    ctx.status(f"run {index} attempt {attempt}: {' '.join(argv)} (timeout {timeout:.0f} s)")
    ctx.crashpoint("run_started")
    env = _harness_env(ctx)
    if ctx.template.evaluator:
        env[provenance.MODE_ENV] = "orchestrator"  # finish() exports; we evaluate below
    outcome = runner.run(argv, cwd=ctx.ws.root, log_dir=out_dir, timeout_s=timeout, env_extra=env,
                         on_start=lambda pid: ctx.record("run.process", run=index, attempt=attempt, pgid=pid),
                         sandbox=ctx.sandbox_for(write=out_dir), pass_env=ctx.template.pass_env)
    status: str = outcome.status
    describe = outcome.describe()
    stderr_tail = outcome.stderr_tail
    evaluation: dict[str, Any] = {}
    if outcome.ok and ctx.template.evaluator:
        status, describe, stderr_tail, evaluation = _evaluate(ctx, index, attempt, out_dir, timeout,
                                                              describe, stderr_tail)
    if status == "ok" and not (out_dir / "final_info.json").is_file():
        status, describe = "no_results", "exited 0 but wrote no final_info.json"
    if status == "ok":
        try:
            load_run(ctx.ws.root, index, ctx.template)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            status, describe = "no_results", f"wrote an unreadable final_info.json ({exc})"
    outputs = [out_name if status == "ok" else f"logs/{out_name}_attempt{attempt}", out_name]
    return ctx.record("run.finished", stage=stage, run=index, attempt=attempt, status=status,
                      describe=describe, returncode=outcome.returncode, commit=commit,
                      duration_s=round(outcome.duration_s, 3), stderr_tail=stderr_tail,
                      step=f"{stage}/run{index}/attempt{attempt}", outputs=outputs, **evaluation)


def _evaluate(ctx: RunContext, index: int, attempt: int, out_dir: Path, timeout: float,
              describe: str, stderr_tail: str) -> tuple[str, str, str, dict[str, Any]]:
    """Evaluate run_i in a process of its own (the template's evaluator) after the experiment
    exited 0: (status, describe, stderr tail, journal fields). Metrics the experiment wrote
    itself are moved aside; a harness changed since launch, a missing export, or a record
    whose provenance does not match the files evaluated make the run not ok."""
    info = out_dir / "final_info.json"
    ignored = None
    if info.is_file():  # the experiment wrote metrics itself: kept aside, never used
        ignored = provenance.EXPERIMENT_FINAL_INFO
        os.replace(info, out_dir / ignored)
    fields: dict[str, Any] = {"evaluator": ctx.template.evaluator, "ignored_final_info": ignored}
    if not (out_dir / provenance.ENCODE).is_file():
        return ("no_results", f"{describe}, but exported no SAE graphs ({provenance.ENCODE}): call "
                "harness.finish(out_dir, sae, source, ...); metrics written by experiment.py are "
                "ignored", stderr_tail, fields)
    now = provenance.harness_sha256()
    if now != ctx.harness_sha256:
        return ("untrusted", f"{describe}, but the harness source changed since this launch "
                f"started (sha256 {str(ctx.harness_sha256)[:12]} -> {now[:12]}): not evaluated",
                stderr_tail, fields)
    argv = provenance.evaluator_command(Path(f"run_{index}"), ctx.preset,
                                        manifest=ctx.template.root / "template.toml")
    ctx.record("run.evaluating", run=index, attempt=attempt, harness_sha256=now)
    outcome = runner.run(argv, cwd=ctx.ws.root, log_dir=out_dir, timeout_s=timeout, name="evaluator",
                         env_extra=_harness_env(ctx),
                         on_start=ctx.process_started("evaluator"),
                         sandbox=ctx.sandbox_for(write=out_dir))
    fields["evaluator_duration_s"] = round(outcome.duration_s, 3)
    if not outcome.ok:
        return (outcome.status, f"{describe}; its evaluation {outcome.describe()}",
                outcome.stderr_tail, fields)
    problem = provenance_problem(out_dir, now)
    if problem:
        return "untrusted", f"{describe}, but {problem}", stderr_tail, fields
    return "ok", f"{describe}; evaluated in {outcome.duration_s:.1f} s", stderr_tail, fields


def _harness_env(ctx: RunContext) -> dict[str, str]:
    """The preset, and the Hugging Face libraries told to stay offline: `harness.prepare`
    fetched what a hub preset needs, and neither an experiment nor its evaluator has the
    network (nor waits for it)."""
    env = {"EXPERIMENT_PRESET": ctx.preset} if ctx.preset else {}
    if ctx.template.evaluator:
        env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    return env


def provenance_problem(out_dir: Path, harness: str) -> str | None:
    """Why run_i/final_info.json cannot be trusted, or None when its provenance verifies."""
    try:
        record = json.loads((out_dir / "final_info.json").read_text(encoding="utf-8"))
        prov = record["provenance"]
        expected = {"evaluator": provenance.EVALUATOR, "harness_sha256": harness,
                    "encode_sha256": provenance.sha256_file(out_dir / provenance.ENCODE),
                    "decode_sha256": provenance.sha256_file(out_dir / provenance.DECODE),
                    "meta_sha256": provenance.sha256_file(out_dir / provenance.META)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"its final_info.json has no readable provenance ({type(exc).__name__}: {exc})"
    wrong = [k for k, v in expected.items() if prov.get(k) != v]
    if wrong:
        return f"the provenance of final_info.json does not verify ({', '.join(wrong)})"
    checkpoint = record.get("checkpoint")
    path = out_dir / provenance.CHECKPOINT
    if isinstance(checkpoint, dict):
        if not path.is_file() or checkpoint.get("sha256") != provenance.sha256_file(path):
            return f"{out_dir.name}/{provenance.CHECKPOINT} changed after its evaluation"
        if checkpoint.get("matches_evaluated") is not True:
            return (f"{out_dir.name}/{provenance.CHECKPOINT} does not hold the weights that were "
                    f"evaluated ({checkpoint.get('problem', 'unknown')}): the checkpoint or the "
                    "graphs were replaced after export")
    elif path.is_file():
        return f"the evaluator did not check {out_dir.name}/{provenance.CHECKPOINT}"
    return None


def _progress_line(ctx: RunContext, result: RunAttempt) -> str:
    line = f"run {result.index} attempt {result.attempt}: {result.describe}"
    if result.ok:
        record = load_run(ctx.ws.root, result.index, ctx.template)
        line += "; " + ", ".join(f"{m.label} {m.fmt(record.metrics.get(m.name))}" for m in ctx.template.headline)
        failing = record.failing(severity=None)
        if failing:
            line += f"; gates failing: {', '.join(g.name for g in failing)}"
    else:
        last = next((ln for ln in reversed(result.stderr_tail.splitlines()) if ln.strip()), "")
        line += f" ({last[:200]})" if last else ""
    return line


def append_notes(ctx: RunContext, index: int, summary: str | None = None) -> None:
    """The orchestrator's own section for a finished run, so failed edits cannot lose it."""
    if ctx.find("notes.appended", run=index) is not None:
        return
    runs = finished_runs(ctx.ws.root, ctx.template)
    run = next(r for r in runs if r.index == index)
    base = next((r for r in runs if r.index == 0), None)
    files = []
    if base is not None and base.commit and run.commit and index != 0:
        files = [f for f in ctx.ws.changed_files(base_commit(ctx), run.commit) if not f.startswith(("run_", "logs/")) and f != "notes.txt"]
    lines = [f"## Run {index}" + (" (baseline)" if index == 0 else ""),
             f"Recorded by the orchestrator from run_{index}/final_info.json (code commit {(run.commit or '?')[:10]}).",
             ]
    if summary:
        lines.append(f"What was tried: {summary}")
    if index != 0:
        lines.append(f"Code changed since the baseline: {', '.join(files) if files else 'none'}")
        lines.append(f"Config changed since the baseline: {format_config_changes(config_changes(base, run))}")
    for m in ctx.template.headline:
        v = run.metrics.get(m.name)
        lines.append(f"- {m.label}: {m.fmt(v) if isinstance(v, (int, float)) else 'n/a'}")
    failing = run.failing(severity=None)
    lines.append("Gates: " + ("all pass" if not failing else
                              "; ".join(f"[{g.severity}] {g.message}" for g in failing)))
    step = f"notes/run{index}"
    sha = ctx.ws.step_commit(step)
    if sha is None:  # else a crash came between the commit and the journal: nothing to redo
        ctx.record("notes.appending", run=index, step=step)
        _append(ctx, "\n".join(lines) + "\n\n")  # a blank line before whatever is appended next
        ctx.crashpoint("notes_written")
        sha = ctx.ws.commit(["notes.txt"], f"notes: run {index} results section (orchestrator)", step=step)
        ctx.crashpoint("notes_committed")
    ctx.record("notes.appended", run=index, sha=sha, step=step)


def _append(ctx: RunContext, text: str) -> None:
    path = ctx.ws.resolve("notes.txt")
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    sep = "" if not old or old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
    path.write_text(old + sep + text, encoding="utf-8")


def base_commit(ctx: RunContext) -> str:
    """The commit the baseline ran at (the setup commit)."""
    event = ctx.find("run.recorded", run=0)
    return event.data["commit"] if event else ctx.ws.history()[0].sha


def latest(ctx: RunContext) -> list[RunRecord]:
    return finished_runs(ctx.ws.root, ctx.template)
