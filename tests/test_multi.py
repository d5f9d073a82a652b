"""Several ideas in one command (`--idea A --idea B --jobs N`) through the real CLI, and the
budgets they share (one tokens-per-minute window per model, one --max-cost)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.journal import Journal, read
from agent.llm import Completion, LLMClient, LLMSettings, register_price
from agent.llm import cost as llm_cost
from agent.llm.shared import SHARED_ENV
from tests.conftest import REPO
from tests.e2e_helpers import TOY_KINDS, TOY_SESSION, TOY_TEMPLATES, cli, write_session
from tests.fakellm import FakeLLM, Reply

MESSAGES = [{"role": "user", "content": "Plan the experiments."}]


def _templates(tmp_path: Path) -> Path:
    """The toy template with two ideas: toy_idea (a whole session) and toy_short (a session
    that runs out after one reply, so its launch stops with exit 5)."""
    root = tmp_path / "templates"
    shutil.copytree(TOY_TEMPLATES, root)
    ideas = root / "toy_template" / "ideas"
    write_session(ideas / "toy_idea.session.jsonl")
    short = json.loads((ideas / "toy_idea.json").read_text())
    (ideas / "toy_short.json").write_text(json.dumps({**short, "Name": "toy_short"}))
    write_session(ideas / "toy_short.session.jsonl", TOY_SESSION[:1], TOY_KINDS[:1])
    return root


def _run_dirs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.mark.slow
def test_two_ideas_at_once_each_get_a_run_directory_and_one_failing_stops_not_the_other(tmp_path):
    templates = _templates(tmp_path)
    proc = cli("--idea", "toy_idea", "--idea", "toy_short", "--idea", "toy_idea", "--jobs", "2",
               "--templates-dir", str(templates), "--max-runs", "3", "--stages", "experiment",
               "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 5, proc.stdout + proc.stderr  # the failing idea's code
    dirs = _run_dirs(tmp_path / "runs")
    assert len(dirs) == 3
    by_idea: dict[str, list[Path]] = {}
    for d in dirs:
        by_idea.setdefault(json.loads((d / "idea.json").read_text())["Name"], []).append(d)
    assert len(by_idea["toy_idea"]) == 2 and len(by_idea["toy_short"]) == 1
    for d in by_idea["toy_idea"]:  # the whole loop, in a history of its own
        assert (d / "run_2" / "final_info.json").is_file()
        assert read(d / "journal.jsonl").events[-1].kind == "launch.finished"
    assert read(by_idea["toy_short"][0] / "journal.jsonl").events[-1].kind == "launch.stopped"
    # status lines per idea, then the table: idea, run dir, exit, runs, cost, paper
    assert "[toy_short] stopped: ReplayDiverged" in proc.stdout
    header = next(line for line in proc.stdout.splitlines() if line.startswith("idea "))
    assert header.split() == ["idea", "run", "directory", "exit", "runs", "cost", "paper"]
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("toy_idea ", "toy_short "))]
    assert len(rows) == 3
    assert sum("0 done" in r and " 2 " in r for r in rows) == 2
    assert any(r.startswith("toy_short") and "5 replay diverged" in r for r in rows)
    assert "--resume RUN_DIR" in proc.stdout


def test_an_unknown_idea_among_several_starts_nothing(tmp_path):
    templates = _templates(tmp_path)
    proc = cli("--idea", "toy_idea", "--idea", "no_such_idea", "--templates-dir", str(templates),
               "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "no_such_idea" in proc.stderr and "nothing was started" in proc.stderr
    assert not (tmp_path / "runs").exists() or not _run_dirs(tmp_path / "runs")


def _terminal_sigint() -> None:
    """Ctrl-C as a terminal delivers it: a suite started in the background by a shell without
    job control inherits SIGINT ignored, and Python then installs no KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_stops_every_idea_cleanly_and_each_resumes_on_its_own(tmp_path):
    templates = _templates(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["TOY_SLEEP"] = "30"  # every run sleeps: both ideas are mid-run when Ctrl-C comes
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.launch", "--idea", "toy_idea", "--idea", "toy_idea", "--jobs", "2",
         "--templates-dir", str(templates), "--max-runs", "3", "--stages", "experiment",
         "--runs-dir", str(tmp_path / "runs"), "--no-sandbox"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=_terminal_sigint)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dirs = _run_dirs(tmp_path / "runs") if (tmp_path / "runs").exists() else []
        started = [d for d in dirs if any(e.kind == "run.process" for e in read(d / "journal.jsonl").events)]
        if len(started) == 2:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the ideas never started their runs")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    rows = [line for line in out.splitlines() if line.startswith("toy_idea ")]
    assert len(rows) == 2 and all("130 interrupted" in r for r in rows), out
    for d in _run_dirs(tmp_path / "runs"):
        stopped = read(d / "journal.jsonl").events[-1]
        assert stopped.kind == "launch.stopped" and stopped.data["exit_code"] == 130
    first = _run_dirs(tmp_path / "runs")[0]
    resumed = cli("--resume", str(first), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert (first / "run_2" / "final_info.json").is_file()


def test_ideas_share_one_cost_budget_and_one_tokens_per_minute_window(tmp_path, monkeypatch):
    monkeypatch.setattr(llm_cost, "_REGISTERED", {})
    register_price("openai/test-model", input_per_mtok=1000.0, output_per_mtok=1000.0)
    estimate = llm_cost.estimate_tokens(MESSAGES, "openai/test-model")
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s

    env = {SHARED_ENV: str(tmp_path / "shared")}
    with FakeLLM([Reply("ok", usage=(20, 30))], repeat=True) as srv:
        def client(name: str, **extra) -> LLMClient:
            settings = LLMSettings("openai/test-model", api_base=srv.base_url, api_key="sk-test",
                                   timeout_s=5.0, max_output_tokens=10, **extra)
            return LLMClient(settings, Journal(tmp_path / name / "journal.jsonl"), clock=lambda: now[0],
                             sleep=sleep, env=env)

        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a, b = client("a", max_cost_usd=0.06), client("b", max_cost_usd=0.06)
        assert isinstance(a.complete(MESSAGES, stage="s", prompt_kind="k"), Completion)  # $0.05
        from agent.errors import StoppedResumable

        with pytest.raises(StoppedResumable, match="applies to the whole command"):
            b.complete(MESSAGES, stage="s", prompt_kind="k")  # b spent nothing, but together: no
        stop = read(tmp_path / "b" / "journal.jsonl").events[-1]
        assert stop.kind == "llm.budget_stopped" and stop.data["shared"] is True
        assert stop.data["spent_usd"] == pytest.approx(0.05) and stop.data["own_spent_usd"] == 0

        c, d = client("a", tpm_limit=estimate + 1), client("b", tpm_limit=estimate + 1)
        assert isinstance(c.complete(MESSAGES, stage="s", prompt_kind="k"), Completion)
        assert isinstance(d.complete(MESSAGES, stage="s", prompt_kind="k"), Completion)
    assert sleeps == [pytest.approx(60.0)]  # the second idea waited for the first's tokens
    throttled = [e.data for e in read(tmp_path / "b" / "journal.jsonl").events if e.kind == "llm.throttled"]
    assert len(throttled) == 1 and throttled[0]["shared"] is True


@pytest.mark.slow
def test_ideas_of_two_templates_run_side_by_side_each_with_its_own_evaluation(tmp_path):
    """`--idea toy_idea --idea dual_scale_denoiser`: the toy (no trusted evaluator: its metrics
    are the experiment's own, marked untrusted) beside 2d_diffusion (its seeds evaluated by
    harness.diffusion.evaluator), each with its own run directory, history and template."""
    templates = _templates(tmp_path)
    shutil.copytree(REPO / "templates" / "2d_diffusion", templates / "2d_diffusion")
    toml = templates / "toy_template" / "template.toml"  # one --preset for both: the toy gets a tiny too
    toml.write_text(toml.read_text(encoding="utf-8") + '\n[presets.tiny]\ndescription = "the toy as it is"\n',
                    encoding="utf-8")
    reference = templates / "2d_diffusion" / "ideas" / "dual_scale_denoiser.session.jsonl"
    plan = next(json.loads(line)["reply"] for line in reference.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("//"))
    write_session(reference, [plan, "ALL_COMPLETED"], ["experiment.plan", "experiment.results"])
    proc = cli("--idea", "toy_idea", "--idea", "dual_scale_denoiser", "--jobs", "2", "--preset", "tiny",
               "--templates-dir", str(templates), "--max-runs", "3", "--stages", "experiment",
               "--runs-dir", str(tmp_path / "runs"), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    by_idea = {json.loads((d / "idea.json").read_text())["Name"]: d for d in _run_dirs(tmp_path / "runs")}
    assert set(by_idea) == {"toy_idea", "dual_scale_denoiser"}
    diffusion, toy = by_idea["dual_scale_denoiser"], by_idea["toy_idea"]
    info = json.loads((diffusion / "run_1" / "final_info.json").read_text())
    assert info["provenance"]["evaluator"] == "harness.diffusion.evaluator"
    assert info["config"]["denoiser_class"] != "MLPDenoiser" and info["metrics"]["kl_mean"] > 0
    assert (toy / "run_2" / "final_info.json").is_file()
    assert "UNTRUSTED" in (toy / "notes.txt").read_text() and "UNTRUSTED" not in (diffusion / "notes.txt").read_text()
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("toy_idea ", "dual_scale_denoiser "))]
    assert len(rows) == 2 and all("0 done" in r for r in rows)
