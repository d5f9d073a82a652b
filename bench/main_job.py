"""How long the README's main job takes, as a new user meets it, and where the time goes.

    python bench/main_job.py [--preset tiny|cpu] [--seeds S]

One real launch of the quickstart's command (`python -m agent.launch --idea orthogonal_sae
[--preset P]`; the offline replay of the reference session, real runs, LaTeX and review) in a
fresh runs folder and with an empty harness cache, so the first launch's harvest (for the tiny
preset: training the in-project model too) is part of it, as it is on a fresh machine. The
journal then says how long the harvest took (`harness.sae.prepare`, which a later launch finds
cached and skips in seconds) and each stage: the figure "without the first harvest" is the
launch's wall time less the harvest's.

It prints the machine (CPU model, cores, memory) and its load average before the launch: a
figure measured while something else runs is not the machine's figure, and the script says so
when the 1-minute load average is above 0.3.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return f"{cpu}, {os.cpu_count()} cores, {mem_kb / 2**20:.0f} GiB, Python {platform.python_version()}"


def stage_times(events: list[dict]) -> list[tuple[str, float]]:
    """(what, seconds) from the journal: the harvest, then every stage in the order it ran."""
    out: list[tuple[str, float]] = []
    started: dict[str, float] = {}
    for e in events:
        kind, data = e["kind"], e["data"]
        if kind == "process.started" and data.get("name") == "prepare":
            started["prepare"] = e["ts"]
        elif kind == "harness.prepared" and "prepare" in started:
            out.append(("harvest (harness.sae.prepare)", e["ts"] - started.pop("prepare")))
        elif kind == "stage.started":
            started[data["stage"]] = e["ts"]
        elif kind == "stage.finished" and data["stage"] in started:
            out.append((f"stage {data['stage']}", e["ts"] - started.pop(data["stage"])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--preset", default=None, help="tiny or cpu (default: the launch's own choice)")
    parser.add_argument("--seeds", type=int, default=None, help="as the launch flag (default: its own)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-main-job-") as tmp:
        runs, cache = Path(tmp) / "runs", Path(tmp) / "harness-cache"
        argv = [sys.executable, "-m", "agent.launch", "--idea", "orthogonal_sae", "--runs-dir",
                str(runs), "--quiet"]
        argv += ["--preset", args.preset] if args.preset else []
        argv += ["--seeds", str(args.seeds)] if args.seeds else []
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.update(HARNESS_CACHE_DIR=str(cache), LITELLM_LOCAL_MODEL_COST_MAP="True")
        start = time.monotonic()
        proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            sys.exit(f"the launch failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        (run_dir,) = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
        events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
        preset = json.loads((run_dir / "preset.json").read_text()).get("preset", "?")
    times = stage_times(events)
    harvest = sum(s for what, s in times if what.startswith("harvest"))
    print(f"machine: {machine()}; 1-minute load average before the launch {load:.2f}"
          + (" (NOT QUIET: the figures below are not this machine's)" if load > 0.3 else ""))
    print(f"main job, preset {preset}: {wall / 60:.1f} min with the first harvest, "
          f"{(wall - harvest) / 60:.1f} min without it")
    for what, seconds in times:
        print(f"  {what:28s} {seconds / 60:6.1f} min")


if __name__ == "__main__":
    main()
