"""The reference session's paper (the tiny main job's, every number true: its macros come from
results.tex and its prose was checked clean) read by the checker with its own runs' evidence:
no finding. Every number word, factor and share of a setting in it ("sum to one", "eight times
the width", "the last 20% of the steps") once made a false flag."""

from __future__ import annotations

import json
import re
from pathlib import Path

from agent.paper.ground.evidence import build_evidence
from agent.paper.ground.grounding import check_paper
from agent.template import load

HERE = Path(__file__).parent / "fixtures" / "paper" / "reference_tiny"
TEMPLATE = Path(__file__).parents[1] / "templates" / "sae_variants"


def reference() -> tuple[str, object, dict[str, tuple[str, str]]]:
    """(the paper's LaTeX, its evidence, results.tex's macro names) as the writeup stage has them."""
    data = json.loads((HERE / "runs.json").read_text())
    evidence = build_evidence(data["runs"], data["descriptions"], list(load(TEMPLATE).metrics), data["verdicts"])
    macros = {n: ("", "") for n in re.findall(r"\\newcommand\{\\(\w+)\}", (HERE / "results.tex").read_text())}
    return (HERE / "paper.tex").read_text(), evidence, macros


def test_the_reference_paper_has_no_finding() -> None:
    tex, evidence, macros = reference()
    assert [f.describe() for f in check_paper(tex, evidence, macros)] == []  # type: ignore[arg-type]


def test_its_numbers_changed_are_found() -> None:
    """The twin: the same paper with a setting and a count changed is flagged at those numbers."""
    tex, evidence, macros = reference()
    assert "regrouped every 100 steps" in tex and "with 5 Lloyd iterations" in tex
    wrong = tex.replace("regrouped every 100 steps", "regrouped every 250 steps", 1)
    found = check_paper(wrong, evidence, macros)  # type: ignore[arg-type]
    assert [f.text for f in found] == ["250"], [f.describe() for f in found]
