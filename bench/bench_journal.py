"""Orchestration overhead per LLM turn on a long run (target: < 200 ms on a 40-step journal).

    python bench/bench_journal.py [--steps 40] [--prompt-chars 24000]

Builds a journal of STEPS experiment turns shaped like a real one (each with its request's
prompts, the reply, the edit session, a run and its notes), then times the journal work one
turn of the experiment stage does: the memoized lookups (`RunContext.find`), the spend
summary behind every status line, and the budget check's pass over all events. It times the
same lookups as they were before the journal was folded in memory (each one re-reading and
parsing the whole file), for comparison. Git commits and child processes are not included:
they are the work itself, not bookkeeping.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.journal import Journal, read

LOOKUPS_PER_TURN = [  # (kind, match) as one experiment turn asks them, in order
    ("llm.response", "call_id"), ("edit.session_finished", "call_id"), ("edit.session_started", "call_id"),
    ("run.planned", "run"), ("run.recorded", "run"), ("run.finished", "run"), ("run.started", "run"),
    ("notes.appended", "run"), ("experiment.completed_by_model", None),
]
SPEND_SUMMARIES_PER_TURN = 4  # status lines while asking, running and recording


def build(path: Path, steps: int, prompt_chars: int) -> None:
    journal = Journal(path)
    journal.append("launch.started", config={}, idea="bench")
    prompt = "x" * prompt_chars
    for run in range(1, steps + 1):
        call_id = f"experiment/run{run}/attempt1"
        journal.append("edit.session_started", call_id=call_id, head="0" * 40)
        journal.append("llm.request", call_id=call_id, messages=[
            {"role": "system", "content": prompt[: prompt_chars // 4]}, {"role": "user", "content": prompt}])
        journal.append("llm.response", call_id=call_id, text=prompt[: prompt_chars // 3], input_tokens=6000,
                       output_tokens=1500, cost_usd=0.04, latency_s=20.0)
        journal.append("edit.applied", call_id=call_id, files=["experiment.py"], sha="1" * 40)
        journal.append("edit.session_finished", call_id=call_id, ok=True, changed_files=["experiment.py"],
                       problem=None, final_reply=prompt[:2000], first_reply=prompt[:2000])
        journal.append("run.planned", run=run, attempt=1, summary="a run", commit="2" * 40)
        journal.append("run.started", run=run, attempt=1, commit="2" * 40)
        journal.append("run.process", run=run, attempt=1, pgid=1000 + run)
        journal.append("run.finished", run=run, attempt=1, status="ok", stderr_tail="y" * 4000)
        journal.append("run.recorded", run=run, attempt=1, status="ok", sha="3" * 40)
        journal.append("notes.appended", run=run, sha="4" * 40)


def turn_in_memory(journal: Journal, run: int) -> None:
    for kind, key in LOOKUPS_PER_TURN:
        match: dict[str, Any] = {} if key is None else {key: f"experiment/run{run}/attempt1" if key == "call_id" else run}
        journal.last(kind, **match)
    for _ in range(SPEND_SUMMARIES_PER_TURN):
        sum(int(e.data.get("input_tokens") or 0) for e in journal.of_kind("llm.response"))
    journal.events()  # the budget check's pass


def turn_rereading(path: Path, run: int) -> None:
    """The same lookups as before: every one parsed the whole file again."""
    for kind, key in LOOKUPS_PER_TURN:
        want = None if key is None else (f"experiment/run{run}/attempt1" if key == "call_id" else run)
        [e for e in read(path).events if e.kind == kind and (key is None or e.data.get(key) == want)]
    for _ in range(SPEND_SUMMARIES_PER_TURN):
        sum(int(e.data.get("input_tokens") or 0) for e in read(path).events if e.kind == "llm.response")
    read(path)  # the budget check: one more pass over the whole file


def timed(fn: Any, *args: Any, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--prompt-chars", type=int, default=24000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.jsonl"
        build(path, args.steps, args.prompt_chars)
        size_mb = path.stat().st_size / 1e6
        open_s = timed(Journal, path, repeat=3)
        journal = Journal(path)
        memory_s = timed(turn_in_memory, journal, args.steps)
        reread_s = timed(turn_rereading, path, args.steps, repeat=3)
    events = len(read(path).events) if path.exists() else args.steps * 11 + 1
    print(f"journal: {args.steps} turns, {events} events, {size_mb:.1f} MB")
    print(f"opening it (once per launch or resume): {open_s * 1000:.1f} ms")
    verdict = "meets" if memory_s < 0.2 else "MISSES"
    print(f"journal work per turn, folded in memory: {memory_s * 1000:.2f} ms ({verdict} the 200 ms target)")
    print(f"the same lookups re-reading the file each time (before): {reread_s * 1000:.0f} ms "
          f"({reread_s / max(memory_s, 1e-9):.0f}x)")


if __name__ == "__main__":
    main()
