"""The command line: a fast, documented `--help`, and bad input refused with exit code 2 and a
message that says what is wrong, before anything is created or run."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent import baseline, launch, runner
from agent.config import STAGES, LaunchConfig
from agent.journal import JOURNAL_NAME, read
from agent.workspace import Workspace
from tests.fakellm import FakeLLM, Reply
from tests.test_template import TEMPLATES, copy_toy, toy_manifest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "litellm", "git", "rich", "matplotlib", "datasets", "jinja2")
FLAGS = ("--idea", "--template", "--model", "--api-base", "--max-runs", "--max-attempts", "--timeout",
         "--preset", "--resume", "--max-cost", "--runs-dir", "--stages", "--skip-writeup", "--quiet",
         "--price-per-mtok", "--llm-timeout", "--no-preflight-call", "--no-sandbox")


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails the test if a run directory is created, a baseline started or a process spawned."""
    calls: list[str] = []

    def forbidden(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} ran although the input was bad")
        return call

    monkeypatch.setattr(Workspace, "create", forbidden("Workspace.create"))
    monkeypatch.setattr(baseline, "ensure", forbidden("baseline.ensure"))
    monkeypatch.setattr(runner, "run", forbidden("runner.run"))
    return calls


def _refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
             templates: Path = TEMPLATES) -> str:
    """Run the CLI in-process; assert exit 2 and an empty runs dir; return what it printed."""
    runs = tmp_path / "runs"
    code = launch.main([*argv, "--templates-dir", str(templates), "--runs-dir", str(runs), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not runs.exists() or not any(runs.iterdir()), "a run directory was created"
    assert err.startswith("error: ")
    return err


# --- --help ----------------------------------------------------------------------------------

def test_help_imports_nothing_heavy() -> None:
    """How long --help takes is a figure of bench/bench_cli.py; what it may import is tested."""
    proc = _python("-X", "importtime", "-m", "agent.launch", "--help")
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "agent.launch" in imported or "agent.config" in imported, "importtime output was parsed"
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert not heavy, f"--help imported heavy modules: {heavy}"
    assert "usage: python -m agent.launch" in proc.stdout


def test_importing_the_cli_module_loads_no_heavy_package() -> None:
    proc = _python("-c", "import json, sys, agent.launch; print(json.dumps(sorted(sys.modules)))")
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    assert "agent.launch" in loaded
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


@pytest.mark.parametrize("flag", FLAGS)
def test_help_documents_every_flag(flag: str) -> None:
    assert flag in launch.build_parser().format_help()


def test_help_states_the_run_and_attempt_defaults_and_they_hold() -> None:
    text = " ".join(launch.build_parser().format_help().split())  # argparse wraps lines
    assert "--max-runs MAX_RUNS runs after the baseline (default 5)" in text
    assert "--max-attempts MAX_ATTEMPTS executions per run when it fails and is fixed (default 4)" in text
    args = launch.build_parser().parse_args(["--idea", "x"])
    cfg = launch.config_from_args(args)
    assert (cfg.max_runs, cfg.max_attempts, cfg.stages, cfg.runs_dir) == (5, 4, STAGES, "runs")


# --- flags -----------------------------------------------------------------------------------

def test_every_flag_reaches_the_launch_config() -> None:
    args = launch.build_parser().parse_args([
        "--idea", "toy_idea", "--template", "toy_template", "--model", "openai/qwen",
        "--api-base", "http://localhost:8000/v1", "--max-runs", "2", "--max-attempts", "3",
        "--timeout", "12.5", "--preset", "tiny", "--max-cost", "1.5", "--runs-dir", "/tmp/r",
        "--stages", "plot,experiment", "--quiet", "--price-per-mtok", "0.2,0.6",
        "--llm-timeout", "45", "--no-preflight-call", "--no-sandbox"])
    cfg = launch.config_from_args(args)
    assert cfg == LaunchConfig(idea="toy_idea", template="toy_template", model="openai/qwen",
                               api_base="http://localhost:8000/v1", max_runs=2, max_attempts=3,
                               timeout_s=12.5, preset="tiny", max_cost_usd=1.5, runs_dir="/tmp/r",
                               stages=("experiment", "plot"), quiet=True,
                               price_per_mtok=(0.2, 0.6), llm_timeout_s=45.0, preflight_call=False,
                               sandbox=False)
    assert LaunchConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    settings = cfg.llm_settings("openai/qwen")
    assert (settings.api_base, settings.timeout_s, settings.max_cost_usd, settings.price_per_mtok) == (
        "http://localhost:8000/v1", 45.0, 1.5, (0.2, 0.6))


def test_llm_flags_default_to_a_300_s_timeout_no_price_and_the_check_call() -> None:
    cfg = launch.config_from_args(launch.build_parser().parse_args(["--idea", "x"]))
    assert (cfg.llm_timeout_s, cfg.price_per_mtok, cfg.preflight_call) == (300.0, None, True)
    assert cfg.sandbox is True  # unsandboxed only when asked for
    text = " ".join(launch.build_parser().format_help().split())
    assert "--llm-timeout SECONDS seconds one LLM request may take" in text and "(default 300)" in text


def test_flags_typed_on_resume_name_the_config_fields_they_override() -> None:
    typed = launch._explicit_flags(["--resume", "runs/x", "--max-cost=9", "--timeout", "60",
                                    "--llm-timeout", "600", "--price-per-mtok", "1,2", "--quiet"])
    fields = {f.name for f in dataclasses.fields(LaunchConfig)}
    assert {"max_cost_usd", "timeout_s", "llm_timeout_s", "price_per_mtok", "quiet"} <= set(typed)
    assert set(typed) - {"resume"} <= fields


def test_skip_writeup_drops_the_writeup_stage() -> None:
    args = launch.build_parser().parse_args(["--idea", "x", "--skip-writeup"])
    assert launch.config_from_args(args).stages == ("experiment", "plot")


@pytest.mark.parametrize("argv", [
    [],
    ["--idea", "toy_idea", "--resume", "runs/x"],
    ["--idea", "toy_idea", "--max-runs", "0"],
    ["--idea", "toy_idea", "--max-attempts", "-1"],
    ["--idea", "toy_idea", "--max-runs", "two"],
    ["--idea", "toy_idea", "--timeout", "nan"],
    ["--idea", "toy_idea", "--max-cost", "inf"],
    ["--idea", "toy_idea", "--price-per-mtok", "3"],
    ["--idea", "toy_idea", "--price-per-mtok", "3,x"],
    ["--idea", "toy_idea", "--price-per-mtok", "-1,2"],
    ["--idea", "toy_idea", "--price-per-mtok", "1,2,3"],
    ["--idea", "toy_idea", "--llm-timeout", "0"],
    ["--idea", "toy_idea", "--stages", "experiment,publish"],
    ["--idea", "toy_idea", "--stages", ","],
    ["--idea", "toy_idea", "--stages", "writeup", "--skip-writeup"],
    ["--idea", "toy_idea", "--stages", "writeup,review", "--skip-writeup"],
    ["--idea", "toy_idea", "--no-such-flag"],
], ids=lambda a: " ".join(a) or "no-args")
def test_bad_flags_exit_2_before_anything_runs(argv: list[str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str], nothing_runs: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        launch.main([*argv, "--runs-dir", str(tmp_path / "runs")])
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    assert nothing_runs == []


# --- bad input: ideas and templates ----------------------------------------------------------

def test_unknown_idea_exits_2_lists_known_ideas_and_creates_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = _python("-m", "agent.launch", "--idea", "no_such_idea", "--templates-dir", str(TEMPLATES),
                   "--runs-dir", str(runs))
    assert proc.returncode == 2, proc.stderr
    assert "unknown idea 'no_such_idea'" in proc.stderr
    assert "Known ideas: toy_idea" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not runs.exists()


def test_malformed_idea_json_exits_2_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    nothing_runs: list[str]) -> None:
    root = copy_toy(tmp_path)
    idea = root / "ideas" / "toy_idea.json"
    idea.write_text(idea.read_text().replace('"novel": false,', '"novel": false'))
    err = _refused(capsys, tmp_path, ["--idea", "toy_idea"], tmp_path / "templates")
    assert str(idea) in err and "malformed JSON" in err
    assert nothing_runs == []


def test_idea_missing_a_field_exits_2_naming_the_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               nothing_runs: list[str]) -> None:
    root = copy_toy(tmp_path)
    idea = root / "ideas" / "toy_idea.json"
    fields = json.loads(idea.read_text())
    del fields["Technical_Details"]
    idea.write_text(json.dumps(fields))
    err = _refused(capsys, tmp_path, ["--idea", "toy_idea"], tmp_path / "templates")
    assert str(idea) in err and "'Technical_Details'" in err
    assert nothing_runs == []


def _broken(manifest: dict[str, Any], how: str) -> tuple[dict[str, Any], str]:
    if how == "missing run_command":
        del manifest["run_command"]
        return manifest, "'run_command'"
    if how == "bad direction":
        manifest["metrics"][0]["direction"] = "down"
        return manifest, "direction"
    if how == "unsafe editable":
        manifest["editable"] = ["../../agent/launch.py"]
        return manifest, "unsafe path '../../agent/launch.py'"
    manifest["gates"][0]["check"] = "__import__('os').getcwd() == ''"
    return manifest, "gates"


@pytest.mark.parametrize("how", ["missing run_command", "bad direction", "unsafe editable", "bad gate"])
def test_bad_template_manifest_exits_2_naming_the_file_and_field(
        how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], nothing_runs: list[str]) -> None:
    manifest, expected = _broken(toy_manifest(), how)
    root = copy_toy(tmp_path, manifest)
    err = _refused(capsys, tmp_path, ["--idea", "toy_idea"], tmp_path / "templates")
    assert str(root / "template.toml") in err
    assert expected in err
    assert nothing_runs == []


