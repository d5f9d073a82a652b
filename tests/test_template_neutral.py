"""The orchestrator is template-neutral: nothing in `agent/` names a template's quantities.

Metric names, setting names, setup facts and the words papers use for them come from each
template's `template.toml` (and the records), never from the agent's code or prompts. This
test collects every template's quantities (its metrics, the keys of its setup facts and
vocabulary, the fields of its experiment's `Config`) and greps `agent/` for them.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from tests.conftest import REPO

GENERIC = frozenset({"k", "lr", "seed", "model", "tokens", "layer", "epochs", "dataset", "batch_size",
                     "activation", "steps", "loss", "device", "dtype", "out_dir", "learning_rate", "datasets"})
"""Words every ML experiment has: they name no template's quantity."""


def template_quantities(root: Path) -> set[str]:
    data = tomllib.loads((root / "template.toml").read_text(encoding="utf-8"))
    names = {m["name"] for m in data.get("metrics", [])}
    names |= {p.rsplit(".", 1)[-1] for fact in data.get("setup", []) for p in fact["paths"]}
    names |= set(data.get("vocabulary", {}).get("size_keys", []))
    names |= {stem for stems in data.get("vocabulary", {}).get("counted", {}).values() for stem in stems
              if "_" in stem}
    tree = ast.parse((root / "experiment.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Config":
            names |= {t.target.id for t in node.body
                      if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
    return names - GENERIC


def agent_files() -> list[Path]:
    return sorted(p for p in (REPO / "agent").rglob("*")
                  if p.suffix in (".py", ".j2", ".js") and "__pycache__" not in p.parts)


def test_the_agent_names_no_quantity_of_any_template() -> None:
    templates = sorted(p.parent for p in (REPO / "templates").glob("*/template.toml"))
    assert templates and any(t.name == "sae_variants" for t in templates)
    names = set().union(*(template_quantities(t) for t in templates))
    assert {"explained_variance", "d_sae", "l1_penalty", "ce_loss_score"} <= names  # the probe sees them
    found = []
    for path in agent_files():
        text = path.read_text(encoding="utf-8")
        for name in sorted(names):
            for m in re.finditer(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text):
                found.append(f"{path.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}: {name}")
    assert not found, "template quantities named in agent/ (move them to template.toml):\n" + "\n".join(found)


def test_the_probe_catches_a_quantity_written_into_the_agent(tmp_path: Path) -> None:
    """The grep is not vacuous: a line naming the SAE's dictionary width is caught."""
    names = template_quantities(REPO / "templates" / "sae_variants")
    line = 'width = info["config"]["d_sae"]'
    assert any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", line) for n in names)
    assert not any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", "lr = config['lr']")
                   for n in names)
