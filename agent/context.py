"""What every stage receives: the run directory, its journal, the template, the idea, the
configuration, the console, and the LLM client (created on first use).

Resume works by re-running the stages with the journal as memory: a step that already
happened (an LLM answer with the same call id, a committed run, an appended note) is read
back from the journal instead of being done again.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from agent.config import LaunchConfig
from agent.devices import DevicePool
from agent.executors import LOCAL, OnStart, Process
from agent.ideas import Idea
from agent.journal import Event, Journal
from agent.progress import Console
from agent.runner import RunOutcome
from agent.sandbox import Sandbox
from agent.secret_guard import BlockedFile
from agent.template import Template
from agent.workspace import Workspace

CRASH_ENV = "AGENT_TEST_CRASH_AT"
"""Test hook: `name[:n]` kills this process with SIGKILL at the n-th crash point `name`."""


@dataclass
class RunContext:
    """Shared by all stages of one launch (or resume)."""

    ws: Workspace
    journal: Journal
    template: Template
    idea: Idea
    config: LaunchConfig
    console: Console
    model: str
    """The resolved model string (litellm name or replay:PATH)."""
    preset: str | None
    sandbox: Sandbox | None = None
    """How LLM-edited code is confined (None: bubblewrap unavailable or --no-sandbox)."""
    harness_sha256: str | None = None
    """The harness's source hash when this launch started (templates with an evaluator): the
    evaluator is not started if the harness changed since."""
    llm_factory: Any = None
    """Callable returning the LLM client; called once, on the first question."""
    devices: DevicePool = field(default_factory=lambda: DevicePool(()))
    """The GPUs (none: the CPU) that experiment, evaluation and plot processes take one each."""
    slurm: Any = None
    only_seeds: tuple[int, ...] | None = None
    """A verification of some seeds (`agent.replay --verify --seeds`): run only these, with
    the threads each had when all the launch's seeds ran together."""
    """`agent.executors.slurm.SlurmExecutor` with `--executor slurm`: experiments and
    evaluations become SLURM jobs (their devices are SLURM's); None: local processes."""
    _llm: Any = None
    _crash_counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # From here on every file a commit keeps out for holding a secret is journaled and
        # shown, starting with those of the setup commit, made before this context existed.
        self.ws.report_blocked_to(self._secret_blocked)
        self.ws.report_refused_to(self._git_refused)
        if self.template.evaluator and self.harness_sha256 is None:
            from harness.provenance import harness_sha256

            self.harness_sha256 = harness_sha256()

    def _secret_blocked(self, blocked: BlockedFile) -> None:
        if blocked.size:
            self.record("file.too_large", path=blocked.path, bytes=blocked.size, step=blocked.step)
            self.console.warn(f"{blocked.path} at the commit '{blocked.step}': {blocked.fate()}")
            return
        found = [{"source": f.source, "how": f.how, "line": f.line} for f in blocked.findings]
        self.record("secret.blocked", path=blocked.path, found=found, step=blocked.step,
                    restored=blocked.restored, redacted=blocked.redacted)
        what = ", ".join(f.source + (" as base64" if f.how == "base64" else "")
                         + (f" on line {f.line}" if f.line else "") for f in blocked.findings)
        self.console.warn(f"{blocked.path} held a secret ({what}) at the commit '{blocked.step}': "
                          f"{blocked.fate()}")

    def _git_refused(self, paths: list[str]) -> None:
        self.record("git.refused", paths=paths[:50], count=len(paths))
        self.console.warn(f"the run's code wrote git metadata, deleted before git could read it "
                          f"(it could make git run a program or refuse to commit): {', '.join(paths[:5])}"
                          + (f" and {len(paths) - 5} more" if len(paths) > 5 else ""))

    @property
    def all_seeds(self) -> list[int]:
        """The seeds every run of this launch is trained with: 0 .. S-1."""
        return list(range(self.template.seeds_for(self.preset, self.config.seeds)))

    @property
    def seeds(self) -> list[int]:
        """The seeds to run now: all of them, or those a verification names."""
        return [s for s in self.all_seeds if self.only_seeds is None or s in self.only_seeds]

    # --- journal as memory ----------------------------------------------------------------
    def find(self, kind: str, **match: Any) -> Event | None:
        """The last event of `kind` whose data has all of `match`."""
        return self.journal.last(kind, **match)

    def record(self, kind: str, **data: Any) -> Event:
        with self._lock:  # the seeds of a run start from threads of their own
            return self.journal.append(kind, **data)

    def sandbox_for(self, *, write: Path | None = None,
                    new_files_only_except: Iterable[str] | None = None) -> Sandbox | None:
        """The sandbox of one experiment, evaluator or plot process (None when unsandboxed):
        the run directory writable, its `.git` and journal excepted; with `write`, only that
        directory (an experiment's and its evaluator's `run_i`); with
        `new_files_only_except`, every existing entry of the run directory read-only but the
        names given (plot.py: it may write its figures, not the results, notes or code it
        plots from). Never the network."""
        if self.sandbox is None:
            return None
        if write is not None:
            return replace(self.sandbox, writable=(write,), readonly=())
        if new_files_only_except is not None:
            allowed = {n for n in new_files_only_except if "/" not in n}  # never run_1/...
            existing = tuple(p for p in sorted(self.ws.root.iterdir()) if p.name not in allowed)
            return replace(self.sandbox, readonly=(*self.sandbox.readonly, *existing))
        return self.sandbox

    def execute(self, process: Process, *, label: str, threads: int | None = None,
                on_start: OnStart = None, job_key: str | None = None,
                gpu: Literal["one", "none", "all"] = "one") -> RunOutcome:
        """Run `process` through its executor: as a SLURM job with `--executor slurm` and a
        `job_key` (experiments and evaluations), else here. `gpu`: "one" takes a device of
        its own from the pool (`CUDA_VISIBLE_DEVICES`, waiting while every GPU is busy; on the
        CPU its share of the cores as `threads`, and its memory limit); "none" sees no GPU (a
        process that needs none); "all" sees the GPUs the launch sees and waits for none
        (`harness.sae.prepare`: a cached preparation must not wait for a GPU an experiment
        holds). `label` names it in the journal and the status line."""
        if self.slurm is not None and job_key is not None:
            cores = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}
            return self._as_job(replace(process, env_extra={**process.env_extra, **cores}),
                                job_key=job_key, label=label)
        if gpu == "all":
            return LOCAL.run(process, on_start=on_start)
        if gpu == "none":
            return LOCAL.run(replace(process, env_extra={**process.env_extra, "CUDA_VISIBLE_DEVICES": ""}),
                             on_start=on_start)

        def waiting(message: str) -> None:
            self.record("device.waiting", process=label, message=message)
            self.status(f"{label}: {message}")

        with self.devices.hold(threads=threads, on_wait=waiting) as held:
            if held.device != "cpu":
                self.record("device.held", process=label, device=held.device, waited_s=held.waited_s)
            return LOCAL.run(replace(process, env_extra={**process.env_extra, **held.env},
                                     memory_bytes=process.memory_bytes if held.device == "cpu" else None),
                             on_start=on_start)

    def jobs(self, prefix: str = "") -> list[Event]:
        """Every `slurm.submitted` event whose key starts with `prefix`."""
        return [e for e in self.journal.of_kind("slurm.submitted") if str(e.data.get("key", "")).startswith(prefix)]

    def pending_jobs(self, prefix: str = "") -> list[Event]:
        """`slurm.submitted` events (keys starting with `prefix`) whose job has no
        `slurm.finished`: jobs a crash of ours left queued or running, to reattach to."""
        finished = {e.data.get("job_id") for e in self.journal.of_kind("slurm.finished")}
        return [e for e in self.journal.of_kind("slurm.submitted")
                if str(e.data.get("key", "")).startswith(prefix) and e.data.get("job_id") not in finished]

    def _as_job(self, process: Process, *, job_key: str, label: str) -> RunOutcome:
        """One process as a SLURM job: reattached when a job for `job_key` is still queued or
        running (never submitted twice), else submitted; a job lost with its node or preempted
        is submitted once more; how it ended is journaled."""
        from agent import runner

        log_dir, name, timeout_s = process.log_dir, process.name, process.timeout_s
        ended = [e for e in self.journal.of_kind("slurm.finished") if e.data.get("key") == job_key]
        tries = sum(1 for e in self.journal.of_kind("slurm.submitted") if e.data.get("key") == job_key)
        if ended and not (ended[-1].data.get("retryable") and tries < 2):
            # Its job ended before a crash of ours: collected from the journal, not run again.
            d = ended[-1].data
            out, err = runner.log_paths(log_dir, name)
            return RunOutcome(d["status"], d.get("returncode"), float(d.get("duration_s") or 0.0), out, err,
                              runner.read_tail(err), d.get("infrastructure"), bool(d.get("retryable")))
        while True:
            pending = [e for e in self.pending_jobs(job_key) if e.data.get("key") == job_key]
            job: dict[str, str] = {}
            if pending:
                job["id"] = str(pending[-1].data["job_id"])
                self.record("slurm.reattached", key=job_key, job_id=job["id"], process=label)
                self.status(f"{label}: reattached to SLURM job {job['id']}")
                outcome = self.slurm.reattach(job["id"], log_dir=log_dir, timeout_s=timeout_s, name=name)
            else:
                def submitted_as(job_id: str, job: dict[str, str] = job) -> None:
                    job["id"] = job_id
                    self.record("slurm.submitted", key=job_key, job_id=job_id, process=label,
                                argv=list(process.argv))
                    self.status(f"{label}: SLURM job {job_id}")
                    self.crashpoint("slurm_submitted")

                outcome = self.slurm.run(process, on_submit=submitted_as)
            self.record("slurm.finished", key=job_key, job_id=job.get("id"), process=label,
                        status=outcome.status, returncode=outcome.returncode,
                        infrastructure=outcome.infrastructure, retryable=outcome.retryable,
                        duration_s=round(outcome.duration_s, 3))
            tries = sum(1 for e in self.journal.of_kind("slurm.submitted") if e.data.get("key") == job_key)
            if not outcome.retryable or tries >= 2:  # node failure or preemption: once more
                return outcome
            self.record("slurm.retrying", key=job_key, job_id=job.get("id"), why=outcome.infrastructure)
            self.console.warn(f"{label}: {outcome.describe()}; submitting it once more")

    def process_started(self, name: str) -> Callable[[int], None]:
        """An `on_start` for the runner: journals a child's process group, so a resume after
        a crash of ours can stop it (`orchestrator._kill_leftovers`)."""
        def on_start(pgid: int) -> None:
            self.record("process.started", name=name, pgid=pgid)
            self.crashpoint(f"{name}_started")
        return on_start

    # --- the LLM ----------------------------------------------------------------------------
    @property
    def llm(self) -> Any:
        if self._llm is None:
            self._llm = self.llm_factory()
        return self._llm

    def ask(self, messages: list[dict[str, str]], *, stage: str, prompt_kind: str, call_id: str,
            cache: Sequence[Any] | None = None) -> Any:
        """An answer for `call_id`: from the journal if this call was answered before a crash,
        else from the model (`cache`: the call's cache breakpoints, `agent.llm.caching`).
        Returns the client's Completion or ContextOverflow value."""
        done = self.find("llm.response", call_id=call_id)
        if done is not None:
            from agent.llm import Completion

            d = done.data
            return Completion(text=d["text"], input_tokens=d.get("input_tokens") or 0,
                              output_tokens=d.get("output_tokens") or 0, cost_usd=d.get("cost_usd"),
                              latency_s=d.get("latency_s") or 0.0, retries=d.get("retries") or 0,
                              model=d.get("model") or self.model, replay=bool(d.get("replay")))
        return self.llm.complete(messages, stage=stage, prompt_kind=prompt_kind, call_id=call_id, cache=cache)

    def spent(self) -> tuple[int, float | None]:
        """Tokens and dollars spent so far in this run (cost None if any price is unknown)."""
        tokens, cost, unknown = 0, 0.0, False
        for e in self.journal.of_kind("llm.response"):
            tokens += int(e.data.get("input_tokens") or 0) + int(e.data.get("output_tokens") or 0)
            if e.data.get("cost_usd") is None:
                unknown = True
            else:
                cost += float(e.data["cost_usd"])
        return tokens, (None if unknown and cost == 0 else cost)

    def status(self, text: str) -> None:
        """The live status line: what is happening, plus tokens and cost so far."""
        if self.console.quiet:
            return
        tokens, cost = self.spent()
        money = "cost unknown" if cost is None else f"${cost:.2f}"
        self.console.status(f"{text} | {tokens:,} tokens, {money}")

    # --- tests ------------------------------------------------------------------------------
    def crashpoint(self, name: str) -> None:
        """Die here (SIGKILL, like a power cut) when the test hook names this point."""
        spec = os.environ.get(CRASH_ENV)
        if not spec:
            return
        target, _, nth = spec.partition(":")
        if target != name:
            return
        self._crash_counts[name] = self._crash_counts.get(name, 0) + 1
        if self._crash_counts[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
