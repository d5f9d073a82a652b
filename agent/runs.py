"""Executing one experiment run inside the run directory, and recording it.

A run is executed through the runner, once per seed, evaluated, its outcome journaled and its
result files committed (one commit per finished run); `agent.notes` then writes the
orchestrator's own notes section. Each step is journaled before and after its side effects, and its commit carries
the step's name, so a resumed launch finds what was done and never repeats it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from agent import devices, runfiles, runner
from agent.context import RunContext
from agent.executors import Process
from agent.journal import Event
from agent.results import (
    load_run,
)
from harness import provenance
from harness import seeds as seeds_mod


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
    """Execute the experiment once per seed, evaluate; returns the `run.finished` event."""
    out_dir = ctx.ws.resolve(out_name)
    if out_dir.exists() and not ctx.jobs(f"run{index}/attempt{attempt}/"):
        shutil.rmtree(out_dir)  # leftovers of an attempt that did not finish (and had no SLURM job)
    out_dir.mkdir(parents=True, exist_ok=True)
    commit = ctx.ws.head()
    timeout = ctx.template.timeout_for(ctx.preset, ctx.config.timeout_s)
    seeds = ctx.seeds
    shown = " ".join(ctx.template.command_for(f"{out_name}/seed_<k>"))
    ctx.record("run.started", stage=stage, run=index, attempt=attempt, commit=commit,
               command=f"{seeds_mod.SEED_ENV}=<k> {shown}", seeds=seeds, timeout_s=timeout,
               preset=ctx.preset)
    ctx.status(f"run {index} attempt {attempt}: {shown} for seeds "
               f"{', '.join(map(str, seeds))} (timeout {timeout:.0f} s)")
    ctx.crashpoint("run_started")
    start = time.monotonic()
    outcomes = _run_seeds(ctx, index, attempt, out_name, seeds, timeout)
    wall = time.monotonic() - start
    over = enforce_quota(out_dir)
    if over:  # every seed's output is gone but its logs: nothing of it can be evaluated
        for o in outcomes.values():
            o.update(status="failed", describe=over, returncode=o.get("returncode") or 1)
    (out_dir / seeds_mod.OUTCOMES).write_text(json.dumps(
        {"seeds": list(outcomes.values()), "wall_s": round(wall, 3)}, indent=2) + "\n",
        encoding="utf-8")
    ok = [s for s in seeds if outcomes[s]["status"] == "ok"]
    failed = [outcomes[s] for s in seeds if outcomes[s]["status"] != "ok"]
    evaluation: dict[str, Any] = {}
    if not ok:
        first = failed[0]
        status, stderr_tail = first["status"], first["stderr_tail"]
        describe = first["describe"] if len(seeds) == 1 else \
            f"every seed failed; seed {first['seed']} {first['describe']}"
    else:
        status, describe = "ok", _seeds_described(outcomes, seeds, wall)
        stderr_tail = failed[0]["stderr_tail"] if failed else ""
        if ctx.template.evaluator:
            status, describe, stderr_tail, evaluation = _evaluate(
                ctx, index, attempt, out_dir, timeout, describe, stderr_tail, seeds)
        else:
            status, describe, stderr_tail = _combine(ctx, out_dir, timeout, describe, stderr_tail,
                                                     seeds)
    if status == "ok" and not (out_dir / "final_info.json").is_file():
        status, describe = "no_results", "exited 0 but wrote no final_info.json"
    if status == "ok":
        try:
            load_run(ctx.ws.root, index, ctx.template)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            status, describe = "no_results", f"wrote an unreadable final_info.json ({exc})"
    outputs = [out_name if status == "ok" else f"logs/{out_name}_attempt{attempt}", out_name]
    return ctx.record("run.finished", stage=stage, run=index, attempt=attempt, status=status,
                      describe=describe, returncode=failed[0]["returncode"] if not ok else 0,
                      commit=commit, duration_s=round(wall, 3), stderr_tail=stderr_tail,
                      seeds={str(o["seed"]): o["status"] for o in outcomes.values()},
                      step=f"{stage}/run{index}/attempt{attempt}", outputs=outputs, **evaluation)


QUOTA_ENV = "TRUSTED_SCIENTIST_RUN_QUOTA_GB"
DEFAULT_QUOTA_GB = 10.0
KEPT_OVER_QUOTA = ("stdout.txt", "stderr.txt", seeds_mod.OUTCOMES)


def run_quota() -> int:
    """Bytes a run folder (every seed's output) may hold: TRUSTED_SCIENTIST_RUN_QUOTA_GB, default 10."""
    try:
        return int(float(os.environ.get(QUOTA_ENV) or DEFAULT_QUOTA_GB) * 2**30)
    except ValueError:
        return int(DEFAULT_QUOTA_GB * 2**30)


def enforce_quota(out_dir: Path) -> str:
    """When `out_dir` holds more than `run_quota()`, empty it but for its logs and say so in
    words for the model; "" within the quota. Sizes are read without following links."""
    files = [Path(d) / n for d, _, names in os.walk(out_dir) for n in names]
    used = sum(p.lstat().st_size for p in files if not p.is_symlink())
    quota = run_quota()
    if used <= quota:
        return ""
    for path in files:
        if not path.name.endswith(KEPT_OVER_QUOTA):
            path.unlink(missing_ok=True)
    return (f"wrote {used / 2**30:.2f} GB into {out_dir.name}/, over the run folder's quota of "
            f"{quota / 2**30:.2f} GB ({QUOTA_ENV}); its files were deleted but the logs. Write less: "
            "no activations or extra checkpoints (the harness keeps what it evaluates)")


def _run_seeds(ctx: RunContext, index: int, attempt: int, out_name: str, seeds: list[int],
               timeout: float) -> dict[int, dict[str, Any]]:
    """Each seed as an independent process (`EXPERIMENT_SEED=k`, `--out_dir=run_i/seed_k`,
    sandboxed to that folder), up to `--seed-jobs` at once; outcome per seed as a dict."""
    # as many at once as the launch ran (a verification of fewer seeds keeps their threads)
    jobs = min(len(ctx.all_seeds), ctx.config.seed_jobs or len(ctx.all_seeds))
    env = _harness_env(ctx)
    if ctx.template.evaluator:
        env[provenance.MODE_ENV] = "orchestrator"  # finish() exports; the loop evaluates
    # Concurrent seeds share the CPU (this launch's share of it) instead of each spinning up
    # every core; on GPUs each seed takes a device of its own from the pool.
    threads = devices.threads_for(jobs)
    memory = devices.memory_for(jobs)  # on the CPU: the machine's memory shared by the seeds at once

    def one(seed: int) -> dict[str, Any]:
        rel = f"{out_name}/seed_{seed}"
        seed_dir = ctx.ws.resolve(rel)
        process = Process(tuple(ctx.template.command_for(rel)), cwd=ctx.ws.root, log_dir=seed_dir,
                          timeout_s=timeout, env_extra={**env, seeds_mod.SEED_ENV: str(seed)},
                          sandbox=ctx.sandbox_for(write=seed_dir), pass_env=tuple(ctx.template.pass_env),
                          memory_bytes=memory, file_bytes=run_quota())
        outcome = ctx.execute(
            process, label=f"run {index} seed {seed}", threads=threads,
            job_key=f"run{index}/attempt{attempt}/seed{seed}",
            on_start=lambda pid: ctx.record("run.process", run=index, attempt=attempt, seed=seed,
                                            pgid=pid))
        describe = outcome.describe()
        if memory is not None and runner.out_of_memory(outcome):
            describe += (f": it ran out of memory, past its limit of {memory / 2**30:.1f} GB (90% of the "
                         f"machine's memory shared by the {jobs} seed(s) running at once); use less "
                         f"memory (smaller batches or a smaller model) or fewer --seed-jobs")
        found = {"seed": seed, "status": outcome.status, "describe": describe,
                 "returncode": outcome.returncode, "duration_s": round(outcome.duration_s, 3),
                 "stderr_tail": outcome.stderr_tail}
        if outcome.ok and not ctx.template.evaluator and not (seed_dir / "final_info.json").is_file():
            found.update(status="no_results", describe="exited 0 but wrote no final_info.json")
        return found

    if jobs == 1:
        return {s: one(s) for s in seeds}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="seed") as pool:
        return dict(zip(seeds, pool.map(one, seeds), strict=True))


