"""Reliability suite: drives the real CLI on the toy template and prints Markdown tables.

    python bench/reliability.py [--quick]

Sections: LLM faults from a loopback server; kill -9 at every crash point, then --resume;
hostile edits the policy must refuse; credentials an experiment can see. `--quick` runs one
row per section. Exit 1 when a row of the first three sections fails; the credentials section
reports leaks ("visible") without failing: sandboxing experiments is later work.
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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from agent.edits import EditPolicy, apply_blocks  # noqa: E402
from agent.edits.parse import EditBlock  # noqa: E402
from agent.journal import Event, read  # noqa: E402
from tests.e2e_helpers import (  # noqa: E402  # noqa: E402
    PLAN,
    TOY_KINDS_WITH_PLOT,
    TOY_SESSION_WITH_PLOT,
    block,
    cli,
    write_session,
)
from tests.fakellm import Drop, FakeLLM, Malformed, Reply, Slow, Status, Step  # noqa: E402
from tests.test_resume import COMMON, _fingerprint  # noqa: E402

LAUNCH_TIMEOUT_S = 180  # a hung launch fails its row instead of stalling the suite
FAULT_AT = 2  # faults go before the third toy reply: after run 1, with state on disk
KILLED = -9  # subprocess's return code for SIGKILL
TOY = [Reply(t) for t in TOY_SESSION_WITH_PLOT]
CHECK = Reply("ok")  # answers the launch's one-token check request (agent/llm/checks.py)


@dataclass(frozen=True)
class Row:
    """One line of a table: its cells, and whether it passed (None: not graded)."""

    cells: list[Any]
    ok: bool | None


@dataclass
class Section:
    """One table of the report."""

    title: str
    headers: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        graded = self.headers + ([] if all(r.ok is None for r in self.rows) else ["pass"])
        lines = [md(graded), md(["---"] * len(graded))]
        lines += [md(r.cells + ([] if r.ok is None else [yes(r.ok)])) for r in self.rows]
        return "\n".join([f"## {self.title}\n", *lines, "", *self.notes, ""])


def md(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def yes(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "**no**")


@dataclass(frozen=True)
class Launch:
    """One CLI subprocess and what it left behind."""

    rc: int | None
    """Exit code; negative for a signal; None when it hung past LAUNCH_TIMEOUT_S."""
    wall_s: float
    """Wall seconds."""
    run_dir: Path | None
    """The run directory under the runs folder, if there is exactly one."""


def launch(runs: Path, *args: str, env: dict[str, str] | None = None, resume: Path | None = None) -> Launch:
    argv = ["--resume", str(resume), "--quiet", *args] if resume else [*COMMON, *args, "--runs-dir", str(runs)]
    start = time.monotonic()
    try:
        rc: int | None = cli(*argv, env=env, timeout=LAUNCH_TIMEOUT_S).returncode
    except subprocess.TimeoutExpired:
        rc = None
    dirs = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")] if runs.exists() else []
    return Launch(rc, time.monotonic() - start, dirs[0] if len(dirs) == 1 else None)


def replay(path: Path, first: str | None = None) -> str:
    """`--model` for the toy session with plot, its first reply optionally replaced."""
    replies = [first or TOY_SESSION_WITH_PLOT[0], *TOY_SESSION_WITH_PLOT[1:]]
    return f"replay:{write_session(path, replies, TOY_KINDS_WITH_PLOT)}"


def events(run_dir: Path | None) -> list[Event]:
    try:
        return read(run_dir / "journal.jsonl").events if run_dir else []
    except (OSError, ValueError):
        return []


def fingerprint(run_dir: Path | None) -> dict | None:
    try:
        return _fingerprint(run_dir) if run_dir else None
    except (OSError, ValueError, KeyError):
        return None


def git(run_dir: Path | None, *args: str) -> str | None:
    """Read-only git in a run directory: its stdout, or None when git failed."""
    if run_dir is None:
        return None
    proc = subprocess.run(["git", "-C", str(run_dir), *args], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


# --- 1. LLM faults ------------------------------------------------------------------------------

FAULTS: list[tuple[str, list[Step], int, list[str]]] = [  # name, steps injected, retries, flags
    ("3 x 429, Retry-After: 1", [Status(429, retry_after=1)] * 3, 3, []),
    ("500", [Status(500)], 1, []),
    ("503", [Status(503)], 1, []),
    ("timeout: Slow(5), --llm-timeout 2", [Slow(5)], 1, ["--llm-timeout", "2"]),
    ("dropped connection", [Drop()], 1, []),
    ("malformed JSON body", [Malformed()], 1, []),
]


def live(runs: Path, script: list[Step], *flags: str, resume: Path | None = None) -> tuple[Launch, list[Event]]:
    """Launch (or resume) against FakeLLM; the launch and its `llm.retry` events."""
    with FakeLLM(script, error_status=400) as srv:
        model = [] if resume else ["--model", "openai/test-model"]
        res = launch(runs, *model, "--api-base", srv.base_url, *flags, env={"OPENAI_API_KEY": "sk-test"},
                     resume=resume)
    return res, [e for e in events(res.run_dir) if e.kind == "llm.retry"]


def llm_faults(tmp: Path, reference: dict, quick: bool) -> Section:
    s = Section(f"1. LLM faults (FakeLLM over HTTP, injected before toy reply {FAULT_AT + 1})",
                ["fault", "expected", "exit", "same artifacts", "llm.retry journaled", "wall s"])
    has_timeout = "--llm-timeout" in cli("--help").stdout
    for i, (name, steps, want, flags) in enumerate(FAULTS[:1] if quick else FAULTS):
        if flags and not has_timeout:
            s.rows.append(Row([name, "skipped: the CLI has no --llm-timeout", "", "", "", ""], None))
            continue
        res, retries = live(tmp / f"fault{i}", [CHECK, *TOY[:FAULT_AT], *steps, *TOY[FAULT_AT:]], *flags)
        same = fingerprint(res.run_dir) == reference
        kinds = ", ".join(sorted({str(e.data.get("failure")) for e in retries}))
        s.rows.append(Row([name, f"exit 0, same artifacts, {want} {'retry' if want == 1 else 'retries'}", res.rc, yes(same),
                           f"{len(retries)} ({kinds})", f"{res.wall_s:.1f}"],
                          res.rc == 0 and same and len(retries) == want))
    s.notes.append("Backoff without Retry-After is full jitter below `LLMSettings.backoff_base_s` (2 s); "
                   "no flag or variable shortens it. Each script starts with one reply for the launch's "
                   "one-token check request.")
    if quick:
        return s
    res, retries = live(tmp / "auth", [Status(401)])
    s.rows.append(Row(["401 at the launch's check request", "exit 2, no run dir", res.rc, "n/a",
                       f"{len(retries)}; run dir: {'none' if not (tmp / 'auth').exists() else 'CREATED'}",
                       f"{res.wall_s:.1f}"], res.rc == 2 and not (tmp / "auth").exists()))
    res, retries = live(tmp / "auth_mid", [*TOY[:FAULT_AT], Status(401)], "--no-preflight-call")
    again, _ = live(tmp / "auth_mid", [CHECK, *TOY[FAULT_AT:]], resume=res.run_dir) if res.run_dir else (res, [])
    same = fingerprint(res.run_dir) == reference
    s.rows.append(Row(["401 mid-session (--no-preflight-call), then --resume --api-base",
                       "exit 2, not retried; resume: exit 0, same artifacts", f"{res.rc}; resume {again.rc}",
                       yes(same), str(len(retries)), f"{res.wall_s + again.wall_s:.1f}"],
                      res.rc == 2 and not retries and again.rc == 0 and same))
    return s


# --- 2. kill -9 at every crash point, then --resume --------------------------------------------

CRASH_POINTS = ["run_started:2", "run_started:3", "run_finished:2", "run_finished:3", "run_committed:2",
                "run_committed:3", "notes_written:2", "notes_committed:2", "edit_applied:1",
                "edit_applied:3", "stage_finished:1", "plot_started:1", "plot_finished:1"]


def crash_resume(tmp: Path, reference: dict, quick: bool) -> Section:
    s = Section("2. kill -9 at a crash point (`AGENT_TEST_CRASH_AT`), then `--resume`",
                ["point", "killed", "resume exit", "completed", "runs lost", "executed twice",
                 "orphans: after kill, after resume", "git linear", "tree clean", "wall s"])
    for point in CRASH_POINTS[8:9] if quick else CRASH_POINTS:
        name = point.replace(":", "_")
        env = {"AGENT_TEST_CRASH_AT": point}
        if point.startswith("plot_started"):
            env["TOY_PLOT_SLEEP"] = "30"  # the plot outlives the killed orchestrator
        first = launch(tmp / name, "--model", replay(tmp / f"{name}.jsonl"), env=env)
        left = orphans(first.run_dir)
        second = launch(tmp / name, resume=first.run_dir) if first.run_dir else first
        fp, still = fingerprint(first.run_dir), orphans(first.run_dir)
        lost = len(set(reference["runs"]) - set((fp or {}).get("runs", {})))
        twice = executed_twice(events(first.run_dir))
        linear = git(first.run_dir, "rev-list", "--merges", "HEAD") == ""
        clean = git(first.run_dir, "status", "--porcelain") == ""
        completed = second.rc == 0 and fp == reference
        s.rows.append(Row([point, yes(first.rc == KILLED), second.rc, yes(completed), lost, twice,
                           f"{len(left)}, {len(still)}", yes(linear), yes(clean),
                           f"{first.wall_s + second.wall_s:.1f}"],
                          first.rc == KILLED and completed and not lost and not twice and not still
                          and linear and clean))
        for pid in still:  # reported; they must not disturb the next rows
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    s.notes.append("`latex_started` (writeup stage) is not reached with `--stages experiment,plot`. "
                   "Executed twice: a `run.finished` repeated for one (run, attempt), or a `run.started` "
                   "after its `run.finished` (a process killed mid-run is legitimately started again).")
    return s


def executed_twice(evs: list[Event]) -> int:
    finished: dict[tuple[int, int], int] = {}
    twice = set()
    for e in evs:
        if e.kind in ("run.started", "run.finished"):
            key = (e.data["run"], e.data["attempt"])
            if e.kind == "run.finished":
                finished[key] = finished.get(key, 0) + 1
            if finished.get(key, 0) > (1 if e.kind == "run.finished" else 0):
                twice.add(key)
    return len(twice)


def orphans(run_dir: Path | None) -> list[int]:
    """Processes alive (not zombies) whose working directory is inside the run directory."""
    if run_dir is None:
        return []
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cwd = Path(os.readlink(proc / "cwd"))
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone, not a process, or not ours to read
        if cwd.is_relative_to(run_dir.resolve()) and state != "Z" and proc.name != str(os.getpid()):
            found.append(int(proc.name))
    return found


# --- 3. hostile edits ---------------------------------------------------------------------------

TARGETS = ["{outside}/passwd", "../outside.txt", ".git/config", "run_0/final_info.json", "journal.jsonl",
           "template.toml", "experiment/harness/metrics.py", "harness/metrics.py", "idea.json", "README.md"]


def hostile_edits(tmp: Path, reference: dict, quick: bool) -> Section:
    s = Section("3. Hostile edits (empty-SEARCH blocks in the first reply; prepend or create)",
                ["target", "refused", "untouched", "reason"])
    runs, outside = tmp / "runs", tmp / "outside"
    outside.mkdir()
    runs.mkdir()
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (runs / "outside.txt").write_text("outside the run dir\n")
    originals = {p.resolve(): p.read_bytes() for p in (outside / "passwd", runs / "outside.txt")}
    targets = [t.format(outside=outside) for t in (TARGETS[:1] if quick else TARGETS)]
    marks = {t: f"HOSTILE-EDIT-{i}" for i, t in enumerate(targets)}
    res = launch(runs, "--model", replay(tmp / "hostile.jsonl",
                                         "".join(block(t, "", marks[t] + "\n") for t in targets) + PLAN))
    said = {e.data["path"]: e.data["reason"] for e in events(res.run_dir)
            if e.kind in ("edit.refused", "edit.failed")}
    for t in targets:
        path = (res.run_dir or runs / "missing") / t  # an absolute t stays itself
        now = path.read_bytes() if path.is_file() else None
        # The reply (marker included) is journaled as JSON; only a line of its own is the edit.
        kept = now is None or not any(ln.startswith(marks[t].encode()) for ln in now.splitlines())
        kept = kept and originals.get(path.resolve(), now) == now
        reason = said.get(t, "(no edit.refused or edit.failed event)").split(". Editable files:")[0]
        s.rows.append(Row([f"`{t.replace(str(tmp), '<tmp>')}`", yes(t in said), yes(kept),
                           reason.replace(str(tmp), "<tmp>")], t in said and kept))
    s.rows += [] if quick else symlink_rows(tmp / "links")
    s.notes.append(f"The launch: exit {res.rc}; artifacts equal to the reference: "
                   f"{yes(fingerprint(res.run_dir) == reference)}.")
    return s


def symlink_rows(tmp: Path) -> list[Row]:
    """`agent.edits.apply_blocks` directly: a file link and a folder link pointing outside."""
    root, outside = tmp / "run", tmp / "outside"
    root.mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (root / "notes.txt").symlink_to(outside / "secret.txt")
    (root / "sub").symlink_to(outside, target_is_directory=True)
    policy = EditPolicy(root=root, editable=frozenset({"notes.txt", "sub/new.txt"}))
    report = apply_blocks([EditBlock("notes.txt", "", "X\n"), EditBlock("sub/new.txt", "", "X\n")], policy)
    said = {r.block.path: r.reason.split(". Editable files:")[0] for r in report.refused}
    kept = {"notes.txt": (outside / "secret.txt").read_text() == "secret\n",
            "sub/new.txt": not (outside / "new.txt").exists()}
    return [Row([f"`{p}` (symlink to outside, apply_blocks)", yes(p in said), yes(kept[p]),
                 said.get(p, "(not refused)")], p in said and kept[p]) for p in kept]


# --- 4. credentials visible to experiments -----------------------------------------------------

CREDENTIALS = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HF_TOKEN", "GH_PAT", "LITELLM_MASTER_KEY", "OPENAI_KEY",
               "AWS_SECRET_ACCESS_KEY", "MY_SERVICE_PASSWORD", "GITHUB_TOKEN", "DATABASE_URL", "SLACK_WEBHOOK_URL"]
DUMP = block("experiment.py", "    out_dir.mkdir(parents=True, exist_ok=True)\n", (
    "    out_dir.mkdir(parents=True, exist_ok=True)\n"
    "    seen = '\\n'.join(f'{k}={v}' for k, v in os.environ.items())\n"
    "    try:\n"
    "        parent = Path(f'/proc/{os.getppid()}/environ').read_bytes().decode(errors='replace')\n"
    "    except OSError as exc:\n"
    "        parent = f'unreadable: {exc}'\n"
    "    parent = parent.replace(chr(0), '\\n')\n"
    "    (out_dir / 'env_seen.txt').write_text(f'## os.environ\\n{seen}\\n## parent environ\\n{parent}\\n')\n"))


def credentials(tmp: Path, quick: bool) -> Section:
    s = Section("4. Credentials in the orchestrator's environment, as an experiment sees them",
                ["variable", "experiment's os.environ", "/proc/<ppid>/environ", "run dir files", "git log -p",
                 "verdict"])
    planted = {n: f"planted-{n.lower()}-7f3a9c" for n in (CREDENTIALS[:1] if quick else CREDENTIALS)}
    if "DATABASE_URL" in planted:
        planted["DATABASE_URL"] = f"postgres://user:{planted['DATABASE_URL']}@host/db"
    res = launch(tmp / "runs", "--model", replay(tmp / "creds.jsonl", DUMP + PLAN), env=planted)
    seen = res.run_dir / "run_1" / "env_seen.txt" if res.run_dir else tmp / "missing"
    child, _, parent = (seen.read_text() if seen.exists() else "").partition("## parent environ")
    files = [p for p in res.run_dir.rglob("*") if p.is_file() and ".git" not in p.parts] if res.run_dir else []
    history = git(res.run_dir, "log", "-p", "--all") or ""
    holders: set[str] = set()
    for name, value in planted.items():
        hits = [p for p in files if value.encode() in p.read_bytes()]
        holders.update(str(p.relative_to(res.run_dir or tmp)) for p in hits)
        flags = [value in child, value in parent, bool(hits), value in history]
        s.rows.append(Row([name, *("yes" if f else "no" for f in flags),
                           "**visible**" if any(flags) else "hidden"], not any(flags)))
    sandbox = next((e.get("data", {}).get("sandbox") for e in _events(res.run_dir)
                    if e.get("kind") == "launch.started"), None) if res.run_dir else None
    s.notes.append(f"The launch: exit {res.rc}; sandbox: {sandbox or 'not recorded'}; files holding "
                   f"a planted value: {', '.join(sorted(holders)) or 'none'}.")
    return s


def _events(run_dir: Path) -> list[dict]:
    path = run_dir / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


# --- report -------------------------------------------------------------------------------------

SECTIONS = ("faults", "crashes", "edits", "credentials")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one row per section")
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="run only this section (repeatable)")
    args = parser.parse_args()
    quick, only = args.quick, set(args.only or SECTIONS)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reliability-") as name:
        tmp = Path(name)
        (tmp / "reference").mkdir()
        ref = launch(tmp / "reference" / "runs", "--model", replay(tmp / "reference" / "s.jsonl"))
        reference = fingerprint(ref.run_dir)
        if ref.rc != 0 or reference is None:
            print(f"The fault-free reference launch failed (exit {ref.rc}); nothing to compare with.")
            return 1
        sections = []
        for title, run in [("faults", lambda d: llm_faults(d, reference, quick)),
                           ("crashes", lambda d: crash_resume(d, reference, quick)),
                           ("edits", lambda d: hostile_edits(d, reference, quick)),
                           ("credentials", lambda d: credentials(d, quick))]:
            if title not in only:
                continue
            t0 = time.monotonic()
            (tmp / title).mkdir()
            sections.append(run(tmp / title))
            print(f"{title}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)

    wall = time.monotonic() - start
    print(f"# Reliability suite{' (--quick)' if quick else ''}: {datetime.now():%Y-%m-%d %H:%M}, "
          f"nproc {os.cpu_count()}, Python {platform.python_version()}, total wall {wall:.0f} s "
          f"(fault-free reference launch {ref.wall_s:.1f} s)\n")
    for section in sections:
        print(section.markdown())
    labels = {"faults": "LLM faults", "crashes": "crash + resume", "edits": "hostile edits",
              "credentials": "credentials hidden"}
    graded = [(labels[t], [r.ok for r in s.rows if r.ok is not None])
              for t, s in zip([t for t in SECTIONS if t in only], sections, strict=True)]
    passed = sum(sum(oks) for _, oks in graded)
    total = sum(len(oks) for _, oks in graded)
    print(f"**Summary:** {passed}/{total} rows pass ("
          + "; ".join(f"{label} {sum(oks)}/{len(oks)}" for label, oks in graded) + f"); {wall:.0f} s.")
    return 0 if passed == total else 1


if __name__ == "__main__":
    sys.exit(main())
