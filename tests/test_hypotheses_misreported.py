"""A paper that misreports the pre-registered hypotheses, through the real loop (toy template,
replayed replies): the toy registers one hypothesis (H1, judged inconclusive: one seed, no
interval). A Results section that says two hypotheses were registered and both supported is
flagged, sent back to the model; its half-fix ("H1 is supported") is flagged again and, left
in the paper, is a finding of review.json shown in the report's integrity panel. The true
sentences beside them (one hypothesis registered; H1 inconclusive) are not flagged."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.e2e_helpers import (
    PARTS,
    TEX,
    TOY_KINDS_WITH_PLOT,
    TOY_SESSION_WITH_PLOT,
    TOY_TEMPLATES,
    block,
    cli,
    only_run_dir,
    review_reply,
    write_session,
    writeup_replies,
)

needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
WRONG = "Both pre-registered hypotheses were supported by the runs."
HALF_FIX = "H1 is supported by the runs."
INSISTS = "H1 is supported by our runs."  # the model insists
TRUE = "We registered one hypothesis before run 1. H1 is inconclusive with a single seed."


@pytest.mark.slow
@needs_pdflatex
def test_misreported_hypotheses_are_flagged_sent_back_and_shown(tmp_path) -> None:
    results = PARTS["Results"][0]
    parts = {**PARTS, "Results": [(results[0], f"{results[1]}\n{TRUE}\n{WRONG}")]}
    replies, kinds = writeup_replies(parts)
    at = kinds.index("writeup.refine", kinds.index("writeup.draft", 2 * list(PARTS).index("Results"))) + 1
    replies[at:at] = [block(TEX, WRONG + "\n", HALF_FIX + "\n"),
                      block(TEX, HALF_FIX + "\n", INSISTS + "\n")]
    kinds[at:at] = ["writeup.grounding", "writeup.grounding"]
    review = review_reply(Integrity=[{"finding": "F1", "response": "H1 is inconclusive (one seed), not supported."}])
    session = write_session(tmp_path / "session.jsonl", [*TOY_SESSION_WITH_PLOT, *replies, review],
                            [*TOY_KINDS_WITH_PLOT, *kinds, "review.paper"])
    proc = cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--max-runs", "3", "--quiet",
               "--model", f"replay:{session}", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    run_dir = only_run_dir(tmp_path / "runs")
    verdicts = json.loads((run_dir / "hypotheses_verdicts.json").read_text())
    assert [h["verdict"] for h in verdicts["verdicts"]] == ["inconclusive"]
    events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    asked = [json.dumps(e["data"]["messages"]) for e in events
             if e["kind"] == "llm.request" and e["data"]["prompt_kind"] == "writeup.grounding"]
    assert len(asked) == 2
    assert "Both pre-registered hypotheses" in asked[0] and "H1 is supported" in asked[1]
    assert "We registered one hypothesis" not in asked[0] + asked[1]  # the true twin is never flagged

    flagged = json.loads((run_dir / "review.json").read_text())["grounding"]["findings"]
    assert [f["kind"] for f in flagged] == ["hypothesis"] and INSISTS in flagged[0]["context"]
    assert "inconclusive" in flagged[0]["reason"]

    from agent import report

    html = report.write(run_dir).read_text()
    panel = html.split('id="integrity"', 1)[1].split("</section>", 1)[0]
    assert "Grounding: 1 number(s) or claim(s)" in panel and INSISTS in panel