def _seeds_described(outcomes: dict[int, dict[str, Any]], seeds: list[int], wall: float) -> str:
    """`finished in 12.3 s` for one seed; `3 seeds finished in 40.1 s` or `2 of 3 seeds
    finished in 40.1 s; seed 1 failed with exit code 1 after 3.2 s` for several."""
    if len(seeds) == 1:
        return str(outcomes[seeds[0]]["describe"])
    ok = [s for s in seeds if outcomes[s]["status"] == "ok"]
    text = (f"{len(seeds)} seeds finished in {wall:.1f} s" if len(ok) == len(seeds)
            else f"{len(ok)} of {len(seeds)} seeds finished in {wall:.1f} s")
    for s in seeds:
        if outcomes[s]["status"] != "ok":
            text += f"; seed {s} {outcomes[s]['describe']}"
    return text


def _combine(ctx: RunContext, out_dir: Path, timeout: float, describe: str, stderr_tail: str,
             seeds: list[int]) -> tuple[str, str, str]:
    """A template without an evaluator: the run's final_info.json from its seeds' own
    (`harness.seeds`, means and intervals as for evaluated runs)."""
    argv = provenance.seeds_command(Path(out_dir.name), seeds,
                                    manifest=ctx.template.root / "template.toml")
    process = Process(tuple(argv), cwd=ctx.ws.root, log_dir=out_dir, timeout_s=timeout, name="seeds",
                      sandbox=ctx.sandbox_for(write=out_dir))
    outcome = ctx.execute(process, label=f"{out_dir.name} seeds", gpu="none")
    if not outcome.ok:
        return (outcome.status, f"{describe}; combining its seeds {outcome.describe()}",
                outcome.stderr_tail)
    return "ok", describe, stderr_tail


