"""One child process as a SLURM job, submitted with submitit: the runner's contract on a cluster.

The job runs `agent.runner.run` on the compute node, so the child gets what it gets locally:
its own process group in the run directory, stdout/stderr in the same files
(`log_dir/{name}_stdout.txt`, a shared filesystem being what a cluster has), the allowlisted
environment, the sandbox. Nothing else of the submitter's environment reaches the job: sbatch
itself runs with only the allowlisted variables (plus SLURM_CONF and the user's SBATCH_*
defaults) and the script says `--export=ALL`, so the job's environment is that and what SLURM adds. Not
`--export=NONE`: with it SLURM loads the user's login environment on the node (`su -`), which
costs ~1.2 s per job here and brings in whatever a login shell exports, keys included. The
node's own `CUDA_VISIBLE_DEVICES` and `TMPDIR` (SLURM's GPU assignment, its scratch) are never
taken from the submitter.

Waiting is ours, not submitit's `result()` (whose status polls slow to one per 10 minutes): the
result pickle and the job's log are checked every fraction of a second and sacct every few
seconds; `timeout_s` counts from the job's start, not its time in the queue, and ends with
`scancel`. A job that ends without the runner's outcome (time limit, memory, node failure,
preemption, cancellation) is classified by `slurm_endings`. submitit is imported only when a
job is submitted or collected, never at import time.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.errors import UsageError
from agent.executors import LOCAL, OnStart, Process, slurm_endings
from agent.executors.slurm_options import SlurmOptions
from agent.runner import TAIL_CHARS, RunOutcome, log_paths, read_tail
from agent.sandbox import child_env
from agent.secrets import is_credential_name

log = logging.getLogger(__name__)

NODE_ENV = ("CUDA_VISIBLE_DEVICES", "TMPDIR")
"""Variables the compute node's SLURM sets for the job (its GPUs, its scratch): they win."""
SBATCH_ENV = ("SLURM_CONF", "SLURM_CLUSTERS")
"""Besides SBATCH_* (the user's defaults for sbatch's options), what sbatch itself reads."""
BACKSTOP_S = 60  # the runner inside the job stops the child this long after timeout_s, in case we are gone
CANCEL_WAIT_S = 120  # how long a cancelled job may take to leave the queue (SLURM's KillWait: 30 s)
SACCT_MAX_INTERVAL_S = 30.0  # the slowest sacct poll of a long job; faster while it is young
POLL_S = 0.2  # how often the result pickle and the job's log are looked at
RESULT_WAIT_S = 15  # a completed job's result pickle may show up late on a shared filesystem


def run_job(process: Process) -> RunOutcome:
    """Runs inside the SLURM job (unpickled by submitit): the process, as `Local` runs it.
    SLURM's GPU assignment and scratch on the node win over the orchestrator's."""
    extra = {k: v for k, v in process.env_extra.items() if k not in NODE_ENV or k not in os.environ}
    return LOCAL.run(replace(process, env_extra=extra))


def sbatch_env(base: Mapping[str, str], pass_env: Iterable[str] = ()) -> dict[str, str]:
    """The environment sbatch runs with, and so the job's (`--export=ALL`): the allowlisted
    variables a child would get, SLURM's configuration and the user's SBATCH_* defaults."""
    env = child_env(base, None, pass_env)
    for name, value in base.items():
        if (name in SBATCH_ENV or name.startswith("SBATCH_")) and not is_credential_name(name):
            env[name] = value
    for name in (*NODE_ENV, "SBATCH_EXPORT"):  # the node's; and --export is ours to set
        env.pop(name, None)
    return env


# sbatch started in exactly the environment a file holds (submitit gives it no environment of
# its own, and values on a command line would show in `ps` to every user of a login node).
_EXEC_SBATCH = ("import json, os, sys; "
                "os.execvpe('sbatch', ['sbatch', sys.argv[2]], json.load(open(sys.argv[1])))")


def _submitit_executor(folder: Path, env_file: Path) -> Any:
    """submitit's SLURM executor, with sbatch started in the environment `env_file` holds."""
    import submitit

    class Executor(submitit.SlurmExecutor):  # type: ignore[misc]
        def _make_submission_command(self, submission_file_path: Path) -> list[str]:
            return [sys.executable, "-c", _EXEC_SBATCH, str(env_file), str(submission_file_path)]

    return Executor(folder=folder)


