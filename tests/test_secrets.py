"""No secret is ever committed: before each commit in a run directory, the files git would store
are scanned for the values of the orchestrator's credentials (raw and base64) and for the
shapes of common keys; a file that holds one is kept out of history and reported by name."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from agent import ideas
from agent import template as template_mod
from agent.config import LaunchConfig
from agent.context import RunContext
from agent.journal import JOURNAL_NAME, Journal, read
from agent.progress import Console
from agent.secrets import SecretScanner
from agent.workspace import Workspace
from tests.e2e_helpers import (
    PLAN,
    TOY_KINDS,
    TOY_SESSION,
    TOY_TEMPLATES,
    block,
    cli,
    only_run_dir,
    write_session,
)

TOY = TOY_TEMPLATES / "toy_template"
IDEA = json.loads((TOY / "ideas" / "toy_idea.json").read_text(encoding="utf-8"))

# Planted credentials: none is real; each has the length and randomness of one.
CREDENTIALS = {
    "GH_PAT": "Zq8rT3vLw9xK2mNpQ7sD",
    "OPENAI_API_KEY": "sk-proj-T3stOnlyQ9w8e7r6t5y4u3i2o1pA",
    "HF_TOKEN": "hf_T3stOnlyAbCdEfGhIjKlMnOpQrStUvWx",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYT3STONLY",
    "SLACK_WEBHOOK": "https://hooks.example.invalid/T3stOnly/B0000",
    "DB_PASSWORD": "correct-Horse-7-battery",
    "PIP_INDEX_URL": "https://agent:Pl4nted-index-pass@pypi.example.invalid/simple",
}
HARMLESS = {"CUDA_VISIBLE_DEVICES": "0", "TOKENIZERS_PARALLELISM": "false", "SOME_AUTH_MODE": "disabled",
            "BUILD_KEY": "20250101", "PASS": "1234", "LANG": "C.UTF-8", "EDITOR": "vim-nox-tiny"}
KEY_SHAPES = {
    "openai_key": "sk-proj-" + "Ab1" * 10,
    "anthropic_key": "sk-ant-api03-" + "Xy9" * 10,
    "github_token": "ghp_" + "a1B2" * 9,
    "github_pat": "github_pat_" + "11AbCdEf" * 4,
    "aws_access_key_id": "AKIA" + "Q7RT" * 4,
    "huggingface_token": "hf_" + "aB3" * 11,
    "slack_token": "xoxb-1234567890-abcdefABCDEF",
    "google_api_key": "AIza" + "Sy0_" * 8 + "abc",
    "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----",
}


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


def _ws(tmp_path: Path, env: dict[str, str], template: Path = TOY) -> Workspace:
    return Workspace.create(tmp_path / "runs", "toy_idea", template, IDEA, env=env)


def _git(ws: Workspace, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws.root, capture_output=True, text=True, check=True).stdout


def _all_objects(ws: Workspace) -> bytes:
    """Every object git stored, reachable or not, uncompressed."""
    return subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=ws.root,
                          capture_output=True, check=True).stdout


def _write_run(ws: Workspace, leak: bytes | str) -> None:
    (ws.root / "run_1").mkdir()
    (ws.root / "run_1" / "final_info.json").write_text('{"metrics": {"final_loss": 0.1}}\n')
    data = leak.encode() if isinstance(leak, str) else leak
    (ws.root / "run_1" / "env_seen.txt").write_bytes(data)


@pytest.mark.parametrize("name", sorted(CREDENTIALS))
def test_a_credential_value_in_a_run_file_never_enters_history(tmp_path: Path, name: str) -> None:
    ws = _ws(tmp_path, {**CREDENTIALS, **HARMLESS})
    value = CREDENTIALS[name]
    _write_run(ws, f"PATH=/usr/bin\nLANG=C\n{name}={value}\n")

    sha = ws.commit(["run_1"], "experiment: run 1 results", step="experiment/run1/attempt1")

    assert sha is not None, "the rest of the run is committed"
    assert set(_git(ws, "ls-files", "run_1").split()) == {"run_1/final_info.json"}
    assert not (ws.root / "run_1" / "env_seen.txt").exists()
    assert value not in _git(ws, "log", "-p", "--all")
    assert value.encode() not in _all_objects(ws), "git never stored it, not even unreachable"
    assert not ws.is_dirty()
    [blocked] = ws.blocked
    assert blocked.path == "run_1/env_seen.txt" and not blocked.restored
    assert blocked.step == "experiment/run1/attempt1"
    assert (name, "value", 3) in {(f.source, f.how, f.line) for f in blocked.findings}
    assert value not in repr(blocked)


@pytest.mark.parametrize("pattern", sorted(KEY_SHAPES))
def test_a_key_shape_is_found_with_no_variable_set(tmp_path: Path, pattern: str) -> None:
    ws = _ws(tmp_path, {})
    _write_run(ws, f"config:\n  key: {KEY_SHAPES[pattern]}\n")
    assert ws.commit(["run_1"], "experiment: run 1 results") is not None
    [blocked] = ws.blocked
    assert [(f.source, f.how, f.line) for f in blocked.findings] == [(pattern, "pattern", 2)]
    assert KEY_SHAPES[pattern] not in _git(ws, "log", "-p", "--all")
    assert blocked.redacted and _git(ws, "show", "HEAD:run_1/env_seen.txt") == f"config:\n  key: [REDACTED {pattern}]\n"


@pytest.mark.parametrize("prefix", ["", "a", "ab"])
def test_the_base64_of_a_value_is_found_at_every_alignment(tmp_path: Path, prefix: str) -> None:
    ws = _ws(tmp_path, {"GH_PAT": CREDENTIALS["GH_PAT"]})
    dump = f"{prefix}HOME=/root\nGH_PAT={CREDENTIALS['GH_PAT']}\nLANG=C\n".encode()
    _write_run(ws, base64.b64encode(dump))
    ws.commit(["run_1"], "experiment: run 1 results")
    [blocked] = ws.blocked
    assert [(f.source, f.how) for f in blocked.findings] == [("GH_PAT", "base64")]


def test_a_binary_file_holding_a_value_is_found(tmp_path: Path) -> None:
    ws = _ws(tmp_path, {"GH_PAT": CREDENTIALS["GH_PAT"]})
    _write_run(ws, b"\x89PNG\r\n\x1a\n\0\0\0" + CREDENTIALS["GH_PAT"].encode() + b"\0\xff" * 100)
    ws.commit(["run_1"], "experiment: run 1 results")
    [blocked] = ws.blocked
    assert [(f.source, f.how, f.line) for f in blocked.findings] == [("GH_PAT", "value", None)]


def test_short_and_harmless_values_never_block(tmp_path: Path, home: Path) -> None:
    env = {**HARMLESS, "HOME": str(home), "SSH_AUTH_SOCK": str(home)}
    assert SecretScanner.from_env(env).names() == []
    ws = _ws(tmp_path, env)
    text = "\n".join(f"{k}={v}" for k, v in env.items())
    _write_run(ws, text + "\nrisk-adjusted-returns-for-the-2nd-quarter and task-specific-finetuning-v2\n")
    assert ws.commit(["run_1"], "experiment: run 1 results") is not None
    assert ws.blocked == []
    assert "run_1/env_seen.txt" in _git(ws, "ls-files").split()


def test_a_file_git_ignores_is_not_scanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _ws(tmp_path, {"GH_PAT": CREDENTIALS["GH_PAT"]})
    _write_run(ws, "clean\n")
    (ws.root / "run_1" / "model.pt").write_text(CREDENTIALS["GH_PAT"])  # a checkpoint: ignored
    scanned: list[str] = []
    scan = ws.scanner.scan_file
    monkeypatch.setattr(ws.scanner, "scan_file", lambda root, rel: scanned.append(rel) or scan(root, rel))
    ws.commit(["run_1"], "experiment: run 1 results")
    assert sorted(scanned) == ["run_1/env_seen.txt", "run_1/final_info.json"]
    assert (ws.root / "run_1" / "model.pt").exists() and ws.blocked == []


def test_a_tracked_file_edited_to_hold_a_secret_is_put_back_as_committed(tmp_path: Path) -> None:
    ws = _ws(tmp_path, {"GH_PAT": CREDENTIALS["GH_PAT"]})
    script = ws.root / "experiment.py"
    original = script.read_text()
    script.write_text(original + f"TOKEN = {CREDENTIALS['GH_PAT']!r}\n")
    assert ws.commit(["experiment.py"], "experiment: edit experiment.py") is None
    assert script.read_text() == original and not ws.is_dirty()
    [blocked] = ws.blocked
    assert blocked.restored and blocked.step == "experiment: edit experiment.py"


def test_a_template_file_holding_a_key_shape_is_committed_redacted(tmp_path: Path) -> None:
    """A key-shaped string that is no credential of this launch never costs the record: the
    file is committed with the match replaced, and the finding reported."""
    template = tmp_path / "templates" / "toy_template"
    shutil.copytree(TOY, template)
    (template / "deploy.txt").write_text(f"region = eu\nkey = {KEY_SHAPES['aws_access_key_id']}\nport = 1\n")
    ws = _ws(tmp_path, {}, template)
    assert _git(ws, "show", "HEAD:deploy.txt") == "region = eu\nkey = [REDACTED aws_access_key_id]\nport = 1\n"
    assert KEY_SHAPES["aws_access_key_id"] not in _git(ws, "log", "-p", "--all")
    assert "experiment.py" in _git(ws, "ls-files").split()
    [blocked] = ws.blocked
    assert blocked.path == "deploy.txt" and blocked.step.startswith("setup: ") and blocked.redacted


def test_a_value_cut_by_a_chunk_border_is_found_with_its_line() -> None:
    value = CREDENTIALS["DB_PASSWORD"].encode()
    scanner = SecretScanner.from_env({"DB_PASSWORD": value.decode()})
    chunks = [b"x\n" * 5000, b"y\n" * 5000 + value[:5], value[5:] + b"\n" + b"z\n" * 5000]
    [finding] = scanner.scan_chunks("big.log", chunks)
    assert (finding.source, finding.how, finding.line) == ("DB_PASSWORD", "value", 10001)


def test_blocked_files_are_journaled_and_warned_through_the_run_context(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    template_dir = tmp_path / "templates" / "toy_template"
    shutil.copytree(TOY, template_dir)
    (template_dir / "deploy.txt").write_text(f"key = {KEY_SHAPES['aws_access_key_id']}\n")
    template, idea = template_mod.load(template_dir), ideas.load(template_dir / "ideas" / "toy_idea.json")
    ws = Workspace.create(tmp_path / "runs", idea.name, template.root, idea.fields, env=CREDENTIALS)
    warnings: list[str] = []
    console = Console(quiet=True)
    monkeypatch.setattr(console, "warn", warnings.append)
    ctx = RunContext(ws, Journal(ws.root / JOURNAL_NAME), template, idea,
                     LaunchConfig(idea=idea.name, quiet=True), console, "none", None)
    _write_run(ws, f"GH_PAT={CREDENTIALS['GH_PAT']}\n")
    ctx.ws.commit(["run_1"], "experiment: run 1 results", step="experiment/run1/attempt1")

    events = [e.data for e in ctx.journal.of_kind("secret.blocked")]
    assert [(e["path"], e["step"], e["found"][0]["source"]) for e in events] == [
        ("deploy.txt", ws.history()[0].message, "aws_access_key_id"),
        ("run_1/env_seen.txt", "experiment/run1/attempt1", "GH_PAT")]
    assert len(warnings) == 2 and "GH_PAT on line 1" in warnings[1] and "deleted" in warnings[1]
    assert ws.blocked == [], "reported as they happen, none left waiting"
    assert CREDENTIALS["GH_PAT"] not in (ws.root / JOURNAL_NAME).read_text() + "".join(warnings)


# --- end to end ----------------------------------------------------------------------------------

LEAK = block("experiment.py", "    out_dir.mkdir(parents=True, exist_ok=True)\n",
             "    out_dir.mkdir(parents=True, exist_ok=True)\n"
             "    dump = '\\n'.join(f'{k}={v}' for k, v in os.environ.items())\n"
             "    (out_dir / 'env_seen.txt').write_text(dump + '\\n' + 'AKIA' + 'Q7RT' * 4 + '\\n')\n"
             "    (out_dir / 'env.b64').write_bytes(__import__('base64').b64encode(dump.encode()))\n")


@pytest.mark.slow
def test_a_replayed_experiment_that_dumps_its_environment_commits_no_secret(tmp_path: Path) -> None:
    # GH_PAT is kept from the child by the runner; the other two pass its environment allowlist
    # (by prefix), one under a credential's name, one under an innocuous name with a key's shape.
    planted = {"GH_PAT": CREDENTIALS["GH_PAT"], "HARNESS_HUB_TOKEN": "T3stOnly-hub-Zq8rT3vLw9",
               "EXPERIMENT_LABEL": "sk-proj-T3stOnlyLabel0123456789"}
    session = write_session(tmp_path / "session.jsonl", [PLAN + LEAK, *TOY_SESSION[1:]], TOY_KINDS)
    proc = cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--max-runs", "3",
               "--stages", "experiment", "--quiet", "--model", f"replay:{session}",
               "--runs-dir", str(tmp_path / "runs"), env=planted)
    assert proc.returncode == 0, proc.stderr + proc.stdout

    run_dir = only_run_dir(tmp_path / "runs")
    ws = Workspace(run_dir, env={})
    events = [e.data for e in read(run_dir / JOURNAL_NAME).events if e.kind == "secret.blocked"]
    assert {e["path"] for e in events} >= {"run_1/seed_0/env_seen.txt", "run_2/seed_0/env_seen.txt"}
    assert "aws_access_key_id" in {f["source"] for e in events for f in e["found"]}
    assert "warning:" in proc.stdout + proc.stderr
    assert (run_dir / "run_2" / "final_info.json").exists(), "the runs themselves went on"
    history = _git(ws, "log", "-p", "--all")
    objects = _all_objects(ws)
    files = b"".join(p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and ".git" not in p.parts)
    decoded = b"".join(base64.b64decode(p.read_bytes()) for p in run_dir.rglob("env.b64"))
    for value in [*planted.values(), "AKIA" + "Q7RT" * 4]:
        assert value not in history
        assert value.encode() not in objects + files + decoded
    blocked_found = {f["source"] for e in events for f in e["found"]}
    assert blocked_found <= set(planted) | {"aws_access_key_id", "openai_key"}


@pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
                    reason="pdflatex/pdftotext not installed")
def test_a_value_typeset_in_a_compressed_pdf_is_found_as_a_reader_sees_it(tmp_path: Path) -> None:
    """A PDF's page streams are compressed: the value is not among its bytes, only in its text
    (here also cut by a line break), so the scan reads the text as pdftotext gives it."""
    value = CREDENTIALS["GH_PAT"]
    latex = tmp_path / "tex"
    latex.mkdir()
    (latex / "p.tex").write_text("\\documentclass{article}\\begin{document}\\noindent Split: "
                                 f"\\texttt{{{value[:12]}}}\\\\\\texttt{{{value[12:]}}}\\end{{document}}\n")
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "p.tex"], cwd=latex, capture_output=True, check=True)
    pdf = (latex / "p.pdf").read_bytes()
    assert value.encode() not in pdf  # compressed: a scan of the bytes alone would pass it
    ws = _ws(tmp_path, {"GH_PAT": value})
    (ws.root / "paper.pdf").write_bytes(pdf)
    ws.commit(["paper.pdf"], "writeup: paper compiled")
    [blocked] = ws.blocked
    assert blocked.path == "paper.pdf" and [(f.source, f.how) for f in blocked.findings] == [("GH_PAT", "value")]
    assert "paper.pdf" not in _git(ws, "ls-files")


def _segment(ws: Workspace, lines: list[str]) -> str:
    """A journal segment as the commits carry them, written straight into the history folder."""
    from agent.journal import HISTORY_DIR

    rel = f"{HISTORY_DIR}/000001-000003.jsonl"
    (ws.root / rel).parent.mkdir(exist_ok=True)
    (ws.root / rel).write_text("".join(line + "\n" for line in lines))
    return rel


@pytest.mark.parametrize("leak", ["value", "shape"])
def test_a_secret_in_a_journal_segment_is_redacted_and_the_segment_kept(tmp_path: Path, leak: str) -> None:
    """The journal's segments are the run's record: a credential value or a model's example of
    a key in one reply is replaced, every event of the segment stays."""
    secret = CREDENTIALS["GH_PAT"] if leak == "value" else KEY_SHAPES["openai_key"]
    ws = _ws(tmp_path, {"GH_PAT": CREDENTIALS["GH_PAT"]})
    events = [json.dumps({"seq": 1, "kind": "llm.request", "data": {"text": "plan the run"}}),
              json.dumps({"seq": 2, "kind": "llm.response", "data": {"text": f"a key looks like {secret}."}}),
              json.dumps({"seq": 3, "kind": "run.started", "data": {"run": 1}})]
    rel = _segment(ws, events)
    ws.commit([rel], "experiment: a turn")
    committed = _git(ws, "show", f"HEAD:{rel}").splitlines()
    assert len(committed) == 3 and [json.loads(line)["seq"] for line in committed] == [1, 2, 3]
    assert secret not in _git(ws, "log", "-p", "--all") and "[REDACTED " in committed[1]
    [blocked] = ws.blocked
    assert blocked.path == rel and blocked.redacted and not blocked.restored


@pytest.mark.slow
def test_a_key_shaped_example_in_a_reply_costs_no_event_of_the_history(tmp_path: Path) -> None:
    """A model that writes what a key looks like in its plan: the reply is committed with the
    example redacted, and a clone of the run directory holds every event the live journal has
    (before, one such string blocked every later segment of the journal)."""
    example = KEY_SHAPES["openai_key"]
    plan = PLAN.replace("Plan:\n", f"Plan (keys look like {example}; none is needed here):\n", 1)
    session = write_session(tmp_path / "session.jsonl", [plan, *TOY_SESSION[1:]], TOY_KINDS)
    proc = cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--max-runs", "3",
               "--stages", "experiment", "--quiet", "--model", f"replay:{session}",
               "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run_dir = only_run_dir(tmp_path / "runs")
    live = read(run_dir / JOURNAL_NAME).events
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(run_dir), str(clone)], check=True)
    from agent.journal import read_run

    kept = read_run(clone).events
    assert [e.seq for e in kept] == [e.seq for e in live if e.seq <= kept[-1].seq]
    assert kept[-1].seq >= live[-1].seq - 5  # only the events after the last commit are not carried
    replies = [e.data["text"] for e in kept if e.kind == "llm.response"]
    assert len(replies) == len(TOY_SESSION) and "[REDACTED openai_key]" in replies[0]
    assert example not in _git(Workspace(run_dir, env={}), "log", "-p", "--all")
    assert any(e.kind == "secret.blocked" and e.data["redacted"] for e in live)


# --- size ----------------------------------------------------------------------------------------

def test_a_file_over_the_size_limit_stays_on_disk_out_of_the_history(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_SCIENTIST_MAX_FILE_MB", "1")
    ws = _ws(tmp_path, {})
    _write_run(ws, "small\n")
    (ws.root / "run_1" / "acts [1].dat").write_bytes(b"\1" * (2 * 2**20))
    ws.commit(["run_1"], "experiment: run 1 results")
    tracked = _git(ws, "ls-files").split("\n")
    assert "run_1/env_seen.txt" in tracked and "run_1/acts [1].dat" not in tracked
    assert (ws.root / "run_1" / "acts [1].dat").stat().st_size == 2 * 2**20  # left on disk
    assert not ws.is_dirty()  # and ignored from then on: a resume finds a clean tree
    (ws.root / "run_1" / "acts [1].dat").write_bytes(b"\2" * (3 * 2**20))
    assert ws.commit(["run_1"], "experiment: again") is None
    [blocked, *_] = ws.blocked
    assert blocked.path == "run_1/acts [1].dat" and blocked.size == 2 * 2**20 and blocked.findings == ()
    assert "over the 1 MB limit" in blocked.fate()


@pytest.mark.slow
def test_an_experiment_writing_a_large_file_through_the_loop_is_reported_and_resumable(tmp_path: Path) -> None:
    big = block("experiment.py", "    out_dir.mkdir(parents=True, exist_ok=True)\n",
                "    out_dir.mkdir(parents=True, exist_ok=True)\n"
                "    (out_dir / 'activations.dat').write_bytes(bytes(3 * 2**20))\n")
    session = write_session(tmp_path / "session.jsonl", [PLAN + big, *TOY_SESSION[1:]], TOY_KINDS)
    args = ["--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--max-runs", "3",
            "--stages", "experiment", "--quiet", "--model", f"replay:{session}", "--runs-dir", str(tmp_path / "runs")]
    proc = cli(*args, env={"TRUSTED_SCIENTIST_MAX_FILE_MB": "1"})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run_dir = only_run_dir(tmp_path / "runs")
    events = [e.data for e in read(run_dir / JOURNAL_NAME).events if e.kind == "file.too_large"]
    assert {e["path"] for e in events} >= {"run_1/seed_0/activations.dat", "run_2/seed_0/activations.dat"}
    ws = Workspace(run_dir, env={})
    assert "activations.dat" not in _git(ws, "log", "--all", "--name-only") and not ws.is_dirty()
    from agent import report

    html = report.write(run_dir).read_text()
    assert "larger than the limit a commit stores" in html and "run_1/seed_0/activations.dat" in html
    again = cli("--resume", str(run_dir), "--stages", "experiment", "--quiet", env={"TRUSTED_SCIENTIST_MAX_FILE_MB": "1"})
    assert again.returncode == 0, again.stderr + again.stdout
