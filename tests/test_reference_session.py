"""The orthogonal_sae reference session against the template it edits, without running it.

The main job replays this session; its SEARCH sections quote templates/sae_variants. A change
to the template that breaks a quote would show up only in the slow main-job test (as an edit
retry the replay cannot answer), so here every experiment- and plot-stage reply is applied in
order to a copy of the template, and the code it leaves is trained for a few steps.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import torch

from agent.edits.apply import EditPolicy, apply_blocks
from agent.edits.lint import lint
from agent.edits.parse import parse
from agent.llm.replay import load_recording

TEMPLATE = Path(__file__).parents[1] / "templates" / "sae_variants"
SESSION = TEMPLATE / "ideas" / "orthogonal_sae.session.jsonl"
EDITABLE = frozenset({"experiment.py", "plot.py", "notes.txt", "latex/template.tex"})


def _apply_session(root: Path) -> list[str]:
    """Apply the experiment and plot replies in order; return each reply's prompt kind."""
    policy = EditPolicy(root=root, editable=EDITABLE)
    kinds = []
    for reply in load_recording(SESSION).replies:
        if reply.stage not in ("experiment", "plot"):
            continue
        parsed = parse(reply.text)
        assert parsed.problems == [], (reply.prompt_kind, parsed.problems)
        report = apply_blocks(parsed.blocks, policy)
        assert report.clean, (reply.prompt_kind, report.failed, report.refused)
        inexact = [(a.path, a.line, a.kind) for a in report.applied if a.kind != "exact"]
        assert inexact == [], f"{reply.prompt_kind}: SEARCH no longer quotes the file: {inexact}"
        assert lint(root, report.changed_files) == []
        kinds.append(reply.prompt_kind)
    return kinds


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("session_experiment", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_edit_of_the_session_quotes_the_template_exactly(tmp_path: Path) -> None:
    root = tmp_path / "run"
    shutil.copytree(TEMPLATE, root, ignore=shutil.ignore_patterns("ideas", "__pycache__"))
    kinds = _apply_session(root)
    assert kinds[0] == "experiment.plan" and kinds.count("experiment.results") >= 4
    notes = (root / "notes.txt").read_text(encoding="utf-8")
    for run in (1, 2, 3, 4):
        assert f"## Analysis of run {run}" in notes


def test_the_sessions_orthogonal_sae_trains_and_its_group_biases_apply(tmp_path: Path) -> None:
    root = tmp_path / "run"
    shutil.copytree(TEMPLATE, root, ignore=shutil.ignore_patterns("ideas", "__pycache__"))
    _apply_session(root)
    mod = _module(root / "experiment.py")
    cfg = mod.Config(n_groups=4, ortho_penalty_per_dim=0.25, group_update_every=5,
                     ortho_sample=64)
    torch.manual_seed(0)
    sae = mod.CustomSAE(16, 64, cfg.activation, cfg.k, cfg.n_groups, cfg.group_bias)
    trainer = mod.CustomTrainer(sae, 40, 1e-2, 0.01, 5, 0.2, 0.1, cfg)
    x = torch.randn(256, 16)
    first = trainer.update(0, x)
    for step in range(1, 40):
        last = trainer.update(step, x)
    assert last["recon"] < 0.5 * first["recon"]
    assert last["ortho"] < first["ortho"]
    assert sorted(torch.bincount(sae.groups(), minlength=4).tolist()) == [16, 16, 16, 16]
    with torch.no_grad():  # the group offsets reach the reconstruction the harness measures
        before = sae(x)
        sae.b_group.add_(1.0)
        assert not torch.allclose(sae(x), before)


def test_the_session_ends_with_one_valid_review_that_addresses_no_finding() -> None:
    """The main job's integrity report is clean, so its review's `Integrity` is empty; a form
    the review stage would refuse would make the replay run out of replies."""
    from agent.review import check

    replies = load_recording(SESSION).replies
    reviews = [r for r in replies if r.stage == "review"]
    assert len(reviews) == 1 and replies[-1] is reviews[0] and reviews[0].prompt_kind == "review.paper"
    checked = check(reviews[0].text, [])
    assert checked.errors == () and checked.review is not None
    assert checked.review.form["Integrity"] == [] and checked.review.decision in ("Accept", "Reject")
