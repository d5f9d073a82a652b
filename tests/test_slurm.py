"""Experiments as SLURM jobs (agent.executors.slurm) against a real one-node cluster: outcomes
as the runner gives them, timeouts that cancel, endings the machinery caused in plain words,
reattaching after the orchestrator was killed, and no credential in a job.

The cluster is the one `.ci/slurm-cluster` runs (state in $SLURM_STATE_DIR): used if it
answers, else started here (as root, installing Debian's packages if needed) and stopped at
the end. Without it these tests skip, unless SLURM_REQUIRED=1 (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.errors import UsageError
from agent.executors import Process, slurm_endings
from agent.executors.slurm import SlurmExecutor, SlurmOptions, sbatch_env
from agent.runner import RunOutcome

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".ci" / "slurm-cluster"
STATE_DIR = Path(os.environ.get("SLURM_STATE_DIR", "/tmp/trusted-scientist-slurm"))
PY = "python"  # the runner's name for this interpreter, on the node too (shared filesystem)


# --- the cluster ------------------------------------------------------------------------------

def _conf() -> Path:
    return STATE_DIR / "etc" / "slurm.conf"


def _answers() -> bool:
    """Whether the cluster in STATE_DIR schedules and accounts (sinfo and sacct both answer)."""
    if shutil.which("sinfo") is None or not _conf().exists():
        return False
    env = {**os.environ, "SLURM_CONF": str(_conf())}
    try:
        return all(subprocess.run(cmd, env=env, capture_output=True, timeout=15).returncode == 0
                   for cmd in (["sinfo", "-h"], ["sacct", "-n", "-X", "-j", "1"]))
    except (OSError, subprocess.TimeoutExpired):
        return False


def _why_not_startable() -> str | None:
    if os.geteuid() != 0:
        return "no SLURM cluster answers and starting one needs root (.ci/slurm-cluster start)"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "no SLURM cluster answers, SLURM is not installed and there is no apt-get"
    return None


@pytest.fixture(scope="session")
def cluster() -> Iterator[Path]:
    """A one-node cluster for the session; SLURM_CONF points at it while the tests run."""
    started = False
    if not _answers():
        why = _why_not_startable()
        if why is None:
            proc = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True,
                                  timeout=900, env={**os.environ, "SLURM_STATE_DIR": str(STATE_DIR)})
            started = proc.returncode == 0
            if not started:
                why = f".ci/slurm-cluster start failed: {(proc.stdout + proc.stderr)[-1500:]}"
        if why is not None:
            if os.environ.get("SLURM_REQUIRED") == "1":
                pytest.fail(f"SLURM_REQUIRED=1 but {why}")
            pytest.skip(why)
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(_conf())
    try:
        yield STATE_DIR
    finally:
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        if started:  # stopped by the PIDs the script recorded, nothing else
            subprocess.run([str(SCRIPT), "stop"], capture_output=True, timeout=300,
                           env={**os.environ, "SLURM_STATE_DIR": str(STATE_DIR)})


def _run(tmp_path: Path, body: str, *, options: SlurmOptions | None = None,
         timeout_s: float = 60, name: str = "exp", **kw: object) -> tuple[RunOutcome, list[str]]:
    """Run a Python snippet as a job; returns the outcome and the job ids reported."""
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(body), encoding="utf-8")
    submitted: list[str] = []
    executor = SlurmExecutor(options or SlurmOptions(), tmp_path / "slurm")
    process = Process((PY, str(script)), cwd=tmp_path, log_dir=tmp_path / "logs", timeout_s=timeout_s,
                      name=name, **kw)  # type: ignore[arg-type]
    out = executor.run(process, on_submit=submitted.append)
    return out, submitted


def _queued(job_id: str) -> bool:
    proc = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True,
                          text=True, check=False)
    return bool(proc.stdout.strip())


# --- jobs on the cluster ----------------------------------------------------------------------

def test_a_job_that_succeeds_reports_its_id_and_its_output(cluster: Path, tmp_path: Path) -> None:
    out, ids = _run(tmp_path, """
        import os, sys
        print("result 0.25 from", os.getcwd())
        print("a warning", file=sys.stderr)
    """)
    assert out.status == "ok", out
    assert len(ids) == 1 and ids[0].isdigit()
    assert out.stdout_path == tmp_path / "logs" / "exp_stdout.txt"
    assert out.stdout_path.read_text() == f"result 0.25 from {tmp_path}\n"
    assert out.stderr_tail == "a warning"
    assert out.infrastructure is None and not out.retryable


def test_a_crash_of_the_experiment_comes_back_as_the_runner_gives_it(cluster: Path,
                                                                       tmp_path: Path) -> None:
    out, _ = _run(tmp_path, """
        print("step 1")
        raise ValueError("learning rate must be positive")
    """)
    assert out.status == "failed" and out.returncode == 1
    assert "ValueError: learning rate must be positive" in out.stderr_tail
    assert out.infrastructure is None  # the code's doing: it goes back to the LLM as today
    assert "failed with exit code 1" in out.describe()


def test_a_timeout_cancels_the_job_and_its_processes(cluster: Path, tmp_path: Path) -> None:
    out, ids = _run(tmp_path, f"""
        import os, time
        open({str(tmp_path / 'pid')!r}, "w").write(str(os.getpid()))
        print("started", flush=True)
        time.sleep(120)
    """, timeout_s=3)
    assert out.status == "timed_out", out
    assert out.duration_s >= 3  # not ended before its limit
    assert not _queued(ids[0])
    pid = int((tmp_path / "pid").read_text())
    assert not Path(f"/proc/{pid}").exists() or \
        Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert out.stdout_path.read_text() == "started\n"


def test_a_jobs_file_limit_holds_on_the_node(cluster: Path, tmp_path: Path) -> None:
    """The same `Process` runs locally or as a job: its limits travel with it (a run folder's
    quota is a file size limit on each child, local or on the cluster)."""
    out, _ = _run(tmp_path, """
        open("big.dat", "wb").write(bytes(3 * 2**20))
        print("WROTE IT ALL")
    """, file_bytes=2**20)
    assert out.status != "ok" and "WROTE IT ALL" not in out.stdout_path.read_text()
    assert (tmp_path / "big.dat").stat().st_size <= 2**20


def test_a_job_over_its_memory_is_reported_as_out_of_memory(cluster: Path, tmp_path: Path) -> None:
    out, _ = _run(tmp_path, """
        import time
        hog = bytearray(500 * 2**20)  # 500 MB against --mem=50M
        time.sleep(20)
    """, options=SlurmOptions(mem="50M"), timeout_s=60)
    if out.ok or out.status == "timed_out":
        pytest.skip("this cluster does not enforce --mem (no cgroups and no "
                    "JobAcctGatherParams=OverMemoryKill)")
    assert out.status == "killed", out
    assert out.infrastructure is not None and "ran out of memory (mem=50M)" in out.infrastructure
    assert not out.retryable
    assert out.describe().startswith(out.infrastructure)


def test_a_node_failure_is_retryable(cluster: Path, tmp_path: Path) -> None:
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True,
                          check=True).stdout.split()[0]

    def fail_the_node(job_id: str) -> None:
        # Once the job runs, mark its node down: SLURM ends the job NODE_FAIL (JobRequeue=0).
        deadline = time.time() + 30
        while time.time() < deadline and subprocess.run(
                ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True,
                text=True).stdout.strip() != "RUNNING":
            time.sleep(0.2)
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=down",
                        "reason=test_slurm"], check=True)

    try:
        out = _sleeping_job(tmp_path, fail_the_node)
    finally:
        _node_back(node)
    assert out.status == "killed", out
    assert out.retryable
    assert out.infrastructure is not None and f"its node {node} failed" in out.infrastructure


def _sleeping_job(tmp_path: Path, on_submit: Callable[[str], None]) -> RunOutcome:
    """A job that sleeps a minute, with `on_submit` called (in a thread) once it is submitted."""
    threads: list[threading.Thread] = []

    def submitted(job_id: str) -> None:
        threads.append(threading.Thread(target=on_submit, args=(job_id,), daemon=True))
        threads[-1].start()

    executor = SlurmExecutor(SlurmOptions(), tmp_path / "slurm")
    out = executor.run(Process((PY, "-c", "import time; time.sleep(60)"), cwd=tmp_path,
                               log_dir=tmp_path / "logs", timeout_s=90, name="node"), on_submit=submitted)
    for thread in threads:
        thread.join(timeout=30)
    return out


def _node_back(node: str) -> None:
    """The node idle again (ReturnToService=2 brings it back by itself once slurmd answers)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        state = subprocess.run(["sinfo", "-h", "-n", node, "-o", "%t"], capture_output=True,
                               text=True).stdout.strip()
        if state in ("idle", "mix", "alloc"):
            return
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"],
                       capture_output=True)
        time.sleep(0.5)
    raise AssertionError(f"node {node} did not come back: {state}")


