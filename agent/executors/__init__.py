"""Where a child process runs, with one contract: a `Process` in, a `RunOutcome` out.

Every process the loop starts on what a run holds goes through an `Executor`: the experiment's
seeds, their aggregation, the harness's preparation, the evaluator, plot.py, the paper's
compile and the PDF tools. `Local` runs it here (`agent.runner.run`: its own process group,
logs in `log_dir`, the sandbox, the limits); `agent.executors.slurm.SlurmExecutor` runs the
same `Process` as a SLURM job. `agent.context.RunContext.execute` picks one per process (a
job key and `--executor slurm`: SLURM; else local, with a device from the pool).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agent import runner
from agent.runner import TAIL_CHARS, RunOutcome
from agent.sandbox import Sandbox

OnStart = Callable[[int], object] | None
"""Called with the child's process group once it exists (journal it: a resume stops it)."""


@dataclass(frozen=True)
class Process:
    """One child process: what it runs, where, for how long, and how it is confined."""

    argv: tuple[str, ...]
    """`python` first means this interpreter (`runner.run`)."""
    cwd: Path
    log_dir: Path
    """Its stdout and stderr: `log_dir/{name}stdout.txt` and `{name}stderr.txt`."""
    timeout_s: float
    name: str = ""
    env_extra: Mapping[str, str] = field(default_factory=dict)
    """Added to the allowlisted environment (`sandbox.child_env`)."""
    sandbox: Sandbox | None = None
    """None: unconfined (bubblewrap unavailable, or --no-sandbox)."""
    pass_env: tuple[str, ...] = ()
    """Variables of ours it may see besides the allowlist (a template's declared ones)."""
    memory_bytes: int | None = None
    """What it may allocate (RLIMIT_DATA); past it an allocation fails in that child only."""
    file_bytes: int | None = None
    """The largest file it may write (RLIMIT_FSIZE)."""
    tail_chars: int = TAIL_CHARS


class Executor(Protocol):
    def run(self, process: Process, *, on_start: OnStart = None) -> RunOutcome:
        """Run `process` to its end (or its timeout); expected failures come back as an
        outcome, never an exception."""
        ...


class Local:
    """The process here, as `agent.runner.run` runs it."""

    def run(self, process: Process, *, on_start: OnStart = None) -> RunOutcome:
        return runner.run(process.argv, cwd=process.cwd, log_dir=process.log_dir,
                          timeout_s=process.timeout_s, name=process.name,
                          env_extra=process.env_extra, tail_chars=process.tail_chars,
                          on_start=on_start, sandbox=process.sandbox, pass_env=process.pass_env,
                          memory_bytes=process.memory_bytes, file_bytes=process.file_bytes)


LOCAL = Local()
