"""`python -m agent.template check TEMPLATE`: one plain line per check, and an exit code (0 all
pass, 1 something missing or failed, 2 usage). On the toy template (no trusted evaluator: it
passes and says its runs will be marked untrusted), on broken copies of it (each failure named,
with what to do), and on the tiny presets of sae_variants and 2d_diffusion (slow: each trains and
evaluates a baseline)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent import template_check
from tests.conftest import REPO
from tests.e2e_helpers import TOY_TEMPLATES

TOY = TOY_TEMPLATES / "toy_template"


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = template_check.main([*args])
    out = capsys.readouterr()
    return code, out.out + out.err


def lines(out: str) -> dict[str, str]:
    """check name -> its line (verdict and detail)."""
    found = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] in ("ok", "missing", "failed", "untrusted", "skipped"):
            found[parts[1].rstrip(":")] = f"{parts[0]} {parts[2]}"
    return found


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A copy of the toy template (its folder keeps the template's name)."""
    return Path(shutil.copytree(TOY, tmp_path / "toy_template"))


def test_the_toy_passes_and_says_it_has_no_trusted_evaluator(capsys):
    code, out = run_check(capsys, str(TOY))
    found = lines(out)
    assert code == 0, out
    assert "no trusted evaluator: its runs will be marked untrusted in notes, paper and report" in out
    assert found["evaluator"].startswith("untrusted") and found["provenance"].startswith("untrusted")
    for name in ("template.toml", "files", "latex", "ideas", "baseline", "metrics", "gates", "figures"):
        assert found[name].startswith("ok"), (name, out)
    assert "python experiment.py --out_dir=run_0" in found["baseline"]
    assert out.rstrip().splitlines()[-1].startswith("The template runs, but without a trusted evaluator")


def test_quick_runs_nothing(toy, capsys):
    (toy / "experiment.py").write_text("raise SystemExit('must not run')\n")
    code, out = run_check(capsys, str(toy), "--quick")
    assert code == 0, out
    assert lines(out)["baseline"].startswith("skipped")


def test_the_cli_entry_point_is_agent_template_check():
    proc = subprocess.run([sys.executable, "-m", "agent.template", "check", str(TOY), "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok        ideas: 1 load and bind" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "agent.template", "lint", str(TOY)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_a_missing_experiment_is_named(toy, capsys):
    (toy / "experiment.py").unlink()
    code, out = run_check(capsys, str(toy))
    found = lines(out)
    assert code == 1
    assert found["template.toml"].startswith("failed") and "has no experiment.py" in found["template.toml"]
    assert found["files"].startswith("missing") and "experiment.py" in found["files"]
    assert found["baseline"].startswith("skipped")


def test_a_declared_metric_the_results_lack_is_named(toy, capsys):
    manifest = toy / "template.toml"
    manifest.write_text(manifest.read_text() + '\n[[metrics]]\nname = "wall_clock"\nlabel = "Wall clock"\n'
                        'direction = "lower"\n')
    code, out = run_check(capsys, str(toy))
    assert code == 1
    assert lines(out)["metrics"].startswith("failed") and "lack wall_clock" in lines(out)["metrics"]


def test_malformed_toml_is_a_failed_check_not_a_crash(toy, capsys):
    (toy / "template.toml").write_text('name = "toy_template"\nmetrics = [\n')
    code, out = run_check(capsys, str(toy))
    assert code == 1
    assert lines(out)["template.toml"].startswith("failed") and "not valid TOML" in out


def test_an_idea_bound_to_another_template_is_named(toy, capsys):
    idea = toy / "ideas" / "toy_idea.json"
    idea.write_text(json.dumps({**json.loads(idea.read_text()), "template": "sae_variants"}))
    code, out = run_check(capsys, str(toy), "--quick")
    assert code == 1
    found = lines(out)["ideas"]
    assert found.startswith("failed") and "toy_idea.json" in found and "sae_variants" in found


def test_an_idea_requiring_what_the_template_lacks_is_named(toy, capsys):
    idea = toy / "ideas" / "toy_idea.json"
    idea.write_text(json.dumps({**json.loads(idea.read_text()), "requires": {"models": ["gpt-5"]}}))
    code, out = run_check(capsys, str(toy), "--quick")
    assert code == 1 and "does not fit template 'toy_template'" in lines(out)["ideas"]


def test_a_crashing_experiment_is_named_with_its_stderr_tail(toy, capsys):
    source = (toy / "experiment.py").read_text()
    (toy / "experiment.py").write_text(source.replace("    cfg = Config()\n",
                                                      "    cfg = Config()\n    raise ValueError('lr went negative')\n"))
    code, out = run_check(capsys, str(toy))
    found = lines(out)
    assert code == 1
    assert found["baseline"].startswith("failed") and "exit code 1" in found["baseline"]
    assert "ValueError: lr went negative" in out
    assert "metrics" not in found  # nothing further is claimed about a run that did not finish


def test_missing_paper_skeleton_and_no_results(toy, capsys):
    (toy / "latex" / "references.bib").unlink()
    (toy / "experiment.py").write_text("print('trained, but wrote nothing')\n")
    code, out = run_check(capsys, str(toy))
    found = lines(out)
    assert code == 1
    assert found["latex"].startswith("missing") and "latex/references.bib" in found["latex"]
    assert found["final_info.json"].startswith("missing")


def test_usage_errors_exit_2(toy, capsys):
    assert run_check(capsys, str(toy), "--preset", "huge")[0] == 2
    assert run_check(capsys, str(toy.parent / "nowhere"))[0] == 2


@pytest.mark.slow
def test_sae_variants_tiny_passes_every_check(capsys):
    """The first template as a researcher would check it: its baseline trained, exported,
    evaluated by harness.sae.evaluator in the sandbox, gates and figures (about 2-3 minutes
    on 2 cores once the tiny model is cached)."""
    code, out = run_check(capsys, str(REPO / "templates" / "sae_variants"), "--preset", "tiny")
    found = lines(out)
    assert code == 0, out
    for name in ("template.toml", "files", "latex", "ideas", "evaluator", "caches", "baseline",
                 "exports", "provenance", "metrics", "gates", "figures"):
        assert found.get(name, "").startswith("ok"), (name, out)
    assert "Every check passes." in out


@pytest.mark.slow
def test_2d_diffusion_tiny_passes_every_check(capsys):
    """The second template: its four denoisers trained by hand, exported, evaluated by
    harness.diffusion.evaluator (which runs the sampler itself) in the sandbox; no cache to
    prepare (its contract has no PREPARE), so the check says nothing about caches."""
    code, out = run_check(capsys, str(REPO / "templates" / "2d_diffusion"), "--preset", "tiny")
    found = lines(out)
    assert code == 0, out
    for name in ("template.toml", "files", "latex", "ideas", "evaluator", "baseline", "exports",
                 "provenance", "metrics", "gates", "figures"):
        assert found.get(name, "").startswith("ok"), (name, out)
    assert "harness.diffusion.evaluator" in found["provenance"] and "caches" not in found
    assert "denoiser_spiral.pt2" in found["exports"]
