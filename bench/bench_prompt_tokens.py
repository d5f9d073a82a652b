"""Input tokens of every LLM turn of a finished run, per stage (target: ≤ 8,000 per
experiment-stage turn; the reference system sent 24,000–27,000).

    python bench/bench_prompt_tokens.py [RUN_DIR]      # default: the newest run under runs/

Tokens are counted with litellm's tokenizer for the run's model (tiktoken's cl100k for
replayed or unknown models), over exactly the messages the journal says were sent.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from agent.journal import read  # noqa: E402


def count(model: str, messages: list[dict[str, str]]) -> int:
    import litellm

    try:
        return int(litellm.token_counter(model=model, messages=messages))
    except Exception:  # an unknown model: the default tokenizer
        return int(litellm.token_counter(model="gpt-4", messages=messages))


def main() -> None:
    if len(sys.argv) > 1:
        run_dir = Path(sys.argv[1])
    else:
        candidates = sorted(p for p in Path("runs").glob("*_*") if (p / "journal.jsonl").is_file())
        if not candidates:
            sys.exit("no run directory under runs/: run the main job first, or pass RUN_DIR")
        run_dir = candidates[-1]
    events = read(run_dir / "journal.jsonl").events
    model = next((e.data.get("model") for e in events if e.kind == "launch.started"), "gpt-4")
    per_stage: dict[str, list[int]] = defaultdict(list)
    print(f"run directory: {run_dir}")
    print(f"{'call':48} {'prompt kind':22} {'input tokens':>12}")
    for e in events:
        if e.kind != "llm.request":
            continue
        n = count(model if not str(model).startswith("replay:") else "gpt-4", e.data["messages"])
        per_stage[e.data["stage"]].append(n)
        print(f"{e.data.get('call_id') or '':48} {e.data['prompt_kind']:22} {n:12,}")
    print()
    for stage, values in per_stage.items():
        print(f"{stage:12} turns {len(values):3}  max {max(values):7,}  mean {sum(values) / len(values):9,.0f}")
    exp = per_stage.get("experiment", [])
    if exp:
        verdict = "meets" if max(exp) <= 8000 else "MISSES"
        print(f"experiment stage: max {max(exp):,} input tokens per turn -> {verdict} the 8,000 target")


if __name__ == "__main__":
    main()
