"""Many ideas at once: the wall time of 4 tiny-preset launches one after another against the
same 4 as one command with `--jobs 2` (and, with --executor slurm, through the SLURM cluster).

Each launch is a real one (`python -m agent.launch --idea orthogonal_sae --preset tiny
--stages experiment --max-runs 1`): the baseline, then run 1 of the reference session (its
first reply: the plan and the code of run 1). The harness's caches are warmed first; the
baseline cache is emptied before each mode, so each mode computes one baseline (the other
launches wait for it and reuse it) and four run 1s.

Run: python bench/many_ideas.py [--ideas 4] [--jobs 2] [--seeds 1] [--executor local|slurm]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SESSION = REPO / "templates" / "sae_variants" / "ideas" / "orthogonal_sae.session.jsonl"


def first_reply(work: Path) -> Path:
    """A session holding the reference session's first reply only."""
    lines = [ln for ln in SESSION.read_text(encoding="utf-8").splitlines() if ln.startswith("{")]
    first = next(json.loads(ln) for ln in lines if "reply" in json.loads(ln))
    path = work / "session.jsonl"
    path.write_text(json.dumps(first) + "\n", encoding="utf-8")
    return path


def launch(args: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "agent.launch", *args], cwd=REPO, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"launch failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.monotonic() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ideas", type=int, default=4)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--executor", default="local", choices=("local", "slurm"))
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-many-"))
    session = first_reply(work)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}
    common = ["--preset", "tiny", "--stages", "experiment", "--max-runs", "1", "--seeds", str(a.seeds),
              "--model", f"replay:{session}", "--quiet", "--executor", a.executor]
    runs = work / "runs"
    print(f"warming the harness caches ({a.executor}) ...", flush=True)
    launch(["--idea", "orthogonal_sae", *common, "--runs-dir", str(work / "warm")], env)
    shutil.rmtree(runs / ".baseline-cache", ignore_errors=True)
    seq = [launch(["--idea", "orthogonal_sae", *common, "--runs-dir", str(runs)], env) for _ in range(a.ideas)]
    sequential = sum(seq)
    shutil.rmtree(runs / ".baseline-cache", ignore_errors=True)
    ideas = [x for _ in range(a.ideas) for x in ("--idea", "orthogonal_sae")]
    together = launch([*ideas, "--jobs", str(a.jobs), *common, "--runs-dir", str(work / "together")], env)
    print(f"{a.ideas} tiny-preset ideas ({a.seeds} seed(s), baseline + run 1 each, executor {a.executor}) "
          f"on {os.cpu_count()} cores:")
    print(f"  one after another: {sequential:.1f} s ({', '.join(f'{s:.1f}' for s in seq)})")
    print(f"  --jobs {a.jobs}: {together:.1f} s; ratio {together / sequential:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
