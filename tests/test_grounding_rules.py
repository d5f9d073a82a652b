"""The grounding rules are data: the table in grounding.py's docstring and in
docs/grounding-rules.md is generated from `RULES`, and each rule decides the numbers it names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.paper.build.spec import MetricSpec
from agent.paper.ground import grounding, rules
from agent.paper.ground.evidence import build_evidence
from agent.paper.ground.naming import Context, phrases_of, quantity_of
from agent.paper.ground.quantity import Keys
from agent.paper.read.reading import read, sentences_of

REPO = Path(__file__).parents[1]


def test_the_docs_tables_are_generated_from_the_rules() -> None:
    assert rules.table() in (grounding.__doc__ or "")
    generated = subprocess.run([sys.executable, "-m", "agent.paper.ground.rules"], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout
    assert (REPO / "docs" / "grounding-rules.md").read_text() == generated, \
        "regenerate: python -m agent.paper.ground.rules > docs/grounding-rules.md"
    names = [r.name for r in rules.RULES]
    assert len(set(names)) == len(names) and names[-1] == "value"


EVIDENCE = build_evidence(
    {"run_0": {"metrics": {"explained_variance": 0.82, "l0": 40.6}, "config": {"lr": 3e-4, "total_steps": 488},
               "timings": {"train_s": 41.2}},
     "run_1": {"metrics": {"explained_variance": 0.78, "l0": 30.6}, "config": {"lr": 3e-4, "total_steps": 488},
               "timings": {"train_s": 40.0}}},
    {}, [MetricSpec("explained_variance", "explained variance"), MetricSpec("l0", "L0")],
    {"level": 0.95, "verdicts": [], "problem": None})


@pytest.mark.parametrize(("text", "number", "rule", "grounded"), [
    ("We minimise $1 - 2 x$ over the batch.", "2", "formula", True),
    ("Each interval is a 95\\% CI of the mean.", "95%", "level", True),
    ("Each interval is a 90\\% CI of the mean.", "90%", "value", False),
    ("Training took 41.2 s on the baseline.", "41.2", "duration", True),
    ("Training took 52.0 s on the baseline.", "52.0", "duration", False),
    ("We use a learning rate of 3e-4.", "3e-4", "setting", True),
    ("We use a learning rate of 5e-4.", "5e-4", "setting", False),
    ("The three runs share one dictionary.", "three", "ordinary", True),
    ("Every run trains for 488 steps.", "488", "count", True),
    ("Every run trains for 1000 steps.", "1000", "count", False),
    ("The baseline reaches an explained variance of 0.82.", "0.82", "metric", True),
    ("The baseline reaches an explained variance of 0.91.", "0.91", "metric", False),
    ("We found 30.6 of them.", "30.6", "value", True),
])
def test_the_first_rule_that_applies_decides(text: str, number: str, rule: str, grounded: bool) -> None:
    ctx = Context(EVIDENCE, phrases_of(EVIDENCE), {}, Keys.of(EVIDENCE))
    (s,) = [s for s in sentences_of(read(text)) if any(m.text == number for m in s.mentions)]
    (m,) = [m for m in s.mentions if m.text == number]
    facts = rules.Facts(m, s, EVIDENCE, "Results", 1, lambda: quantity_of(m, s, ctx), None)
    assert next(r.name for r in rules.RULES if r.applies(facts)) == rule
    assert (rules.decide(facts) is None) is grounded
