"""Several ideas in one command: `python -m agent.launch --idea A --idea B ... --jobs N`.

Each idea is a launch of its own, in a process of its own (`python -m agent.launch --idea A`
with the command's other flags), with its own run directory, journal and history, so one idea
failing or stopping never stops the others, and each run directory resumes on its own. Up to N
run at once. They share, through files in a folder of the command's: one tokens-per-minute
window per model and the `--max-cost` budget (`agent.llm.shared`), the machine's GPUs (the
device pool's locks) and, on the CPU, an equal share of the cores each. The console shows one
status line per idea and ends with a table. Ctrl-C stops every idea cleanly (each records its
stop and can be resumed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent import devices
from agent.llm.shared import SHARED_ENV

RUN_DIR_ENV = "AGENT_RUN_DIR_OUT"
"""A file the child writes its run directory's path to, once the directory exists."""
EXIT_WORDS = {0: "done", 1: "crashed", 2: "bad input", 3: "template broken", 4: "stopped (resumable)",
              5: "replay diverged", 6: "stage failed", 130: "interrupted"}
POLL_S = 0.5
GRACE_S = 60.0
"""How long stopped ideas get to record their stop after Ctrl-C before they are killed."""


@dataclass
class Idea:
    """One idea of the command and its process."""

    index: int
    name: str
    log: Path
    run_dir_file: Path
    proc: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None
    run_dir: Path | None = None
    status: str = "waiting for a free slot"
    started: float = 0.0
    ended: float = 0.0
    _offset: int = 0
    _cost: float = 0.0
    _unpriced: bool = False
    _events: dict[str, int] = field(default_factory=dict)

    def poll_journal(self) -> None:
        """Read the journal's new lines and update the status line from them."""
        if self.run_dir is None and self.run_dir_file.is_file():
            self.run_dir = Path(self.run_dir_file.read_text(encoding="utf-8").strip())
        if self.run_dir is None:
            return
        path = self.run_dir / "journal.jsonl"
        try:
            with open(path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self._see(event["kind"], event.get("data", {}))

    def _see(self, kind: str, d: dict) -> None:
        if kind == "llm.response":
            if d.get("cost_usd") is None:
                self._unpriced = True
            else:
                self._cost += float(d["cost_usd"])
        text = {
            "stage.started": f"{d.get('stage')}",
            "run.started": f"{d.get('stage')}: run {d.get('run')} attempt {d.get('attempt')} running",
            "run.recorded": f"{d.get('stage')}: run {d.get('run')} {d.get('status')}",
            "llm.request": f"{d.get('stage')}: asking the model ({d.get('prompt_kind')})",
            "llm.throttled": f"{d.get('stage')}: waiting {d.get('wait_s')} s for the tokens-per-minute budget",
            "device.waiting": f"waiting for a GPU ({d.get('process')})",
            "launch.finished": "finished",
            "launch.stopped": f"stopped: {d.get('error')}",
        }.get(kind)
        if text:
            self.status = text

    @property
    def cost(self) -> str:
        return "unknown" if self._unpriced and not self._cost else f"${self._cost:.2f}"

    def runs(self) -> int:
        if self.run_dir is None:
            return 0
        return sum(1 for p in self.run_dir.glob("run_*/final_info.json") if p.parent.name != "run_0")

    def line(self) -> str:
        elapsed = (self.ended or time.monotonic()) - self.started if self.started else 0.0
        return f"{self.name:<24} {_clock(elapsed):>8}  {self.cost:>8}  {self.status}"


def child_argv(argv: list[str], idea: str) -> list[str]:
    """The command's flags for one idea: its `--idea`s and `--jobs` replaced by this idea."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("--idea", "--jobs"):
            skip = "=" not in arg and i + 1 < len(argv)
            continue
        out.append(arg)
    return [sys.executable, "-m", "agent.launch", "--idea", idea, *out]


def launch_many(names: list[str], argv: list[str], jobs: int, runs_dir: Path, quiet: bool) -> int:
    """Run every idea (N at once); print the status lines and the final table; the exit code
    is 0 when every idea finished, 130 when interrupted, else the first failing idea's."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    shared = Path(tempfile.mkdtemp(prefix=".command-", dir=runs_dir))
    share = max(1, (os.cpu_count() or 1) // max(1, min(jobs, len(names))))
    ideas = [Idea(i, n, shared / f"{i}_{n}.log", shared / f"{i}_{n}.run_dir") for i, n in enumerate(names)]
    env = {**os.environ, SHARED_ENV: str(shared), devices.CPU_SHARE_ENV: str(share)}
    if not quiet:
        print(f"{len(ideas)} ideas, {jobs} at a time; each idea's output: {shared}/<n>_<idea>.log", flush=True)
    screen = _Screen(quiet)
    interrupted = False
    signal.signal(signal.SIGTERM, _as_interrupt)  # `kill PID` stops the ideas as Ctrl-C does
    try:
        while True:
            running = [i for i in ideas if i.proc is not None and i.exit_code is None]
            for idea in ideas:
                if idea.proc is None and len(running) < jobs:
                    _start(idea, argv, env)
                    running.append(idea)
            for idea in running:
                idea.poll_journal()
                code = idea.proc.poll() if idea.proc else None
                if code is not None:
                    idea.exit_code, idea.ended = code, time.monotonic()
                    idea.poll_journal()
                    if code != 0 and not idea.status.startswith("stopped"):
                        idea.status = f"exit {code}: {EXIT_WORDS.get(code, 'failed')}"
            screen.show(ideas)
            if all(i.exit_code is not None for i in ideas):
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        interrupted = True
        _stop_all(ideas)
    screen.close()
    print(table(ideas), flush=True)
    if interrupted:
        return 130
    return next((i.exit_code for i in ideas if i.exit_code), 0) or 0


def _as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _start(idea: Idea, argv: list[str], env: dict[str, str]) -> None:
    log = open(idea.log, "wb")  # noqa: SIM115 - the child owns it; closed when we exit
    # A session of its own: Ctrl-C in the terminal reaches this process only, which then
    # gives each idea exactly one SIGINT (a second one could cut its clean stop short).
    idea.proc = subprocess.Popen([*child_argv(argv, idea.name), "--quiet"],
                                 env={**env, RUN_DIR_ENV: str(idea.run_dir_file)},
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    idea.started = time.monotonic()
    idea.status = "starting"


def _stop_all(ideas: list[Idea]) -> None:
    """Ctrl-C: each running idea gets SIGINT (it records its stop, commits, writes its
    report), then, after a grace period, SIGKILL. Ideas not started yet never start."""
    live = [i for i in ideas if i.proc is not None and i.proc.poll() is None]
    for idea in live:
        assert idea.proc is not None
        try:
            idea.proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + GRACE_S
    for idea in live:
        assert idea.proc is not None
        try:
            idea.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            idea.proc.kill()
            idea.proc.wait()
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            idea.proc.kill()
            idea.proc.wait()
    for idea in ideas:
        if idea.proc is None:
            idea.status = "not started (interrupted)"
        else:
            idea.exit_code = idea.proc.returncode if idea.proc.returncode is not None else 130
            idea.ended = idea.ended or time.monotonic()
            idea.poll_journal()


def table(ideas: list[Idea]) -> str:
    """The final table: idea, run dir, exit, runs, cost, paper (and how to resume)."""
    rows = [("idea", "run directory", "exit", "runs", "cost", "paper")]
    for i in ideas:
        paper = i.run_dir / "paper.pdf" if i.run_dir else None
        exit_text = "-" if i.exit_code is None else f"{i.exit_code} {EXIT_WORDS.get(i.exit_code, 'failed')}"
        rows.append((i.name, str(i.run_dir or "-"), exit_text, str(i.runs()), i.cost,
                     str(paper) if paper and paper.is_file() else "-"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    resumable = [i for i in ideas if i.exit_code not in (0, None) and i.run_dir is not None]
    if resumable:
        lines += ["", "resume an idea with: python -m agent.launch --resume RUN_DIR (each on its own)"]
    failed_early = [i for i in ideas if i.exit_code not in (0, None) and i.run_dir is None]
    for i in failed_early:
        lines.append(f"{i.name}: no run directory was made; its output: {i.log}")
    return "\n".join(lines)


class _Screen:
    """One status line per idea: redrawn in place on a terminal, printed on change otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stdout.isatty()
        self._last: dict[int, str] = {}
        self._drawn = 0

    def show(self, ideas: list[Idea]) -> None:
        if self.quiet:
            return
        if self.tty:
            if self._drawn:
                sys.stdout.write(f"\x1b[{self._drawn}F")
            for idea in ideas:
                sys.stdout.write("\x1b[2K" + idea.line()[:200] + "\n")
            self._drawn = len(ideas)
            sys.stdout.flush()
            return
        for idea in ideas:
            if self._last.get(idea.index) != idea.status:
                self._last[idea.index] = idea.status
                print(f"[{idea.name}] {idea.status}", flush=True)

    def close(self) -> None:
        if not self.quiet and self.tty:
            sys.stdout.write("\n")


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"
