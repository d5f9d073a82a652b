"""How long the command line answers `--help` (target: under 1.5 s on a 2-core machine).

    python bench/bench_cli.py [--repeat 7]

Each call is a fresh interpreter, as a user types it; the first call warms the bytecode cache
and is not counted. Prints the minimum, median and maximum wall time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from timing import measure  # noqa: E402 - beside this script

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 1.5


def time_help() -> float:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "agent.launch", "--help"], cwd=REPO,
                          capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"--help failed (exit {proc.returncode}):\n{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(measure("python -m agent.launch --help", time_help, args.repeat, TARGET_S))


if __name__ == "__main__":
    main()