class SlurmExecutor:
    """Runs children as SLURM jobs; submitit keeps its scripts, pickles and logs in `folder`,
    which (like the run directory) must be on a filesystem the nodes share."""

    def __init__(self, options: SlurmOptions, folder: Path) -> None:
        missing = [p for p in ("sbatch", "sacct", "scancel") if shutil.which(p) is None]
        if missing:
            raise UsageError(f"--executor slurm needs SLURM's {', '.join(missing)} on PATH "
                             "(run on a login node of the cluster, or load its module)")
        self.options = options
        self.folder = folder.resolve()

    def check(self) -> str | None:
        """What stops jobs from being followed here, or None: sacct must answer, since
        without accounting a cancelled or killed job is never seen to end."""
        try:
            proc = subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, text=True,
                                  timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"sacct did not answer ({exc})"
        if proc.returncode != 0:
            said = " ".join(proc.stderr.split())[:300]
            return f"sacct failed ({said}): SLURM accounting (slurmdbd) is needed to follow jobs"
        return None

    def run(self, process: Process, *, on_start: OnStart = None,
            on_submit: Callable[[str], object] | None = None) -> RunOutcome:
        """`process` as a SLURM job. `on_submit(job_id)` is called as soon as SLURM has
        accepted the job (journal it: `reattach` collects it after a crash of ours). `on_start`
        is never called: there is no local process. Its memory is bounded by SLURM (`--mem`,
        the job's cgroup), not by a limit computed from this machine's memory; its file size
        limit holds on the node. A job SLURM refuses comes back as a failed outcome saying why."""
        del on_start
        log_dir, name, timeout_s = process.log_dir, process.name, process.timeout_s
        log_dir.mkdir(parents=True, exist_ok=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        spec = replace(process, cwd=process.cwd.resolve(), log_dir=log_dir.resolve(),
                       timeout_s=timeout_s + BACKSTOP_S, env_extra=dict(process.env_extra),
                       memory_bytes=None)
        env_file = self.folder / f".sbatch-env-{uuid.uuid4().hex}.json"
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(sbatch_env(os.environ, process.pass_env), f)
        try:
            executor = _submitit_executor(self.folder, env_file)
            executor.update_parameters(**self.options.sbatch(name=name or "trusted-scientist",
                                                             cwd=spec.cwd, timeout_s=timeout_s))
            job = executor.submit(run_job, spec)
        except Exception as exc:  # sbatch refused (bad partition, no such gres, controller down)
            return self._refused(exc, log_dir, name, process.tail_chars)
        finally:
            env_file.unlink(missing_ok=True)
        log.info("SLURM job %s submitted: %s", job.job_id, " ".join(process.argv))
        if on_submit is not None:
            on_submit(job.job_id)
        return self._wait(job.job_id, log_dir=log_dir, name=name, timeout_s=timeout_s,
                          tail_chars=process.tail_chars, submitted=time.time())

    def reattach(self, job_id: str, *, log_dir: Path, timeout_s: float, name: str = "",
                 tail_chars: int = TAIL_CHARS) -> RunOutcome:
        """Wait for a job submitted before (by a process of ours that is gone) and collect its
        outcome; one that already finished is collected at once. Never submits anything."""
        return self._wait(job_id, log_dir=log_dir, name=name, timeout_s=timeout_s,
                          tail_chars=tail_chars, submitted=None)

    # --- waiting ----------------------------------------------------------------------------

    def _wait(self, job_id: str, *, log_dir: Path, name: str, timeout_s: float, tail_chars: int,
              submitted: float | None) -> RunOutcome:
        from submitit.core.utils import JobPaths

        paths = JobPaths(self.folder, job_id=job_id, task_id=0)
        began = time.time() if submitted is None else submitted
        started: float | None = None  # when the job started running (epoch seconds)
        record: slurm_endings.JobRecord | None = None
        next_poll, err_size = began + 1.0, -1
        while not paths.result_pickle.exists():
            now = time.time()
            if started is None and paths.stdout.exists():  # SLURM opens it when the job starts
                started = now if submitted is not None else self._start_of(job_id, now)
            size = paths.stderr.stat().st_size if paths.stderr.exists() else 0
            if now >= next_poll or size != err_size:  # slurmstepd writes there when it kills
                err_size = size
                record = slurm_endings.query(job_id)
                if record is not None and not record.active:
                    break
                if record is None and submitted is None and now - began > 30 \
                        and not paths.stdout.exists() and not _queued(job_id):
                    return self._unknown(job_id, log_dir, name, tail_chars)
                next_poll = now + min(SACCT_MAX_INTERVAL_S, max(1.0, (now - began) / 10))
            if started is not None and now - started > timeout_s:
                return self._cancel(job_id, log_dir, name, tail_chars, now - started)
            time.sleep(POLL_S)
        return self._collect(job_id, paths, log_dir, name, tail_chars, record, started)

    def _start_of(self, job_id: str, now: float) -> float:
        """When a job we did not see start began (sacct's Start), else now."""
        record = slurm_endings.query(job_id)
        if record is not None:
            try:
                return datetime.fromisoformat(record.start).timestamp()
            except ValueError:
                pass
        return now

    def _collect(self, job_id: str, paths: Any, log_dir: Path, name: str, tail_chars: int,
                 record: slurm_endings.JobRecord | None, started: float | None) -> RunOutcome:
        from submitit.core.utils import pickle_load

        stdout_path, stderr_path = _touch(log_dir, name)
        if not paths.result_pickle.exists():
            record = self._final_record(job_id, record, wait_s=60)
            if record is None:
                return self._unknown(job_id, log_dir, name, tail_chars)
            if record.word == "COMPLETED":  # a shared filesystem may show the pickle late
                _wait_for_file(paths.result_pickle, RESULT_WAIT_S)
        slurm_log = _text(paths.stderr)
        if paths.result_pickle.exists():
            kind, value = pickle_load(paths.result_pickle)
            if kind != "success" or not isinstance(value, RunOutcome):
                # run_job itself failed on the node (a missing interpreter, an unreadable pickle)
                last = (str(value).strip().splitlines() or ["?"])[-1]
                return RunOutcome("failed", None, 0.0, stdout_path, stderr_path,
                                  read_tail(stderr_path, tail_chars) or str(value)[-tail_chars:],
                                  infrastructure=f"SLURM job {job_id} could not run the "
                                                 f"experiment on its node: {last}")
            if value.ok:
                return value
            # The child failed or died: its own doing, or the machinery's (memory, time limit)?
            record = self._final_record(job_id, record, wait_s=10)
            if record is None:
                return value
            verdict = slurm_endings.verdict(record, slurm_log, self.options.mem)
            if verdict.ending in ("completed", "failed"):
                return value
            log.info("%s", verdict.infrastructure)
            return replace(value, status=verdict.status, infrastructure=verdict.infrastructure,
                           retryable=verdict.retryable)
        assert record is not None
        verdict = slurm_endings.verdict(record, slurm_log, self.options.mem)
        log.info("%s", verdict.infrastructure)
        tail = read_tail(stderr_path, tail_chars) or read_tail(paths.stderr, tail_chars)
        duration = record.elapsed_s or (time.time() - started if started else 0.0)
        # sacct's 0:0 after a node failure or a cancellation is no exit code.
        return RunOutcome(verdict.status, record.returncode or None, duration, stdout_path,
                          stderr_path, tail, infrastructure=verdict.infrastructure,
                          retryable=verdict.retryable)

    def _final_record(self, job_id: str, record: slurm_endings.JobRecord | None,
                      wait_s: float) -> slurm_endings.JobRecord | None:
        """sacct's record once it shows the job ended (accounting lags the job by a moment)."""
        deadline = time.time() + wait_s
        while record is None or record.active:
            if time.time() > deadline:
                return record
            time.sleep(0.5)
            record = slurm_endings.query(job_id)
        return record

    def _cancel(self, job_id: str, log_dir: Path, name: str, tail_chars: int,
                ran_s: float) -> RunOutcome:
        """scancel at the timeout; returns once SLURM no longer lists the job."""
        import submitit

        log.info("SLURM job %s: timed out after %.0f s, cancelling", job_id, ran_s)
        submitit.SlurmJob(folder=self.folder, job_id=job_id).cancel(check=False)
        deadline = time.time() + CANCEL_WAIT_S
        while time.time() < deadline and _queued(job_id):
            time.sleep(0.5)
        stdout_path, stderr_path = _touch(log_dir, name)
        return RunOutcome("timed_out", None, ran_s, stdout_path, stderr_path,
                          read_tail(stderr_path, tail_chars))

    def _refused(self, exc: Exception, log_dir: Path, name: str, tail_chars: int) -> RunOutcome:
        said = " ".join(str(exc).split())[-1000:]
        stdout_path, stderr_path = _touch(log_dir, name)
        with open(stderr_path, "a", encoding="utf-8") as err:
            err.write(f"sbatch refused the job: {said}\n")
        return RunOutcome("failed", None, 0.0, stdout_path, stderr_path,
                          read_tail(stderr_path, tail_chars),
                          infrastructure=f"SLURM did not accept the job: {said[-300:]}")

    def _unknown(self, job_id: str, log_dir: Path, name: str, tail_chars: int) -> RunOutcome:
        stdout_path, stderr_path = _touch(log_dir, name)
        return RunOutcome("failed", None, 0.0, stdout_path, stderr_path,
                          read_tail(stderr_path, tail_chars),
                          infrastructure=f"SLURM job {job_id} is unknown to sacct and left no "
                                         f"result in {self.folder}")


def _touch(log_dir: Path, name: str) -> tuple[Path, Path]:
    """The runner's log files, created empty if the job never got to write them."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out, err = log_paths(log_dir, name)
    out.touch(exist_ok=True)
    err.touch(exist_ok=True)
    return out, err


def _text(path: Path, limit: int = 256_000) -> str:
    """The end of a text file, empty if it does not exist."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - limit))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _wait_for_file(path: Path, within_s: float) -> None:
    deadline = time.time() + within_s
    while not path.exists() and time.time() < deadline:
        time.sleep(0.5)


def _queued(job_id: str) -> bool:
    """Whether squeue still lists the job (pending, running or completing)."""
    try:
        proc = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True,
                              text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())