def _evaluate(ctx: RunContext, index: int, attempt: int, out_dir: Path, timeout: float,
              describe: str, stderr_tail: str, seeds: list[int]) -> tuple[str, str, str, dict[str, Any]]:
    """Evaluate run_i's seeds in one process of its own (the template's evaluator) after their
    experiments: (status, describe, stderr tail, journal fields). Metrics an experiment wrote
    itself are moved aside; a harness changed since launch, no export at all, or a record
    whose provenance does not match the files evaluated make the run not ok."""
    ignored = []
    for folder in [out_dir, *(seeds_mod.seed_dir(out_dir, s) for s in seeds)]:
        info = folder / "final_info.json"
        if info.is_file():  # the experiment wrote metrics itself: kept aside, never used
            os.replace(info, folder / provenance.EXPERIMENT_FINAL_INFO)
            ignored.append((folder / provenance.EXPERIMENT_FINAL_INFO).relative_to(out_dir.parent).as_posix())
    fields: dict[str, Any] = {"evaluator": ctx.template.evaluator,
                              "ignored_final_info": ignored or None}
    contract = ctx.template.contract
    assert contract is not None
    first = next(iter(contract.EXPORTS.values()))
    if not any((seeds_mod.seed_dir(out_dir, s) / first).is_file() for s in seeds):
        return ("no_results", f"{describe}, but exported nothing to evaluate (no {first}): "
                f"{contract.EXPORT_HINT}; metrics written by experiment.py are ignored",
                stderr_tail, fields)
    now = provenance.harness_sha256()
    if now != ctx.harness_sha256:
        return ("untrusted", f"{describe}, but the harness source changed since this launch "
                f"started (sha256 {str(ctx.harness_sha256)[:12]} -> {now[:12]}): not evaluated",
                stderr_tail, fields)
    argv = provenance.evaluator_command(Path(f"run_{index}"), ctx.preset,
                                        manifest=ctx.template.root / "template.toml", seeds=seeds,
                                        module=ctx.template.evaluator)
    ctx.record("run.evaluating", run=index, attempt=attempt, harness_sha256=now)
    process = Process(tuple(argv), cwd=ctx.ws.root, log_dir=out_dir, timeout_s=timeout, name="evaluator",
                      env_extra=_harness_env(ctx), sandbox=ctx.sandbox_for(write=out_dir))
    outcome = ctx.execute(process, label=f"run {index} evaluator", job_key=f"run{index}/attempt{attempt}/evaluator",
                          on_start=ctx.process_started("evaluator"))
    fields["evaluator_duration_s"] = round(outcome.duration_s, 3)
    if not outcome.ok:
        return (outcome.status, f"{describe}; its evaluation {outcome.describe()}",
                outcome.stderr_tail, fields)
    problem = provenance_problem(out_dir, now, contract)
    if problem:
        return "untrusted", f"{describe}, but {problem}", stderr_tail, fields
    return "ok", f"{describe}; evaluated in {outcome.duration_s:.1f} s", stderr_tail, fields


