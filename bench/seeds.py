"""What seeds cost: wall time of a run with 3 seeds against the same run with 1 seed.

Each measurement is a real launch of the loop (`python -m agent.launch --idea orthogonal_sae
--preset P --seeds S --stages experiment`) in a fresh runs folder, so the baseline `run_0` is
executed (not reused from the baseline cache) the way every run is: S experiment processes
(`EXPERIMENT_SEED=k python experiment.py --out_dir=run_0/seed_k`, concurrently, the CPU shared
between them) and one evaluator for all seeds. The harness's caches (activations, model,
zero-ablation sums) are warm: a first launch fills them and is not counted. The time of a run is
read from the journal: the seeds' wall time plus the evaluator's. The launch stops after the
baseline (the replayed plan answers ALL_COMPLETED), which is all that is measured.

Run: python bench/seeds.py [--preset tiny --preset cpu] [--repeats 2] [--seed-jobs J]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = 2.5


def run_seconds(preset: str, seeds: int, work: Path, seed_jobs: int | None) -> tuple[float, float, float]:
    """(run wall time, seeds' wall time, evaluator time) of one fresh baseline, seconds."""
    runs = Path(tempfile.mkdtemp(prefix=f"runs-{preset}-{seeds}-", dir=work))
    session = work / "session.jsonl"
    session.write_text(json.dumps({"stage": "experiment", "prompt_kind": "experiment.plan",
                                   "reply": "ALL_COMPLETED"}) + "\n", encoding="utf-8")
    argv = [sys.executable, "-m", "agent.launch", "--idea", "orthogonal_sae", "--preset", preset,
            "--seeds", str(seeds), "--stages", "experiment", "--max-runs", "1", "--quiet",
            "--runs-dir", str(runs), "--model", f"replay:{session}"]
    if seed_jobs:
        argv += ["--seed-jobs", str(seed_jobs)]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=7200)
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    done = [e["data"] for e in events if e["kind"] == "run.finished" and e["data"]["run"] == 0]
    if not done or done[-1]["status"] != "ok":
        raise SystemExit(f"the baseline of {preset} with {seeds} seed(s) did not finish: "
                         f"{done[-1]['describe'] if done else 'no run.finished'} (see {run_dir})")
    d = done[-1]
    return d["duration_s"] + d["evaluator_duration_s"], d["duration_s"], d["evaluator_duration_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", help="tiny, cpu (default: both)")
    parser.add_argument("--repeats", type=int, default=2, help="launches per setting (median kept)")
    parser.add_argument("--seed-jobs", type=int, default=None, help="as the launch flag")
    args = parser.parse_args()
    presets = args.preset or ["tiny", "cpu"]
    print(f"cores: {os.cpu_count()}; target: 3 seeds take at most {TARGET}x the time of 1")
    with tempfile.TemporaryDirectory(prefix="bench-seeds-") as tmp:
        work = Path(tmp)
        for preset in presets:
            run_seconds(preset, 1, work, args.seed_jobs)  # warm the harness's caches
            rows = {}
            for seeds in (1, 3):
                found = [run_seconds(preset, seeds, work, args.seed_jobs) for _ in range(args.repeats)]
                rows[seeds] = tuple(statistics.median(f[i] for f in found) for i in range(3))
                total, train, evaluate = rows[seeds]
                print(f"{preset:5s} {seeds} seed(s): run {total:7.1f} s  (experiments {train:7.1f} s, "
                      f"evaluator {evaluate:6.1f} s; median of {args.repeats})")
            ratio = rows[3][0] / rows[1][0]
            verdict = "meets" if ratio <= TARGET else "misses"
            print(f"{preset:5s} 3 seeds / 1 seed = {ratio:.2f}x ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