SUBMITTER = """
import sys
from pathlib import Path
from agent.executors import Process
from agent.executors.slurm import SlurmExecutor, SlurmOptions, sbatch_env
tmp = Path(sys.argv[1])
executor = SlurmExecutor(SlurmOptions(), tmp / "slurm")
executor.run(Process(("python", "-c", "import time; time.sleep(4); print('finished')"), cwd=tmp,
                     log_dir=tmp / "logs", timeout_s=60, name=sys.argv[2]),
             on_submit=lambda job_id: print(job_id, flush=True))
"""

REATTACHER = """
import dataclasses, json, sys
from pathlib import Path
from agent.executors.slurm import SlurmExecutor, SlurmOptions, sbatch_env
tmp = Path(sys.argv[1])
out = SlurmExecutor(SlurmOptions(), tmp / "slurm").reattach(
    sys.argv[3], log_dir=tmp / "logs", timeout_s=60, name=sys.argv[2])
print(json.dumps(dataclasses.asdict(out), default=str))
"""


def test_reattach_collects_a_job_whose_submitter_was_killed(cluster: Path, tmp_path: Path) -> None:
    name = f"reattach-{uuid.uuid4().hex[:8]}"
    with open(tmp_path / "submitter.err", "w+") as err:
        submitter = subprocess.Popen([sys.executable, "-c", SUBMITTER, str(tmp_path), name],
                                     stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO)
        assert submitter.stdout is not None
        job_id = submitter.stdout.readline().strip()
        submitter.send_signal(signal.SIGKILL)  # the orchestrator dies with its job in flight
        submitter.wait()
        err.seek(0)
        assert job_id.isdigit(), f"no job id from the submitter: {job_id!r}\n{err.read()[-2000:]}"
    assert _queued(job_id), subprocess.run(["sacct", "-j", job_id], capture_output=True,
                                           text=True).stdout

    proc = subprocess.run([sys.executable, "-c", REATTACHER, str(tmp_path), name, job_id],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["status"] == "ok", (out, proc.stderr[-2000:])
    assert (tmp_path / "logs" / f"{name}_stdout.txt").read_text() == "finished\n"
    deadline, jobs = time.monotonic() + 30, []
    while not jobs and time.monotonic() < deadline:  # accounting can lag behind the job's end
        jobs = subprocess.run(["sacct", "-n", "-X", "-P", f"--name={name}", "-o", "JobID"],
                              capture_output=True, text=True, check=True).stdout.split()
        time.sleep(0 if jobs else 0.5)
    assert jobs == [job_id]  # reattached, never submitted again

    # A finished job is collected at once.
    start = time.monotonic()
    again = SlurmExecutor(SlurmOptions(), tmp_path / "slurm").reattach(
        job_id, log_dir=tmp_path / "logs", timeout_s=60, name=name)
    assert again.ok, again
    assert time.monotonic() - start < 5


def test_no_credential_reaches_the_job(cluster: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"sk-ant-api03-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    monkeypatch.setenv("HARNESS_HUB_TOKEN", secret)  # an allowed prefix, a credential's name
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    out, _ = _run(tmp_path, """
        import json, os
        seen = {"child": dict(os.environ), "ancestors": []}
        pid = os.getppid()
        # Up through the job's own processes (submitit's Python, the batch shell) to slurmstepd.
        while pid > 1:
            comm = open(f"/proc/{pid}/comm").read().strip()
            if comm.startswith("slurmstepd"):
                break
            environ = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
            seen["ancestors"].append({"comm": comm, "environ": environ})
            pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        print(json.dumps(seen))
    """)
    assert out.ok, out
    seen = json.loads(out.stdout_path.read_text())
    assert len(seen["ancestors"]) >= 2  # submitit's Python and the batch shell were read
    assert secret not in json.dumps(seen)
    assert "ANTHROPIC_API_KEY" not in seen["child"] and "HARNESS_HUB_TOKEN" not in seen["child"]
    assert seen["child"]["PATH"] == os.environ["PATH"]  # the submitter's allowlisted variables


def test_a_job_asking_for_a_gpu_is_scheduled_and_sees_it(cluster: Path, tmp_path: Path) -> None:
    gres = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout
    if "gpu" not in gres:
        pytest.skip(f"the cluster's nodes have no GPU gres ({gres.strip()})")
    # The local device pool's CPU setting (no GPU) loses to SLURM's assignment on the node.
    out, ids = _run(tmp_path, "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'))",
                    options=SlurmOptions(gres="gpu:1"), env_extra={"CUDA_VISIBLE_DEVICES": ""})
    assert out.ok, out
    assert out.stdout_path.read_text().strip() == "0"
    deadline = time.time() + 15  # accounting records the allocation a moment after the job
    while True:
        alloc = subprocess.run(["sacct", "-n", "-X", "-P", "-j", ids[0], "-o", "AllocTRES"],
                               capture_output=True, text=True).stdout
        if "gres/gpu=1" in alloc or time.time() > deadline:
            break
        time.sleep(0.5)
    assert "gres/gpu=1" in alloc


def test_a_job_slurm_refuses_is_a_failed_outcome_saying_why(cluster: Path, tmp_path: Path) -> None:
    out, ids = _run(tmp_path, "print(1)", options=SlurmOptions(partition="no_such_partition"))
    assert out.status == "failed" and not ids
    assert out.infrastructure is not None and "invalid partition" in out.infrastructure.lower()


# --- without a cluster: endings, options, imports ----------------------------------------------

SACCT = "|".join(slurm_endings.SACCT_FIELDS)


def _record(state: str, exit_code: str = "0:0", reason: str = "None") -> slurm_endings.JobRecord:
    line = f"12|{state}|{exit_code}|{reason}|4G|00:10:00|00:03:07|2026-01-01T10:00:00|gpu01"
    record = slurm_endings.parse(f"{line}\n", "12")
    assert record is not None
    return record


@pytest.mark.parametrize("state, exit_code, status, retryable, words", [
    ("TIMEOUT", "0:15", "timed_out", False, "SLURM job 12 reached its time limit (time=00:10:00)"),
    ("OUT_OF_MEMORY", "0:125", "killed", False, "SLURM job 12 ran out of memory (mem=4G)"),
    ("NODE_FAIL", "0:0", "killed", True, "SLURM job 12 was lost: its node gpu01 failed"),
    ("PREEMPTED", "0:15", "killed", True, "SLURM job 12 was preempted"),
    ("BOOT_FAIL", "0:0", "killed", True, "SLURM job 12 never started"),
    ("CANCELLED by 1000", "0:15", "killed", False,
     "SLURM job 12 was cancelled from outside this run (CANCELLED by 1000)"),
    ("FAILED", "1:0", "failed", False, "SLURM job 12 failed before the experiment could report"),
])
def test_each_slurm_ending_reads_in_plain_words(state: str, exit_code: str, status: str,
                                                retryable: bool, words: str) -> None:
    verdict = slurm_endings.verdict(_record(state, exit_code))
    assert verdict.status == status
    assert verdict.retryable is retryable
    assert verdict.infrastructure.startswith(words)


def test_a_memory_kill_without_cgroups_is_out_of_memory() -> None:
    # jobacct_gather's OverMemoryKill ends the job FAILED 0:9; slurmstepd says why in its log.
    log = ("slurmstepd-vm: error: StepId=7.batch exceeded memory limit (247721984 > 52428800), "
           "being killed\nslurmstepd-vm: error: Exceeded job memory limit\n")
    verdict = slurm_endings.verdict(_record("FAILED", "0:9"), log, mem="50M")
    assert verdict.ending == "out_of_memory"
    assert verdict.infrastructure == "SLURM job 12 ran out of memory (mem=50M)"
    # The experiment's own words about memory are not SLURM's.
    cuda = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
    assert slurm_endings.ending_of(_record("FAILED", "1:0"), cuda) == "failed"


def test_sacct_fields_and_states_parse() -> None:
    record = _record("CANCELLED by 0", "0:9")
    assert record.word == "CANCELLED" and record.returncode == -9 and not record.active
    assert record.elapsed_s == 187.0
    assert _record("RUNNING").active and _record("PENDING", reason="Resources").active
    assert slurm_endings.parse(f"{SACCT}\n13|COMPLETED|0:0\n", "12") is None
    assert slurm_endings._seconds("1-02:00:05") == 93605.0


def test_options_from_a_toml_file_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "slurm.toml"
    path.write_text('[slurm]\npartition = "gpu"\ngres = "gpu:1"\nmem = "16G"\n'
                    'extra = ["--account=ml", "--qos=high", "--exclusive"]\n')
    options = SlurmOptions.from_file(path, mem="32G", cpus_per_task=None)
    assert options == SlurmOptions(partition="gpu", gres="gpu:1", mem="32G",
                                   extra=("--account=ml", "--qos=high", "--exclusive"))
    params = options.sbatch(name="run_1", cwd=tmp_path, timeout_s=600)
    assert params["time"] == 13  # 600 s + 3 min, in minutes
    extra = params["additional_parameters"]
    assert extra["export"] == "ALL" and extra["no_requeue"] is True
    assert extra["account"] == "ml" and extra["exclusive"] is True and extra["gres"] == "gpu:1"
    path.write_text('partition = "gpu"\nmemory = "4G"\n')
    with pytest.raises(UsageError, match="unknown SLURM option.*memory"):
        SlurmOptions.from_file(path)
    for bad in ("account=ml", "--export=ALL"):
        with pytest.raises(UsageError, match="--key=value"):
            SlurmOptions(extra=(bad,))


def test_sbatch_runs_with_the_allowlisted_environment_only() -> None:
    base = {"PATH": "/usr/bin", "HOME": "/home/me", "ANTHROPIC_API_KEY": "sk-ant-x",
            "SLURM_CONF": "/etc/slurm/slurm.conf", "SBATCH_ACCOUNT": "ml", "SBATCH_EXPORT": "NONE",
            "SBATCH_TOKEN": "secret", "CUDA_VISIBLE_DEVICES": "3", "TMPDIR": "/login/tmp",
            "WANDB_MODE": "offline"}
    env = sbatch_env(base, pass_env=["WANDB_MODE"])
    assert env["PATH"] == "/usr/bin" and env["SLURM_CONF"] == "/etc/slurm/slurm.conf"
    assert env["SBATCH_ACCOUNT"] == "ml" and env["WANDB_MODE"] == "offline"
    for gone in ("ANTHROPIC_API_KEY", "SBATCH_TOKEN", "SBATCH_EXPORT", "CUDA_VISIBLE_DEVICES",
                 "TMPDIR"):
        assert gone not in env


def test_infrastructure_endings_are_described_first() -> None:
    out = RunOutcome("killed", None, 61.0, Path("o"), Path("e"), "",
                     infrastructure="SLURM job 12 ran out of memory (mem=4G)")
    assert out.describe() == "SLURM job 12 ran out of memory (mem=4G), after 61.0 s"
    assert RunOutcome("failed", 2, 1.0, Path("o"), Path("e"), "").describe() == \
        "failed with exit code 2 after 1.0 s"


def test_agent_does_not_import_submitit_until_a_job_is_submitted() -> None:
    code = ("import sys, agent.executors.slurm, agent.runner; "
            "print('submitit' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          check=True)
    assert proc.stdout.strip() == "False"