def test_idea_contradicting_the_template_exits_2_saying_what_differs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], nothing_runs: list[str]) -> None:
    root = copy_toy(tmp_path)
    idea = root / "ideas" / "toy_idea.json"
    fields = json.loads(idea.read_text())
    fields["requires"] = {"models": ["pythia-70m"]}
    idea.write_text(json.dumps(fields))
    err = _refused(capsys, tmp_path, ["--idea", "toy_idea"], tmp_path / "templates")
    assert "does not fit template 'toy_template'" in err
    assert "pythia-70m" in err and "quadratic" in err
    assert nothing_runs == []


def test_unknown_preset_exits_2_before_anything_is_created(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], nothing_runs: list[str]) -> None:
    err = _refused(capsys, tmp_path, ["--idea", "toy_idea", "--preset", "huge"])
    assert "preset" in err and "huge" in err
    assert nothing_runs == []


def test_resume_of_a_folder_that_is_no_run_directory_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], nothing_runs: list[str]) -> None:
    folder = tmp_path / "not_a_run"
    folder.mkdir()
    code = launch.main(["--resume", str(folder), "--quiet"])
    assert code == 2
    assert "not a run directory" in capsys.readouterr().err
    assert list(folder.iterdir()) == []
    assert nothing_runs == []



# --- a broken template -----------------------------------------------------------------------

