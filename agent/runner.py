"""The only place that starts processes: experiments, plots, and compilers.

Each child runs in its own process group (a new session), in the run directory, with stdout
and stderr going to files, a timeout that kills the whole group, an environment built from an
allowlist (`agent.sandbox.child_env`: no credential reaches a child), and, for LLM-edited
code, inside a bubblewrap sandbox (`agent.sandbox.Sandbox`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from agent import runfiles
from agent.sandbox import Sandbox, child_env, scratch_env

RunStatus = Literal["ok", "failed", "timed_out", "killed"]

TAIL_CHARS = 4000  # what an outcome keeps of stderr: enough for a traceback, bounded for prompts


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one child process."""

    status: RunStatus
    """ok: exit 0; failed: non-zero exit; timed_out: killed at the timeout; killed: by a signal."""
    returncode: int | None
    """The exit code (negative for a signal), None if it never finished."""
    duration_s: float
    """Wall time in seconds."""
    stdout_path: Path
    """Where stdout went."""
    stderr_path: Path
    """Where stderr went."""
    stderr_tail: str
    """The end of stderr, bounded, always keeping the final exception line."""
    infrastructure: str | None = None
    """Set when the machinery ended the run, not the code (a SLURM job out of memory, past its
    time limit, on a failed node, preempted), in plain words; None for the code's own ending."""
    retryable: bool = False
    """Whether the same run may simply be submitted again (a node failure, a preemption)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self) -> str:
        """One line for people and prompts."""
        if self.infrastructure:
            return f"{self.infrastructure}, after {self.duration_s:.1f} s"
        if self.status == "ok":
            return f"finished in {self.duration_s:.1f} s"
        if self.status == "timed_out":
            return f"timed out after {self.duration_s:.0f} s and was killed"
        if self.status == "killed":
            return f"was killed by signal {-(self.returncode or 0)} after {self.duration_s:.1f} s"
        return f"failed with exit code {self.returncode} after {self.duration_s:.1f} s"


def tail_of(text: str, limit: int = TAIL_CHARS, exception_line: str | None = None) -> str:
    """The last `limit` characters of `text`, keeping the exception line of a traceback.

    A traceback ends with the line naming the exception; when output continues after it
    (warnings at interpreter shutdown, a logger, a progress bar), that line is kept as well,
    so the cause is never cut off. `exception_line` is that line when the caller found it
    in output that `text` no longer holds.
    """
    text = text.rstrip()
    exc_line = exception_line or _last_exception_line(text)
    if len(text) <= limit:
        tail = text
    else:
        tail = text[-limit:]
        tail = tail[tail.find("\n") + 1 :] if "\n" in tail else tail
    if exc_line and exc_line not in tail:
        budget = max(limit - len(exc_line) - 40, limit // 2)
        tail = tail[-budget:]
        tail = f"{exc_line}\n[... output after the exception line, trimmed ...]\n{tail}"
    elif len(text) <= limit:
        return text
    return f"[... {max(len(text) - len(tail), 0)} earlier characters trimmed ...]\n{tail}"


_TRACEBACK = "Traceback (most recent call last):"
_EXC_RE = re.compile(r"^(?:[A-Za-z_][\w.]*)(?:Error|Exception|Interrupt|Exit|Warning)\b.*$|^\w+Error$")
_SCAN_BYTES = 64 * 1024 * 1024  # how far back a huge stderr is searched for the exception line


def _last_exception_line(text: str) -> str | None:
    """The line naming the exception of the last traceback in `text`, if any.

    The first unindented line after the last `Traceback (most recent call last):` is the
    exception; without a complete traceback, the last line that looks like an error (an
    error is preferred over a warning printed after it).
    """
    start = text.rfind(_TRACEBACK)
    if start >= 0:
        for line in text[start:].splitlines()[1:]:
            if line.strip() and not line[0].isspace():
                return line.strip()[:1000]
    warning = None
    for line in reversed(text.splitlines()):
        if line.startswith((" ", "\t")) or not _EXC_RE.match(line.strip()):
            continue
        name = line.strip().split(":", 1)[0]
        if not name.endswith("Warning"):
            return line.strip()[:1000]
        warning = warning or line.strip()[:1000]
    return warning


def _scan_exception_line(f: BinaryIO, size: int) -> str | None:
    """The exception line of the last traceback in (the last 64 MB of) a file, streamed."""
    found, in_traceback = None, False
    f.seek(max(0, size - _SCAN_BYTES))
    for raw in f:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if line.startswith(_TRACEBACK):
            in_traceback = True
        elif in_traceback and line.strip() and not line[0].isspace():
            found, in_traceback = line.strip()[:1000], False
    return found


def read_tail(path: Path, limit: int = TAIL_CHARS) -> str:
    """Tail of a possibly huge file, reading only its end (plus a scan for the exception). The
    child may have replaced its log with a link or a FIFO: such a log is not read (runfiles)."""
    try:
        f = runfiles.open_file(path)
    except FileNotFoundError:
        return ""
    except runfiles.UnsafeFile as exc:
        return f"[{path.name} was not read: {exc}. The code that ran replaced its own log.]"
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return ""
        # Enough of the end to find an exception line above a long trailing stream.
        window = min(size, max(limit * 16, 256_000))
        f.seek(size - window)
        text = f.read().decode("utf-8", errors="replace")
        exc_line = None
        if window < size and _TRACEBACK not in text:
            # The traceback lies further up, above a long stream of later output: find it.
            exc_line = _scan_exception_line(f, size)
    out = tail_of(text, limit, exception_line=exc_line)
    if window < size and not out.startswith("[..."):
        out = f"[... earlier output trimmed ...]\n{out}"
    return out


def _kill_group(proc: subprocess.Popen[bytes], grace_s: float = 3.0) -> None:
    """SIGTERM then SIGKILL the child's whole process group; reap the child."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace_s)
            # The leader is gone, but grandchildren may linger in the group: finish them.
            if sig == signal.SIGTERM:
                continue
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    # SIGKILL is delivered at once but a process takes a moment to go (a sandbox's PID
    # namespace is torn down after its init): return only once the group is empty.
    deadline = time.monotonic() + 10
    while _group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def last_json(stdout: str) -> dict[str, Any]:
    """The last line of a child's stdout that is a JSON object (its receipt); {} if none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                return {}
            return found if isinstance(found, dict) else {}
    return {}


def log_paths(log_dir: Path, name: str = "") -> tuple[Path, Path]:
    """Where a child's stdout and stderr go: `log_dir/{name}_stdout.txt` and `_stderr.txt`."""
    prefix = f"{name}_" if name else ""
    return log_dir / f"{prefix}stdout.txt", log_dir / f"{prefix}stderr.txt"


