"""How large `report.html` gets, and how long it takes to write, for a run of 10 runs and about
40 steps (the size the report must stay readable at).

The run is a real launch of the loop on the test suite's toy template (no torch: seconds),
driven by a scripted session of 10 runs, each an edit of the code and of notes.txt, through the
experiment and plot stages. Then `agent.report.write` is timed on it.

Run: python bench/report_size.py [--runs 10] [--keep DIR]
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
sys.path.insert(0, str(REPO))


def _block(path: str, search: str, replace: str) -> str:
    return f"{path}\n```python\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


def session(runs: int) -> list[tuple[str, str]]:
    """(prompt kind, reply) of a session that makes `runs` runs, each changing the momentum."""
    values = [round(0.05 * (i + 1), 2) for i in range(runs)]
    hyp = ('```json\n{"hypotheses": [{"id": "H1", "statement": "Momentum lowers the final loss.", '
           '"metric": "final_loss", "run": 1, "against": 0, "expected": "decrease", '
           '"smallest_effect": 0.001}]}\n```\n\n')
    replies = []
    previous = "0.0"
    for i, value in enumerate(values, start=1):
        edit = _block("experiment.py", f"    momentum: float = {previous}  # heavy-ball momentum\n",
                      f"    momentum: float = {value}  # heavy-ball momentum\n")
        notes = _block("notes.txt", "", f"Run {i - 1} looked as expected; next momentum {value}.\n") if i > 1 else ""
        text = f"Run {i}: heavy-ball momentum {value}\n\n" + (hyp if i == 1 else "") + notes + edit
        replies.append(("experiment.plan" if i == 1 else "experiment.results", text))
        previous = str(value)
    replies.append(("plot.edit", _block("plot.py", 'ax.set_xlabel("step")\n', 'ax.set_xlabel("gradient step")\n')))
    replies.append(("plot.describe", _block("notes.txt", "", "Figure loss.png: loss per step of every run.\n")))
    return replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", help="make the run under this folder and keep it")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-report-"))
    templates = work / "templates"
    shutil.rmtree(templates, ignore_errors=True)
    shutil.copytree(REPO / "tests" / "fixtures" / "templates", templates)
    path = work / "session.jsonl"
    path.write_text("".join(json.dumps({"stage": k.split(".")[0], "prompt_kind": k, "reply": r}) + "\n"
                            for k, r in session(args.runs)), encoding="utf-8")
    runs = work / "runs"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "agent.launch", "--idea", "toy_idea", "--templates-dir",
                           str(templates), "--runs-dir", str(runs), "--max-runs", str(args.runs),
                           "--stages", "experiment,plot", "--quiet", "--model", f"replay:{path}"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    launch_s = time.monotonic() - start
    if proc.returncode:
        sys.exit(f"the launch failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    run_dir = next(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
    from agent import history, report

    hist = history.load(run_dir)
    start = time.monotonic()
    out = report.write(run_dir)
    write_s = time.monotonic() - start
    size = out.stat().st_size
    print(f"run: {len(hist.runs()) - 1} runs after the baseline, {len(hist.steps)} steps, "
          f"{len(hist.events)} journal events (launch {launch_s:.1f} s)")
    print(f"report.html: {size / 1024:.0f} KiB, written in {write_s:.2f} s")
    if not args.keep:
        shutil.rmtree(work)
    else:
        print(f"kept: {out}")


if __name__ == "__main__":
    main()
