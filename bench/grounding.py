"""The grounding checker on labelled fixtures: false flags on true numbers, invented numbers
that pass, and recall.

    python bench/grounding.py

Prints, for the labelled fixtures of tests/fixtures/paper:
- false flags: each flag on a number of a correct paper (labelled_correct.tex and
  labelled_correct_tables.tex, every number true of sae_runs.json; the reference session's paper
  (tests/fixtures/paper/reference_tiny, the tiny main job's); the seed-002 paper's numbers
  the tests label real) is a false flag (target <= 5 %);
- invented numbers: each true number of those papers replaced by fabrications
  (`tests/invented.py`: perturbed 5-50 %, a value of another quantity, a far value rounded to
  one digit; fixed seed), and the share the checker accepts, overall and per kind (target <= 5 %);
- recall: the planted fabrications of paper_planted.tex (listed in tests/test_paper_grounding.py),
  the escapes of tests/test_paper_reading.py and the invented numbers, each found or missed.
Also the time to check the seed-002 paper (a real 10-page paper).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.paper.ground.evidence import Evidence, build_evidence  # noqa: E402
from agent.paper.ground.grounding import check_grounding, check_paper  # noqa: E402
from agent.paper.read.reading import read, sentences_of  # noqa: E402
from tests.invented import KINDS, Fabrication, blocks, fabrications, with_harness_sections  # noqa: E402
from tests.test_paper_grounding import PLANTED, SEED_REAL  # noqa: E402
from tests.test_paper_reading import ESCAPES  # noqa: E402
from tests.test_paper_reference import reference  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "paper"
CORRECT = ("labelled_correct.tex", "labelled_correct_tables.tex")


def _evidence(name: str, harness: bool = False) -> Evidence:
    data = json.loads((FIXTURES / name).read_text())
    runs = with_harness_sections(data["runs"]) if harness else data["runs"]
    return build_evidence(runs, data["descriptions"], data["metrics"])


def _plain(text: str) -> str:
    return text.rstrip("%").replace(",", "")


def false_flags(name: str, sae: Evidence) -> tuple[int, int]:
    """(numbers read, numbers flagged) on a correct paper about sae_runs.json."""
    tex = (FIXTURES / name).read_text()
    read_numbers = sum(len(s.mentions) for s in sentences_of(read(tex)))
    flagged = [f for f in check_grounding(tex, sae, "Results") if f.kind in ("number", "setting", "attribution")]
    return read_numbers, len(flagged)


def _seed_blocks(tex: str) -> list[str]:
    """The lines of the seed-002 paper that hold a number labelled real."""
    return [line for line in tex.splitlines() if any(real in line.replace("\\%", "%") for real in SEED_REAL)]


def _accepted(fab: Fabrication, evidence: Evidence) -> bool:
    """No finding on the block that its true version does not have."""
    def found(block: str) -> set[tuple[str, str]]:
        return {(f.kind, f.text) for f in check_grounding(block, evidence, "Results")}
    return not found(fab.block) - {(k, t.replace(fab.true, fab.invented)) for k, t in found(fab.original)}


def invented(sae: Evidence, seed: Evidence) -> list[tuple[Fabrication, bool]]:
    """Every fabrication of the correct papers' numbers, and whether the checker accepts it."""
    pool = [(f, sae) for name in CORRECT for f in fabrications(blocks((FIXTURES / name).read_text()), sae)]
    seed_tex = (FIXTURES / "seed002_paper.tex").read_text()
    only = {_plain(r) for r in SEED_REAL}
    pool += [(f, seed) for f in fabrications(_seed_blocks(seed_tex), seed) if f.true in only]
    return [(f, _accepted(f, ev)) for f, ev in pool]


def main() -> None:
    start = time.perf_counter()
    # the correct papers' runs with the evaluation and data sections today's evaluator writes
    sae, seed = _evidence("sae_runs.json", harness=True), _evidence("seed002_runs.json")
    numbers = flags = 0
    for name in CORRECT:
        n, flagged = false_flags(name, sae)
        numbers, flags = numbers + n, flags + flagged
        print(f"{name}: {n} true numbers read, {flagged} flagged: false-flag rate {100 * flagged / n:.1f}%")
    tex = (FIXTURES / "seed002_paper.tex").read_text()
    t0 = time.perf_counter()
    findings = check_paper(tex, seed)
    seconds = time.perf_counter() - t0
    wrong = [r for r in SEED_REAL if r in {f.text for f in findings}]
    numbers, flags = numbers + len(SEED_REAL), flags + len(wrong)
    print(f"seed002 paper: {len(SEED_REAL)} labelled-real numbers, {len(wrong)} flagged; "
          f"{len(findings)} findings in all, checked in {seconds * 1000:.0f} ms")
    ref_tex, ref_evidence, ref_macros = reference()
    n = sum(len(s.mentions) for s in sentences_of(read(ref_tex, ref_macros)))
    flagged = len(check_paper(ref_tex, ref_evidence, ref_macros))  # type: ignore[arg-type]
    numbers, flags = numbers + n, flags + flagged
    print(f"the reference session's paper: {n} true numbers read, {flagged} flagged")
    print(f"false flags on correct papers: {flags} of {numbers} ({100 * flags / numbers:.1f}%; target <= 5%)")

    judged = invented(sae, seed)
    passed = [f for f, ok in judged if ok]
    print(f"invented numbers: {len(passed)} of {len(judged)} accepted "
          f"({100 * len(passed) / len(judged):.1f}%; target <= 5%)")
    for kind in KINDS:
        of_kind = [ok for f, ok in judged if f.kind == kind]
        print(f"  {kind}: {sum(of_kind)} of {len(of_kind)} accepted ({100 * sum(of_kind) / max(1, len(of_kind)):.1f}%)")

    planted = check_paper((FIXTURES / "paper_planted.tex").read_text(), _evidence("sae_runs.json"))
    got = {(f.kind, f.text) for f in planted}
    found_planted = len(PLANTED & got)
    print(f"paper_planted.tex: {found_planted} of {len(PLANTED)} planted fabrications found, "
          f"{len(got - PLANTED)} other findings")
    escapes = _evidence_with_escape_descriptions()
    caught = sum(number in {f.text for f in check_grounding(bad, escapes, "Results")} for _, bad, number, _ in ESCAPES)
    clean = sum(not check_grounding(good, escapes, "Results") for *_, good in ESCAPES)
    print(f"escapes: {caught} of {len(ESCAPES)} flagged; their true twins: {clean} of {len(ESCAPES)} clean")
    total = len(PLANTED) + len(ESCAPES) + len(judged)
    found = found_planted + caught + len(judged) - len(passed)
    print(f"recall (planted + escapes + invented): {found} of {total} ({100 * found / total:.1f}%)")
    print(f"bench time: {time.perf_counter() - start:.1f} s")


def _evidence_with_escape_descriptions() -> Evidence:
    """sae_runs.json with the run description tests/test_paper_reading.py's escapes use."""
    data = json.loads((FIXTURES / "sae_runs.json").read_text())
    descriptions = {**data["descriptions"], "run_2": "TopK activation with k = 64 and lr 0.003"}
    return build_evidence(data["runs"], descriptions, data["metrics"])


if __name__ == "__main__":
    main()
