"""The baseline: the unmodified template run once as run_0 and committed, reused from the cache
when template, preset and harness are identical, and a hard stop (exit 3) when it fails."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from agent import baseline, ideas
from agent import template as template_mod
from agent.config import LaunchConfig
from agent.context import RunContext
from agent.errors import TemplateError
from agent.journal import JOURNAL_NAME, Journal, kinds
from agent.progress import Console
from agent.workspace import Workspace

TOY = Path(__file__).parent / "fixtures" / "templates" / "toy_template"
# Gradient descent on x^2 from x0 = 5 with lr 0.1: x_k = 5 * 0.8^k, loss_k = 25 * 0.64^k.
EXPECTED_FINAL_LOSS = 25 * 0.64**50  # ~5.1e-9 after 50 steps
EXPECTED_STEPS_TO_TOL = 23  # first k with 25 * 0.64^k < 1e-3


def counting_template(tmp_path: Path, counter: Path, *, crash: str | None = None) -> Path:
    """A copy of the toy template whose experiment appends a line to `counter` each time it runs."""
    root = tmp_path / "templates" / "toy_template"
    shutil.copytree(TOY, root)
    script = root / "experiment.py"
    extra = f"    open({str(counter)!r}, 'a').write('ran\\n')\n"
    if crash:
        extra += f"    print('loading data...', flush=True)\n    raise RuntimeError({crash!r})\n"
    text = script.read_text().replace("def main() -> None:\n", "def main() -> None:\n" + extra)
    assert extra in text
    script.write_text(text)
    return root


def make_ctx(root: Path, runs_dir: Path, preset: str | None = None) -> RunContext:
    template = template_mod.load(root)
    idea = ideas.load(root / "ideas" / "toy_idea.json")
    ws = Workspace.create(runs_dir, idea.name, template.root, idea.fields)
    journal = Journal(ws.root / JOURNAL_NAME)
    config = LaunchConfig(idea=idea.name, runs_dir=str(runs_dir), preset=preset, quiet=True)
    # llm_factory=None: the baseline must never need a model.
    return RunContext(ws, journal, template, idea, config, Console(quiet=True), "none", preset)


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def _tracked(ctx: RunContext) -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ctx.ws.root, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_unmodified_template_runs_once_as_run_0_and_is_committed(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    ctx = make_ctx(counting_template(tmp_path, counter), tmp_path / "runs")
    setup = ctx.ws.head()

    baseline.ensure(ctx)

    assert _runs(counter) == 1
    info = json.loads((ctx.ws.root / "run_0" / "final_info.json").read_text())
    assert info["metrics"]["final_loss"] == pytest.approx(EXPECTED_FINAL_LOSS, rel=1e-6)
    assert info["metrics"]["steps_to_tol"] == EXPECTED_STEPS_TO_TOL
    assert info["code"]["commit"] == setup, "run_0 ran the setup commit, unmodified"
    assert "run_0/final_info.json" in _tracked(ctx)
    assert not ctx.ws.is_dirty()
    recorded = ctx.find("run.recorded", run=0)
    assert recorded is not None and recorded.data["status"] == "ok" and recorded.data["stage"] == "baseline"
    assert recorded.data["sha"] in [c.sha for c in ctx.ws.history()]
    assert "## Run 0 (baseline)" in (ctx.ws.root / "notes.txt").read_text()


def test_ensure_again_in_the_same_run_does_not_rerun_the_baseline(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    ctx = make_ctx(counting_template(tmp_path, counter), tmp_path / "runs")
    baseline.ensure(ctx)
    head = ctx.ws.head()
    baseline.ensure(ctx)  # what a resume does
    assert _runs(counter) == 1
    assert ctx.ws.head() == head
    assert kinds(ctx.journal.events()).count("run.started") == 1


def test_second_launch_with_identical_template_and_preset_reuses_the_cached_baseline(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    root = counting_template(tmp_path, counter)
    first = make_ctx(root, tmp_path / "runs")
    baseline.ensure(first)
    second = make_ctx(root, tmp_path / "runs")

    baseline.ensure(second)

    assert _runs(counter) == 1, "the experiment ran again"
    cached = second.find("baseline.cached")
    assert cached is not None
    assert cached.data["key"] == baseline.cache_key(root, None, [0])
    assert "run.started" not in kinds(second.journal.events())
    a = json.loads((first.ws.root / "run_0" / "final_info.json").read_text())
    b = json.loads((second.ws.root / "run_0" / "final_info.json").read_text())
    assert b["metrics"] == a["metrics"]
    assert "run_0/final_info.json" in _tracked(second)
    restore = next(c for c in second.ws.history() if c.sha == cached.data["sha"])
    assert "run_0/final_info.json" in restore.files
    # The reused record points at a commit of this run's own repository, not the first one's.
    assert b["code"]["commit"] == second.ws.history()[0].sha
    assert b["code"]["cached_from_commit"] == a["code"]["commit"]
    assert (second.ws.root / "run_0" / "cached_from.json").is_file()


def test_changed_template_or_preset_runs_the_baseline_again(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    root = counting_template(tmp_path, counter)
    baseline.ensure(make_ctx(root, tmp_path / "runs"))
    key = baseline.cache_key(root, None)
    assert baseline.cache_key(root, "tiny") != key
    (root / "ideas" / "another_idea.json").write_text("{}")
    assert baseline.cache_key(root, None) == key, "adding an idea does not change the baseline"

    (root / "experiment.py").write_text((root / "experiment.py").read_text() + "\n# changed\n")
    assert baseline.cache_key(root, None) != key
    ctx = make_ctx(root, tmp_path / "runs")
    baseline.ensure(ctx)
    assert _runs(counter) == 2
    assert ctx.find("baseline.cached") is None


def test_two_launches_at_once_compute_one_baseline_and_the_other_waits_for_it(tmp_path: Path) -> None:
    import threading

    counter = tmp_path / "count.txt"
    root = counting_template(tmp_path, counter)
    script = root / "experiment.py"
    script.write_text(script.read_text().replace(
        "    open(", "    __import__('time').sleep(1.5)  # long enough for the other launch to arrive\n    open(", 1))
    contexts = [make_ctx(root, tmp_path / "runs") for _ in range(2)]
    errors: list[BaseException] = []

    def go(ctx: RunContext) -> None:
        try:
            baseline.ensure(ctx)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(c,)) for c in contexts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert _runs(counter) == 1, "both launches ran the baseline"
    waited = [c for c in contexts if c.find("baseline.cache_wait") is not None]
    assert len(waited) == 1 and waited[0].find("baseline.cached") is not None
    infos = [json.loads((c.ws.root / "run_0" / "final_info.json").read_text()) for c in contexts]
    assert infos[0]["metrics"] == infos[1]["metrics"]
    assert not list((tmp_path / "runs" / baseline.CACHE_DIR).glob("*.tmp*")), "no temporary copy left"


def test_the_cache_key_includes_the_device_torch_and_the_dense_matmul_switch(tmp_path: Path, monkeypatch) -> None:
    from importlib import metadata

    import harness.machine

    root = counting_template(tmp_path, tmp_path / "count.txt")
    key = baseline.cache_key(root, "tiny", [0, 1, 2])
    monkeypatch.setenv("HARNESS_DENSE_MATMUL", "1")
    dense = baseline.cache_key(root, "tiny", [0, 1, 2])
    monkeypatch.delenv("HARNESS_DENSE_MATMUL")
    monkeypatch.setattr(harness.machine, "cuda_present", lambda: True)
    gpu = baseline.cache_key(root, "tiny", [0, 1, 2])
    monkeypatch.undo()
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "9.9.9" if name == "torch" else real(name))
    other_torch = baseline.cache_key(root, "tiny", [0, 1, 2])
    assert len({key, dense, gpu, other_torch}) == 4
    monkeypatch.undo()
    assert baseline.cache_key(root, "tiny", [0, 1, 2]) == key


def test_failing_baseline_stops_with_template_error_carrying_the_tail(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    root = counting_template(tmp_path, counter, crash="toy template is broken: bad loss 1234")
    ctx = make_ctx(root, tmp_path / "runs")

    with pytest.raises(TemplateError) as info:
        baseline.ensure(ctx)

    assert info.value.exit_code == 3
    message = str(info.value)
    assert "RuntimeError: toy template is broken: bad loss 1234" in message
    assert "baseline" in message and "exit code 1" in message
    assert _runs(counter) == 1
    assert not list((tmp_path / "runs" / baseline.CACHE_DIR).glob("*/final_info.json")), "nothing cached"
    recorded = ctx.find("run.recorded", run=0)
    assert recorded is not None and recorded.data["status"] == "failed"


def test_baseline_that_writes_no_results_is_a_template_error(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    root = counting_template(tmp_path, counter)
    script = root / "experiment.py"
    text = script.read_text()
    assert "    write_final_info(" in text
    script.write_text(text.replace("    write_final_info(", "    0 and write_final_info("))
    with pytest.raises(TemplateError, match="final_info.json"):
        baseline.ensure(make_ctx(root, tmp_path / "runs"))
