"""What running an experiment as a SLURM job costs per run, against running it locally.

    SLURM_CONF=/tmp/trusted-scientist-slurm/etc/slurm.conf .venv/bin/python bench/slurm_overhead.py

Submits trivial jobs one after another (a child that prints the time and exits) through
`agent.executors.slurm.SlurmExecutor`, as the loop would, and splits each into: sbatch (until
SLURM has accepted it), submit -> start (until the experiment's own first line runs: scheduling,
the batch step, submitit's Python unpickling the runner), start -> result (until the outcome
is back in the orchestrator). The same child through the local runner is the reference.
Needs a cluster: `.ci/slurm-cluster start` gives a one-node one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent import runner  # noqa: E402
from agent.executors.slurm import SlurmExecutor, SlurmOptions  # noqa: E402

CHILD = ["python", "-c", "import time; print(repr(time.time()))"]


def one_slurm(executor: SlurmExecutor, tmp: Path, i: int) -> tuple[float, float, float]:
    accepted: list[float] = []
    t0 = time.time()
    out = executor.run(CHILD, cwd=tmp, log_dir=tmp / "logs", timeout_s=120, name=f"s{i}",
                       on_submit=lambda _job: accepted.append(time.time()))
    t_end = time.time()
    if not out.ok:
        raise SystemExit(f"job {i}: {out.describe()}\n{out.stderr_tail}")
    started = float(out.stdout_path.read_text().strip())
    return accepted[0] - t0, started - t0, t_end - started


def one_local(tmp: Path, i: int) -> tuple[float, float]:
    t0 = time.time()
    out = runner.run(CHILD, cwd=tmp, log_dir=tmp / "logs", timeout_s=60, name=f"l{i}")
    t_end = time.time()
    started = float(out.stdout_path.read_text().strip())
    return started - t0, t_end - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5)
    args = parser.parse_args()
    if "SLURM_CONF" not in os.environ and Path("/tmp/trusted-scientist-slurm/env").exists():
        os.environ["SLURM_CONF"] = "/tmp/trusted-scientist-slurm/etc/slurm.conf"
    with tempfile.TemporaryDirectory(prefix="slurm-bench-", dir="/tmp") as name:
        tmp = Path(name)
        executor = SlurmExecutor(SlurmOptions(), tmp / "slurm")
        problem = executor.check()
        if problem:
            raise SystemExit(f"no usable cluster: {problem} (.ci/slurm-cluster start)")
        slurm = [one_slurm(executor, tmp, i) for i in range(args.jobs)]
        local = [one_local(tmp, i) for i in range(args.jobs)]

    print(f"{'job':>3}  {'sbatch s':>8}  {'submit->start s':>15}  {'start->result s':>15}  {'total s':>7}")
    for i, (sb, to_start, to_result) in enumerate(slurm):
        print(f"{i:>3}  {sb:8.2f}  {to_start:15.2f}  {to_result:15.2f}  {to_start + to_result:7.2f}")
    med = [statistics.median(col) for col in zip(*slurm, strict=True)]
    print(f"med  {med[0]:8.2f}  {med[1]:15.2f}  {med[2]:15.2f}  {med[1] + med[2]:7.2f}")
    loc = [statistics.median(col) for col in zip(*local, strict=True)]
    print(f"local runner, median: start {loc[0]:.2f} s, start->result {loc[1]:.2f} s, "
          f"total {loc[0] + loc[1]:.2f} s")
    print(f"SLURM overhead per run: {med[1] + med[2] - loc[0] - loc[1]:.2f} s (median)")


if __name__ == "__main__":
    main()
