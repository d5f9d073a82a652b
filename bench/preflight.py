"""How long a launch takes to refuse a rejected API key (target: under 5 s on a 2-core machine).

    python bench/preflight.py [--repeat 5]

Each try is the real command line, as a user types it, against a loopback OpenAI-compatible
server that answers the check request with 401: `python -m agent.launch --idea toy_idea
--model openai/x --api-base ...`. It must exit 2 and create nothing; the wall time from start to
exit is what the user waits to learn that the key is wrong. The first call warms the bytecode
cache and is not counted. Prints the minimum, median and maximum.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from timing import measure  # noqa: E402 - beside this script

from tests.fakellm import FakeLLM, Status  # noqa: E402

TARGET_S = 5.0
TOY_TEMPLATES = REPO / "tests" / "fixtures" / "templates"


def time_refusal() -> float:
    with tempfile.TemporaryDirectory() as tmp, FakeLLM([Status(401)]) as srv:
        runs = Path(tmp) / "runs"
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "agent.launch", "--idea", "toy_idea", "--templates-dir",
             str(TOY_TEMPLATES), "--model", "openai/x", "--api-base", srv.base_url,
             "--runs-dir", str(runs)],
            cwd=REPO, capture_output=True, text=True, check=False,
            env={"PATH": "/usr/bin:/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                 "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        elapsed = time.monotonic() - start
        if proc.returncode != 2 or "rejected the API key" not in proc.stderr or runs.exists():
            sys.exit(f"the launch did not refuse the key as it should (exit {proc.returncode}):\n"
                     f"{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(measure("a rejected key, launch to exit 2", time_refusal, args.repeat, TARGET_S, digits=2))


if __name__ == "__main__":
    main()
