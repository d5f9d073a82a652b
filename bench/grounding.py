"""The grounding checker on labelled fixtures: false flags on true numbers, and detection.

    python bench/grounding.py

Prints, for each labelled fixture of tests/fixtures/paper, how many number mentions the
checker read, how many it flagged, and what that means:
- labelled_correct.tex (every number true of sae_runs.json): each flag is a false flag;
- the seed-002 paper's numbers the tests label real: each flag is a false flag;
- paper_planted.tex (its planted fabrications listed in tests/test_paper_grounding.py) and the
  escapes of tests/test_paper_reading.py: each planted number not flagged is a miss.
Also the time to check the seed-002 paper (a real 10-page paper).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.paper.evidence import build_evidence  # noqa: E402
from agent.paper.grounding import check_grounding, check_paper  # noqa: E402
from agent.paper.reading import read, sentences_of  # noqa: E402
from tests.test_paper_grounding import PLANTED  # noqa: E402
from tests.test_paper_reading import ESCAPES  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "paper"
SEED_REAL = ("0.9986", "0.9979", "1.055", "40.7%", "4081.94", "2095.25", "18432.0", "97.3%", "0.941")


def _sae():
    data = json.loads((FIXTURES / "sae_runs.json").read_text())
    return build_evidence(data["runs"], data["descriptions"], data["metrics"])


def false_flags() -> tuple[int, int]:
    """(numbers read, numbers flagged) on labelled_correct.tex."""
    tex = (FIXTURES / "labelled_correct.tex").read_text()
    read_numbers = sum(len(s.mentions) for s in sentences_of(read(tex)))
    flagged = [f for f in check_grounding(tex, _sae(), "Results") if f.kind in ("number", "setting", "attribution")]
    return read_numbers, len(flagged)


def main() -> None:
    n, flagged = false_flags()
    print(f"labelled_correct.tex: {n} true numbers read, {flagged} flagged: "
          f"false-flag rate {100 * flagged / n:.1f}%")
    data = json.loads((FIXTURES / "seed002_runs.json").read_text())
    seed = build_evidence(data["runs"], data["descriptions"], data["metrics"])
    tex = (FIXTURES / "seed002_paper.tex").read_text()
    start = time.perf_counter()
    findings = check_paper(tex, seed)
    seconds = time.perf_counter() - start
    texts = {f.text for f in findings}
    wrong = [r for r in SEED_REAL if r in texts]
    print(f"seed002 paper: {len(SEED_REAL)} labelled-real numbers, {len(wrong)} flagged; "
          f"{len(findings)} findings in all, checked in {seconds * 1000:.0f} ms")
    planted = check_paper((FIXTURES / "paper_planted.tex").read_text(), _sae())
    got = {(f.kind, f.text) for f in planted}
    print(f"paper_planted.tex: {len(PLANTED & got)} of {len(PLANTED)} planted fabrications found, "
          f"{len(got - PLANTED)} other findings")
    sae = _sae()
    caught = sum(number in {f.text for f in check_grounding(bad, sae, "Results")} for _, bad, number, _ in ESCAPES)
    passed = sum(not check_grounding(good, sae, "Results") for *_, good in ESCAPES)
    print(f"escapes: {caught} of {len(ESCAPES)} flagged; their true twins: {passed} of {len(ESCAPES)} clean")


if __name__ == "__main__":
    main()
