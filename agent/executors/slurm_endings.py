"""How a SLURM job ended, in plain words: sacct's State, ExitCode and Reason read into one of a
closed set of endings, each with the runner's status and whether a retry may help.

A crash of the experiment's own code is not an ending of this kind: the job completes and
brings back the runner's outcome (exit code, stderr tail). These endings are the machinery's:
the time limit, memory, a failed node, a preemption, a cancellation from outside.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import Literal

from agent.runner import RunStatus

SlurmEnding = Literal["completed", "timeout", "out_of_memory", "node_fail", "preempted",
                      "boot_fail", "cancelled", "deadline", "failed", "unknown"]
"""completed: exited 0 (the runner's outcome says how the experiment did); timeout: the job's
time limit; out_of_memory: over --mem; node_fail / boot_fail: its node died or never came up;
preempted: evicted for another job; cancelled: scancel from outside this run; deadline: past
--deadline; failed: the job itself (not the experiment) exited non-zero; unknown: anything else."""

ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED",
                           "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SUSPENDED", "SIGNALING",
                           "STAGE_OUT", "STOPPED", "SPECIAL_EXIT", "RESV_DEL_HOLD"})
"""sacct states of a job that has not ended yet."""

SACCT_FIELDS = ("JobID", "State", "ExitCode", "Reason", "ReqMem", "Timelimit", "Elapsed",
                "Start", "NodeList")

_ENDINGS: dict[str, SlurmEnding] = {
    "COMPLETED": "completed", "TIMEOUT": "timeout", "OUT_OF_MEMORY": "out_of_memory",
    "NODE_FAIL": "node_fail", "PREEMPTED": "preempted", "BOOT_FAIL": "boot_fail",
    "CANCELLED": "cancelled", "DEADLINE": "deadline", "FAILED": "failed",
}

# (status of the outcome, whether the same job may be submitted again, the words after "SLURM job N")
_TABLE: dict[SlurmEnding, tuple[RunStatus, bool, str]] = {
    "completed": ("failed", False, "ended without bringing back the runner's outcome"),
    "timeout": ("timed_out", False, "reached its time limit (time={time_limit})"),
    "out_of_memory": ("killed", False, "ran out of memory (mem={mem})"),
    "node_fail": ("killed", True, "was lost: its node {nodes} failed"),
    "preempted": ("killed", True, "was preempted to make room for another job"),
    "boot_fail": ("killed", True, "never started: its node {nodes} failed to boot"),
    "cancelled": ("killed", False, "was cancelled from outside this run ({state})"),
    "deadline": ("killed", False, "passed its deadline before it could finish"),
    "failed": ("failed", False, "failed before the experiment could report (exit code {exit})"),
    "unknown": ("killed", False, "ended in state {state}"),
}

# slurmstepd's words when it kills a step over its memory: jobacct_gather's polling
# ("exceeded memory limit (536780800 > 52428800), being killed") or cgroup's OOM events
# ("Detected 1 oom-kill event(s) in StepId=12.batch").
_MEMORY_KILL = re.compile(r"^slurmstepd\S*: error: .*(memory limit|oom[-_]kill)", re.M | re.I)


@dataclass(frozen=True)
class JobRecord:
    """What sacct says about one job's allocation (its line without steps)."""

    job_id: str
    """The job's id."""
    state: str
    """sacct's State as written, e.g. `CANCELLED by 0`."""
    exit_code: str
    """`exit:signal`, e.g. `0:9`."""
    reason: str
    """Why it is pending or ended, `None` when SLURM gives none."""
    req_mem: str
    """The memory it asked for, e.g. `50M`."""
    time_limit: str
    """Its time limit, e.g. `00:05:00` or `UNLIMITED`."""
    elapsed_s: float
    """Seconds it ran."""
    start: str
    """When it started (ISO), `Unknown` or `None` while pending."""
    nodes: str
    """Where it ran (a node list), `None assigned` while pending."""

    @property
    def word(self) -> str:
        """The state's first word: `CANCELLED` of `CANCELLED by 0`."""
        return self.state.split()[0] if self.state.strip() else "UNKNOWN"

    @property
    def active(self) -> bool:
        """True while the job has not ended."""
        return self.word in ACTIVE_STATES

    @property
    def returncode(self) -> int | None:
        """The runner's convention: the exit code, or minus the signal that killed it."""
        code, _, sig = self.exit_code.partition(":")
        try:
            return -int(sig) if sig and int(sig) else int(code)
        except ValueError:
            return None


def query(job_id: str, timeout_s: float = 30) -> JobRecord | None:
    """The job's record from sacct, None when sacct does not know it (yet) or cannot answer."""
    try:
        proc = subprocess.run(["sacct", "-X", "-n", "-P", "-j", job_id, "-o", ",".join(SACCT_FIELDS)],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return parse(proc.stdout, job_id)


def parse(text: str, job_id: str) -> JobRecord | None:
    """The line of `sacct -X -n -P -o <SACCT_FIELDS>` output that belongs to `job_id`."""
    for line in text.splitlines():
        cells = line.split("|")
        if len(cells) != len(SACCT_FIELDS) or cells[0] != job_id:
            continue
        values = dict(zip(SACCT_FIELDS, cells, strict=True))
        return JobRecord(job_id=job_id, state=values["State"], exit_code=values["ExitCode"],
                         reason=values["Reason"], req_mem=values["ReqMem"],
                         time_limit=values["Timelimit"], elapsed_s=_seconds(values["Elapsed"]),
                         start=values["Start"], nodes=values["NodeList"])
    return None


def _seconds(elapsed: str) -> float:
    """sacct's `[D-]HH:MM:SS` (or `MM:SS`) in seconds."""
    days, _, clock = elapsed.rpartition("-")
    try:
        parts = [int(p) for p in clock.split(":")]
    except ValueError:
        return 0.0
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return float(seconds + (int(days) * 86400 if days.isdigit() else 0))


def ending_of(record: JobRecord, slurm_log: str = "") -> SlurmEnding:
    """The ending of a finished job; `slurm_log` is the job's own stderr (submitit's log), where
    slurmstepd says it killed the job over its memory: without cgroups that job ends FAILED or
    CANCELLED, not OUT_OF_MEMORY."""
    word = record.word
    if word == "OUT_OF_MEMORY" or (word != "TIMEOUT" and _MEMORY_KILL.search(slurm_log)):
        return "out_of_memory"
    return _ENDINGS.get(word, "unknown")


@dataclass(frozen=True)
class Verdict:
    """How a job's ending reads in a `RunOutcome`."""

    ending: SlurmEnding
    status: RunStatus
    infrastructure: str
    """One sentence for people and the journal, e.g. `SLURM job 12 ran out of memory (mem=4G)`."""
    retryable: bool


def verdict(record: JobRecord, slurm_log: str = "", mem: str | None = None) -> Verdict:
    """The ending of a finished job in plain words; `mem` is what was asked for (sacct's
    ReqMem otherwise)."""
    ending = ending_of(record, slurm_log)
    status, retryable, words = _TABLE[ending]
    text = words.format(time_limit=record.time_limit, mem=mem or record.req_mem,
                        nodes=record.nodes, state=record.state, exit=record.exit_code)
    if record.reason not in ("", "None") and ending not in ("completed", "cancelled"):
        text += f"; SLURM's reason: {record.reason}"
    return Verdict(ending, status, f"SLURM job {record.job_id} {text}", retryable)