def _harness_env(ctx: RunContext) -> dict[str, str]:
    """The preset, and the Hugging Face libraries told to stay offline: `harness.sae.prepare`
    fetched what a hub preset needs, and neither an experiment nor its evaluator has the
    network (nor waits for it)."""
    env = {"EXPERIMENT_PRESET": ctx.preset} if ctx.preset else {}
    if ctx.template.evaluator:
        env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    return env


def provenance_problem(out_dir: Path, harness: str, contract: ModuleType) -> str | None:
    """Why run_i/final_info.json cannot be trusted, or None when its provenance verifies. A
    run with seeds verifies when each seed's record does, is the very file the aggregate was
    made from, and the aggregate's means are those of the seeds' values."""
    try:
        record = json.loads(runfiles.read_text(out_dir / "final_info.json", out_dir))
        prov = record["provenance"]
        if "aggregate_of" in prov:
            return _aggregate_problem(out_dir, record, harness, contract)
        expected = {"evaluator": contract.EVALUATOR, "harness_sha256": harness,
                    **{key: provenance.sha256_file(out_dir / name)
                       for key, name in contract.EXPORTS.items()}}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return f"its final_info.json has no readable provenance ({type(exc).__name__}: {exc})"
    wrong = [k for k, v in expected.items() if prov.get(k) != v]
    if wrong:
        return f"the provenance of final_info.json does not verify ({', '.join(wrong)})"
    if contract.CHECKPOINT is None:
        return None
    checkpoint = record.get("checkpoint")
    path = out_dir / contract.CHECKPOINT
    if isinstance(checkpoint, dict):
        if not path.is_file() or checkpoint.get("sha256") != provenance.sha256_file(path):
            return f"{out_dir.name}/{contract.CHECKPOINT} changed after its evaluation"
        if checkpoint.get("matches_evaluated") is not True:
            return (f"{out_dir.name}/{contract.CHECKPOINT} does not hold the weights that were "
                    f"evaluated ({checkpoint.get('problem', 'unknown')}): the checkpoint or the "
                    "graphs were replaced after export")
    elif path.is_file():
        return f"the evaluator did not check {out_dir.name}/{contract.CHECKPOINT}"
    return None


def _aggregate_problem(out_dir: Path, record: dict[str, Any], harness: str,
                       contract: ModuleType) -> str | None:
    prov, section = record["provenance"], record["seeds"]
    if prov.get("evaluator") != contract.EVALUATOR or prov.get("harness_sha256") != harness:
        return "the provenance of final_info.json does not verify (evaluator, harness_sha256)"
    succeeded = [int(s) for s in section["succeeded"]]
    if sorted(prov["aggregate_of"]) != sorted(f"seed_{s}" for s in succeeded):
        return "final_info.json does not name the seeds it was made from"
    for seed in succeeded:
        folder = seeds_mod.seed_dir(out_dir, seed)
        problem = provenance_problem(folder, harness, contract)
        if problem:
            return f"seed {seed}: {problem}"
        if provenance.sha256_file(folder / "final_info.json") != \
                prov["aggregate_of"][f"seed_{seed}"]["final_info_sha256"]:
            return f"{out_dir.name}/seed_{seed}/final_info.json changed after the run was aggregated"
        seed_metrics = json.loads(runfiles.read_text(folder / "final_info.json", folder))["metrics"]
        for name, values in section["values"].items():
            if seed_metrics.get(name) != values[succeeded.index(seed)]:
                return f"the per-seed value of {name} does not match seed {seed}'s record"
    for name, values in section["values"].items():
        mean = math.fsum(values) / len(values)
        if not math.isclose(record["metrics"].get(name, math.nan), mean, rel_tol=1e-9, abs_tol=1e-12):
            return f"the mean of {name} in final_info.json is not the mean of its seeds"
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
