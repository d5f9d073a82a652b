"""Command line: `python -m agent.replay RUN` reviews and replays a run from its history alone.

  python -m agent.replay RUN                  the history as a timeline, one line per step
  python -m agent.replay RUN --step N         that step's LLM replies and the diff of its commit
  python -m agent.replay RUN --verify [run_i ...]
                                              re-execute runs at their commits and compare
  python -m agent.replay RUN --rebuild DIR    replay the recorded replies into a new run
                                              directory and compare the two histories

RUN is a run directory or a `git clone` of one. Exit codes: 0 as recorded (or the timeline
shown); 2 bad input; 5 a run did not reproduce, or the rebuilt history parted from the
recorded one; 1 an unexpected error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from agent.history import History, Step
from agent.journal import Event

DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 0.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m agent.replay",
        description="Review a run from its git history: a timeline of every step; re-execute "
        "its runs and compare the metrics (--verify); replay its LLM replies into a new run and "
        "compare the histories (--rebuild). Works on a run directory or a clone of one.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 as recorded, 2 bad input, 5 a run differs or the rebuilt "
        "history parts from the recorded one, 1 unexpected error",
    )
    p.add_argument("run_dir", metavar="RUN", help="a run directory (runs/<id>) or a clone of its repository")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--step", type=int, metavar="N", help="show step N: its LLM replies and its commit's diff")
    what.add_argument("--verify", nargs="*", metavar="RUN_I",
                      help="re-execute these runs (default: all, the baseline too) at the commit "
                      "that produced each, in a scratch git worktree with the recorded preset "
                      "and seeds, and compare every metric with the recorded final_info.json")
    what.add_argument("--rebuild", metavar="DIR",
                      help="replay the recorded LLM replies into a new run directory under DIR "
                      "and compare the two histories commit by commit")
    p.add_argument("--seeds", type=_seed_list, default=None, metavar="LIST",
                   help="--verify: re-execute only these seeds of each run (e.g. 1 or 0,2), each "
                   "with the threads it had, and compare their own values (the means need every seed)")
    p.add_argument("--rtol", type=float, default=DEFAULT_RTOL,
                   help=f"relative tolerance of a metric's agreement (default {DEFAULT_RTOL:g})")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                   help=f"absolute tolerance of a metric's agreement (default {DEFAULT_ATOL:g})")
    p.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                   help="--verify/--rebuild: run experiments without bubblewrap (said loudly)")
    return p


def _seed_list(text: str) -> list[int]:
    try:
        seeds = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of seed numbers: {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"no seed numbers in {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from agent import history
    from agent.errors import AgentError
    from agent.progress import Console

    console = Console()
    if args.seeds is not None and args.verify is None:
        build_parser().error("--seeds goes with --verify")
    try:
        root = Path(args.run_dir)
        if args.verify is not None:
            from agent import verify

            report = verify.verify(root, args.verify, rtol=args.rtol, atol=args.atol,
                                   console=console, sandbox=args.sandbox, seeds=args.seeds)
            print(report.text())
            return 0 if report.ok else 5
        if args.rebuild is not None:
            from agent import rebuild

            outcome = rebuild.rebuild(root, Path(args.rebuild), rtol=args.rtol, atol=args.atol,
                                      console=console, sandbox=args.sandbox)
            print(outcome.text())
            return 0 if outcome.same else 5
        hist = history.load(root)
        print(show_step(hist, hist.step(args.step)) if args.step is not None else timeline(hist))
    except AgentError as exc:
        console.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130
    return 0


def timeline(hist: History) -> str:
    """One line per step: number, time, stage, run, commit, what changed, headline metrics
    with their change against the baseline, tokens and cost."""
    launch = hist.launch
    tokens, cost = hist.totals()
    head = [f"run directory: {hist.root}" + ("  (a clone: events from the history's journal/)" if hist.is_clone else ""),
            f"idea: {launch.get('idea', '?')}   template: {launch.get('template', '?')}   "
            f"preset: {launch.get('preset') or 'default'}   model: {launch.get('model', '?')}",
            f"{len(hist.steps)} steps, {len(hist.events)} journal events, {tokens:,} LLM tokens"
            f"{_cache_note([e for e in hist.events if e.kind == 'llm.response'])}, cost {_money(cost)}", ""]
    rows = [("#", "time", "stage", "run", "commit", "what", "metrics (vs baseline)", "tokens", "cost")]
    for s in hist.steps:
        rows.append((str(s.n), time.strftime("%H:%M:%S", time.localtime(s.time)), s.stage,
                     "" if s.run is None else str(s.run), s.short, _what(s), _metrics(s),
                     f"{s.tokens:,}" if s.replies else "", _money(s.cost_usd) if s.replies else ""))
    widths = [min(max(len(r[i]) for r in rows), 60) for i in range(len(rows[0]))]
    lines = ["  ".join(_cut(cell, w).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    tail = []
    if hist.pending:
        kinds = ", ".join(sorted({e.kind for e in hist.pending}))
        tail = ["", f"{len(hist.pending)} journal event(s) after the last commit ({kinds}): "
                "the live journal has them; the next commit (e.g. --resume) carries them"]
    stopped = [e for e in hist.events if e.kind == "launch.stopped"]
    if stopped and not any(e.kind == "launch.finished" and e.seq > stopped[-1].seq for e in hist.events):
        d = stopped[-1].data
        tail += ["", f"stopped: {d.get('error')}: {str(d.get('message', '')).splitlines()[0][:200]} "
                 f"(exit {d.get('exit_code')})"]
    return "\n".join([*head, *lines, *tail, "", "python -m agent.replay RUN --step N shows a step's replies and diff"])


def show_step(hist: History, step: Step) -> str:
    """The step's commit, its journal events in brief, every LLM reply in full, its diff."""
    out = [f"step {step.n} of {len(hist.steps)}: {step.subject}",
           f"commit {step.sha}  ({time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(step.time))})"
           + (f"  step {step.step}" if step.step else ""),
           f"files: {', '.join(step.files) or '(journal only)'}"]
    if step.metrics:
        out.append(f"metrics: {_metrics(step)}")
    out += ["", f"journal events ({len(step.events)}):"]
    out += [f"  {e.seq:>5} {e.kind}{_brief(e)}" for e in step.events]
    for i, e in enumerate(step.replies, start=1):
        d = e.data
        out += ["", f"--- LLM reply {i} of {len(step.replies)} ({d.get('prompt_kind')}, "
                f"{d.get('model')}, {int(d.get('input_tokens') or 0):,} in{_cache_note([e])} / "
                f"{int(d.get('output_tokens') or 0):,} out, {_money(d.get('cost_usd'))}) ---",
                str(d.get("text", "")).rstrip()]
    out += ["", "--- diff ---", hist.diff(step).rstrip() or "(no change outside the journal)"]
    return "\n".join(out)


def _cache_note(replies: list[Event]) -> str:
    """` (N input tokens from the provider's cache)` when any reply had a cache hit, else ``."""
    read = sum(int(e.data.get("cache_read_tokens") or 0) for e in replies)
    return f" ({read:,} input tokens from the provider's cache)" if read else ""


def _what(s: Step) -> str:
    subject = s.subject.partition(":")[2].strip() or s.subject
    return subject


def _metrics(s: Step) -> str:
    parts = []
    for name, value in s.metrics.items():
        delta = s.deltas.get(name)
        parts.append(f"{name} {value:.4g}" + ("" if delta is None else f" ({delta:+.3g})"))
    return ", ".join(parts)


def _brief(e: object) -> str:
    data = getattr(e, "data", {})
    keys = ("stage", "run", "attempt", "status", "prompt_kind", "path", "describe")
    shown = [f"{k}={data[k]}" for k in keys if k in data and data[k] not in (None, "")]
    return (" " + " ".join(shown))[:160] if shown else ""


def _money(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:.2f}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