@pytest.mark.slow
def test_failing_baseline_exits_3_with_the_error_tail_and_asks_no_llm(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine with no git identity, as a fresh GPU box would be.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = copy_toy(tmp_path)
    script = root / "experiment.py"
    script.write_text(script.read_text().replace(
        "    cfg = Config()\n", "    cfg = Config()\n    raise KeyError('momentum_beta')\n"))
    runs = tmp_path / "runs"
    with FakeLLM([Reply("ok")]) as srv:
        code = launch.main(["--idea", "toy_idea", "--templates-dir", str(tmp_path / "templates"),
                            "--runs-dir", str(runs), "--model", "openai/test-model",
                            "--api-base", srv.base_url, "--quiet"])
        # only the one-token check of the key at launch; nobody asked to fix the template
        assert [r["max_tokens"] for r in srv.requests] == [1], "the LLM was asked to fix a broken template"
    err = capsys.readouterr().err
    assert code == 3, err
    assert "KeyError: 'momentum_beta'" in err
    assert "baseline" in err
    (run_dir,) = [p for p in runs.iterdir() if p.name != ".baseline-cache"]
    stopped = [e for e in read(run_dir / JOURNAL_NAME).events if e.kind == "launch.stopped"]
    assert stopped and stopped[-1].data["exit_code"] == 3
