"""The runner: children in their own process group, logs to files, timeouts that kill the whole
group, bounded stderr tails that keep the exception line, and no credentials in the child."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agent import runner
from agent.runner import run, tail_of

TAIL_BOUND = 5000  # characters: TAIL_CHARS (4000) plus the trim notices


def _script(tmp_path: Path, body: str, name: str = "child.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def _alive(pid: int) -> bool:
    """True while `pid` is a live process (a zombie waiting to be reaped counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_dead(pid: int, within_s: float = 3.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _run(tmp_path: Path, body: str, timeout_s: float = 20, **kw: object) -> runner.RunOutcome:
    script = _script(tmp_path, body)
    return run(["python", str(script)], cwd=tmp_path, log_dir=tmp_path / "logs", timeout_s=timeout_s, **kw)


# --- process group, cwd, log files -----------------------------------------------------------

def test_child_runs_in_its_own_process_group_in_the_given_directory(tmp_path: Path) -> None:
    out = _run(tmp_path, """
        import os, json, sys
        print(json.dumps({"pid": os.getpid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
                          "cwd": os.getcwd(), "exe": sys.executable}))
    """)
    assert out.status == "ok", out.stderr_tail
    info = json.loads(out.stdout_path.read_text())
    assert info["pgid"] == info["pid"], "the child leads a process group of its own"
    assert info["sid"] == info["pid"], "the child starts a new session"
    assert info["pgid"] != os.getpgid(0)
    assert Path(info["cwd"]).resolve() == tmp_path.resolve()
    assert info["exe"] == sys.executable, "`python` means this interpreter"


def test_stdout_and_stderr_go_to_files_in_the_log_dir(tmp_path: Path) -> None:
    out = _run(tmp_path, """
        import sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
    """, name="plot")
    assert out.stdout_path == tmp_path / "logs" / "plot_stdout.txt"
    assert out.stderr_path == tmp_path / "logs" / "plot_stderr.txt"
    assert out.stdout_path.read_text().strip() == "to stdout"
    assert out.stderr_path.read_text().strip() == "to stderr"
    assert out.stderr_tail == "to stderr"


# --- timeouts --------------------------------------------------------------------------------

def test_timeout_kills_the_child_and_its_grandchildren(tmp_path: Path) -> None:
    pids = tmp_path / "pids.json"
    grandchild = _script(tmp_path, f"""
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL of the group gets it
        open({str(tmp_path / "grandchild.pid")!r}, "w").write(str(os.getpid()))
        while True:
            time.sleep(1)
    """, name="grandchild.py")
    out = _run(tmp_path, f"""
        import json, os, subprocess, sys, time
        from pathlib import Path
        g = subprocess.Popen([sys.executable, {str(grandchild)!r}])
        pidfile = Path({str(tmp_path / "grandchild.pid")!r})
        while not pidfile.exists() or not pidfile.read_text():
            time.sleep(0.01)
        Path({str(pids)!r}).write_text(json.dumps({{"child": os.getpid(), "grandchild": g.pid}}))
        while True:
            time.sleep(1)
    """, timeout_s=1.5)
    assert out.status == "timed_out"
    assert out.returncode is None
    assert out.duration_s >= 1.5  # not ended before its limit
    ids = json.loads(pids.read_text())
    for role, pid in ids.items():
        assert _wait_dead(pid), f"the {role} (pid {pid}) survived the timeout"
    assert "timed out" in out.describe()


def test_grandchild_left_running_after_a_normal_exit_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "stray.pid"
    out = _run(tmp_path, f"""
        import subprocess, sys
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pidfile)!r}, "w").write(str(p.pid))
    """)
    assert out.status == "ok"
    assert _wait_dead(int(pidfile.read_text())), "a stray grandchild outlived its run"


# --- stderr tails ----------------------------------------------------------------------------

def test_huge_stderr_then_exception_gives_a_bounded_tail_with_the_exception_line(tmp_path: Path) -> None:
    out = _run(tmp_path, """
        import sys
        for i in range(16_000):
            sys.stderr.write(f"progress line {i:06d} " + "." * 48 + "\\n")  # ~1 MB
        raise ValueError("the real cause: lr=7 diverged")
    """)
    assert out.status == "failed"
    assert out.returncode == 1
    assert out.stderr_path.stat().st_size > 1_000_000
    assert len(out.stderr_tail) <= TAIL_BOUND
    assert "ValueError: the real cause: lr=7 diverged" in out.stderr_tail
    assert out.stderr_tail.rstrip().endswith("ValueError: the real cause: lr=7 diverged")


@pytest.mark.parametrize("junk_lines", [200, 60_000], ids=["short-junk", "3MB-junk"])
def test_exception_line_is_kept_when_junk_follows_the_traceback(tmp_path: Path, junk_lines: int) -> None:
    out = _run(tmp_path, f"""
        import sys, traceback
        sys.stderr.write("x" * 1_000_000 + "\\n")
        try:
            raise ValueError("shape mismatch (64, 128) vs (128, 64)")
        except ValueError:
            traceback.print_exc()
        for i in range({junk_lines}):
            # Shutdown chatter after the traceback, including warning lines that look like errors.
            sys.stderr.write(f"UserWarning: leaked semaphore {{i}} " + "~" * 20 + "\\n")
        sys.exit(1)
    """)
    assert out.status == "failed"
    assert len(out.stderr_tail) <= TAIL_BOUND
    assert "ValueError: shape mismatch (64, 128) vs (128, 64)" in out.stderr_tail
    assert "UserWarning: leaked semaphore" in out.stderr_tail, "the end of the output is kept too"


def test_tail_of_prefers_the_error_over_a_later_warning() -> None:
    text = ("Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'lr'\n"
            + "ResourceWarning: unclosed file\n" * 50 + "z" * 5000)
    tail = tail_of(text, 1000)
    assert "KeyError: 'lr'" in tail
    assert len(tail) <= 1200


def test_short_stderr_is_returned_whole() -> None:
    text = "Traceback (most recent call last):\n  File \"x.py\"\nValueError: small\n"
    assert tail_of(text) == text.rstrip()


# --- environment -----------------------------------------------------------------------------

CREDENTIALS = ("FOO_API_KEY", "GITHUB_TOKEN", "MY_SECRET_THING", "AWS_ACCESS_KEY_ID",
               "AZURE_CLIENT_SECRET", "GOOGLE_APPLICATION_CREDENTIALS", "HF_TOKEN",
               "ANTHROPIC_API_KEY", "OPENAI_API_KEY")


def test_credentials_are_absent_in_the_child_and_ordinary_variables_present(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIALS:
        monkeypatch.setenv(name, "s3cr3t-value")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")  # looks like TOKEN, is not a credential
    dump = tmp_path / "env.json"
    out = _run(tmp_path, f"""
        import json, os
        open({str(dump)!r}, "w").write(json.dumps(dict(os.environ)))
    """, env_extra={"EXPERIMENT_PRESET": "tiny"})
    assert out.status == "ok", out.stderr_tail
    env = json.loads(dump.read_text())
    leaked = [n for n in CREDENTIALS if n in env]
    assert not leaked, f"credentials reached the child: {leaked}"
    assert "s3cr3t-value" not in json.dumps(env)
    assert env["PATH"] == os.environ["PATH"]
    assert env["HOME"] == os.environ["HOME"]
    assert env["EXPERIMENT_PRESET"] == "tiny"
    assert env["TOKENIZERS_PARALLELISM"] == "false"


# --- outcomes --------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "status", "returncode"), [
    ("print('fine')", "ok", 0),
    ("import sys; sys.exit(3)", "failed", 3),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed", -9),
])
def test_exit_code_maps_to_status(tmp_path: Path, body: str, status: str, returncode: int) -> None:
    out = _run(tmp_path, body)
    assert (out.status, out.returncode) == (status, returncode)
    assert out.ok is (status == "ok")


def test_missing_program_is_a_failed_outcome_not_an_exception(tmp_path: Path) -> None:
    out = run(["definitely-not-a-program-xyz", "--version"], cwd=tmp_path, log_dir=tmp_path / "logs",
              timeout_s=5)
    assert out.status == "failed"
    assert "definitely-not-a-program-xyz" in out.stderr_tail


def test_a_child_past_its_memory_limit_fails_alone_and_says_so(tmp_path: Path) -> None:
    """RLIMIT_DATA bounds what the child allocates: a 2 GB allocation under a 512 MB limit
    fails in that child (MemoryError), which the outcome recognises; a modest one passes."""
    greedy = runner.run([sys.executable, "-c", "b = bytearray(2 * 2**30)"], cwd=tmp_path, log_dir=tmp_path,
                        name="greedy", timeout_s=60, memory_bytes=512 * 2**20)
    assert greedy.status == "failed" and runner.out_of_memory(greedy), greedy.stderr_tail
    modest = runner.run([sys.executable, "-c", "b = bytearray(64 * 2**20)"], cwd=tmp_path, log_dir=tmp_path,
                        name="modest", timeout_s=60, memory_bytes=512 * 2**20)
    assert modest.ok and not runner.out_of_memory(modest)
    unbounded = runner.run([sys.executable, "-c", "b = bytearray(2 * 2**30)"], cwd=tmp_path, log_dir=tmp_path,
                           name="unbounded", timeout_s=60)
    assert unbounded.ok, "without the limit the same allocation succeeds on this machine"


def test_a_file_past_the_childs_file_limit_is_not_written(tmp_path: Path) -> None:
    out = runner.run([sys.executable, "-c", "open('big.dat', 'wb').write(bytes(3 * 2**20))"], cwd=tmp_path,
                     log_dir=tmp_path, name="big", timeout_s=60, file_bytes=2**20)
    assert out.status in ("failed", "killed") and (tmp_path / "big.dat").stat().st_size <= 2**20
    assert "File too large" in out.stderr_tail or out.status == "killed"