OUT_OF_MEMORY = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "std::bad_alloc",
                 "out of memory")


def out_of_memory(outcome: RunOutcome) -> bool:
    """Whether a failed child says it could not allocate memory."""
    return outcome.status == "failed" and any(s in outcome.stderr_tail for s in OUT_OF_MEMORY)


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    log_dir: Path,
    timeout_s: float,
    name: str = "",
    env_extra: Mapping[str, str] | None = None,
    tail_chars: int = TAIL_CHARS,
    on_start: Callable[[int], object] | None = None,
    sandbox: Sandbox | None = None,
    pass_env: Iterable[str] = (),
    memory_bytes: int | None = None,
    file_bytes: int | None = None,
) -> RunOutcome:
    """Run `argv` in `cwd`; stdout/stderr go to `log_dir/{name}stdout.txt` / `stderr.txt`.

    `on_start(pid)` is called once the child exists (its pid is also its process group), so a
    caller can record it and clean up after a crash of its own (`kill_leftover`).

    `python` as argv[0] means this interpreter, so children see the same installed packages.
    `memory_bytes` bounds what the child (and what it starts) may allocate (RLIMIT_DATA, set
    with util-linux's `prlimit`): past it an allocation fails in that child only, which then
    says so (MemoryError, "can't allocate memory"); see `out_of_memory`. `file_bytes` bounds
    each file it writes (RLIMIT_FSIZE: past it the child is ended by SIGXFSZ).

    Expected failures come back as an outcome, never an exception.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = log_paths(log_dir, name)
    cmd = [sys.executable if argv[0] in ("python", "python3") else argv[0], *argv[1:]]
    scratch = None
    if sandbox is not None:
        scratch = Path(tempfile.mkdtemp(prefix="sandbox-tmp-"))
        cmd = sandbox.wrap(cmd, cwd.resolve(), tmp=scratch)
        env_extra = {**(env_extra or {}), **scratch_env(scratch)}
    limits = ([f"--data={memory_bytes}"] if memory_bytes is not None else []) + \
        ([f"--fsize={file_bytes}"] if file_bytes is not None else [])
    if limits and shutil.which("prlimit") is not None:
        cmd = ["prlimit", *limits, "--", *cmd]
    try:
        return _run(cmd, cwd=cwd, log_dir=log_dir, timeout_s=timeout_s, stdout_path=stdout_path,
                    stderr_path=stderr_path, env=child_env(os.environ, env_extra, pass_env),
                    tail_chars=tail_chars, on_start=on_start)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _run(cmd: list[str], *, cwd: Path, log_dir: Path, timeout_s: float, stdout_path: Path,
         stderr_path: Path, env: dict[str, str], tail_chars: int,
         on_start: Callable[[int], object] | None) -> RunOutcome:
    start = time.monotonic()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # own process group: the timeout kills grandchildren too
            )
        except OSError as exc:  # a missing program (pdflatex) is an outcome, not a crash of ours
            err.write(f"cannot start {cmd[0]!r}: {exc}\n".encode())
            err.flush()
            return RunOutcome("failed", 127, time.monotonic() - start, stdout_path, stderr_path,
                              read_tail(stderr_path, tail_chars))
        timed_out = False
        try:
            if on_start is not None:
                on_start(proc.pid)
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # Kill whatever the child left in its group, also on success or on our own crash.
            _kill_group(proc) if (timed_out or proc.returncode is None) else _reap_group(proc.pid)
    duration = time.monotonic() - start
    rc = proc.returncode
    status: RunStatus
    if timed_out:
        status = "timed_out"
    elif rc == 0:
        status = "ok"
    elif rc is not None and rc < 0:
        status = "killed"
    else:
        status = "failed"
    return RunOutcome(status, None if timed_out else rc, duration, stdout_path, stderr_path,
                      read_tail(stderr_path, tail_chars))


def kill_leftover(pgid: int, cwd: Path) -> bool:
    """Kill process group `pgid` left by a crashed orchestrator, if one of its processes still
    runs in `cwd` (a pid reused by an unrelated process is left alone). The leader need not be
    there: bubblewrap, a sandbox's leader, moves itself to `/`. True if something was killed."""
    root = cwd.resolve()
    inside = False
    for pid in _group_members(pgid):
        try:
            where = Path(os.readlink(f"/proc/{pid}/cwd")).resolve()
        except OSError:
            continue
        if where == root or root in where.parents:
            inside = True
            break
    if not inside:
        return False
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _group_members(pgid: int) -> list[int]:
    """The pids of process group `pgid`, from /proc (field 5 of /proc/<pid>/stat)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        if len(fields) > 2 and fields[2] == str(pgid):
            members.append(int(entry.name))
    return members


def _reap_group(pgid: int) -> None:
    """After a normal exit, leave no stray process of the child's group behind."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
