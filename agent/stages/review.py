"""The review stage: the model reviews the paper on the NeurIPS form with the integrity report
in hand (agent.integrity), and must answer every finding by its id.

The reply is validated (agent.review); a malformed or incomplete form goes back with the exact
problems, a bounded number of times. The valid review is added to review.json as `llm_review`
and committed. A round of replies that never validates is journaled and fails the stage with
review.json untouched; `--resume` then asks again (a new round, with call ids of its own).
"""

from __future__ import annotations

import json
from typing import Literal

from agent import integrity, prompting
from agent.context import RunContext
from agent.review import Checked, Review, check
from agent.stages.common import StageFailed, ask_text

STAGE = "review"
STEP = "review/paper"
FIXES = 2
"""Replies with problems sent back for a fix before the stage fails (so 1 + FIXES replies)."""
TEX = "latex/template.tex"
PDFTOTEXT_TIMEOUT_S = 120

PaperSource = Literal["pdf", "latex"]


def run_stage(ctx: RunContext) -> str:
    root = ctx.ws.root
    review_path = ctx.ws.resolve("review.json")
    if ctx.find("stage.finished", stage="writeup") is None or not review_path.is_file():
        raise StageFailed(
            "review: there is no paper to review: the writeup stage has not finished in this run "
            f"directory. Write the paper first: python -m agent.launch --resume {root} "
            "--stages writeup,review")
    written = json.loads(review_path.read_text(encoding="utf-8"))
    verify = ctx.find("verify.finished")
    report = integrity.build(written, verify.data if verify is not None else None)
    source, paper = _paper(ctx)
    # Rounds before this one: those that failed, and reviews made before the last --verify
    # (whose reproduction results they did not have).
    round_no = sum(1 for _ in ctx.journal.of_kind("review.failed")) + sum(
        1 for e in ctx.journal.of_kind("review.finished") if verify is not None and e.seq < verify.seq)
    if ctx.find("review.started", round=round_no) is None:
        ctx.record("review.started", round=round_no, paper_source=source, findings=len(report.findings),
                   verified=verify is not None, model=ctx.model)
    ctx.status(f"reviewing the paper ({len(report.findings)} integrity findings)")
    review, replies = _ask(ctx, report, source, paper, round_no)
    step = STEP if round_no == 0 else f"{STEP}/round{round_no + 1}"
    sha = ctx.ws.step_commit(step)
    if sha is None:
        llm_review = {**review.form, "model": ctx.model, "findings": [f.to_dict() for f in report.findings],
                      "paper_source": source}
        written = {k: v for k, v in written.items() if k != "llm_review"}
        review_path.write_text(json.dumps({**written, "llm_review": llm_review}, indent=2) + "\n", encoding="utf-8")
        sha = ctx.ws.commit(["review.json"], f"review: NeurIPS-form review (Overall {review.overall}/10, "
                                             f"{review.decision})", step=step)
    ctx.crashpoint("review_committed")
    addressed = len(review.form["Integrity"])
    if ctx.find("review.finished", round=round_no) is None:
        ctx.record("review.finished", round=round_no, scores=review.scores(), decision=review.decision,
                   findings=len(report.findings), addressed=addressed, replies=replies,
                   paper_source=source, sha=sha)
    return (f"Overall {review.overall}/10 ({review.decision}), confidence {review.confidence}; "
            f"{addressed} integrity finding{'' if addressed == 1 else 's'} addressed")


def _ask(ctx: RunContext, report: integrity.IntegrityReport, source: PaperSource, paper: str,
         round_no: int) -> tuple[Review, int]:
    """The review and how many replies it took; StageFailed after 1 + FIXES invalid replies."""
    prefix = STAGE if round_no == 0 else f"{STAGE}/round{round_no + 1}"  # new call ids: asked anew
    messages = [{"role": "system", "content": prompting.render("review_system")},
                {"role": "user", "content": prompting.render(
                    "review_paper", paper_source=source, paper=paper,
                    findings=[f.to_dict() for f in report.findings], context=list(report.context))}]
    call_id, kind = f"{prefix}/paper", "review.paper"
    for fix in range(FIXES + 1):
        reply = ask_text(ctx, messages, stage=STAGE, prompt_kind=kind, call_id=call_id)
        checked: Checked = check(reply, report.ids)
        if checked.review is not None:
            return checked.review, fix + 1
        if ctx.find("review.invalid", call_id=call_id) is None:
            ctx.record("review.invalid", round=round_no, call_id=call_id, errors=list(checked.errors))
        if fix == FIXES:
            break
        messages = [*messages, {"role": "assistant", "content": reply},
                    {"role": "user", "content": prompting.render(
                        "review_fix", errors=list(checked.errors), finding_ids=report.ids,
                        attempt=fix + 1, max_attempts=FIXES)}]
        call_id, kind = f"{prefix}/fix{fix + 1}", "review.fix"
    ctx.record("review.failed", round=round_no, replies=FIXES + 1, errors=list(checked.errors))
    problems = "\n- ".join(checked.errors)
    raise StageFailed(
        f"review: the model's review is not a valid form after {FIXES} fixes ({FIXES + 1} replies); "
        f"the last reply's problems:\n- {problems}\nreview.json is unchanged (the writeup's report) and "
        "every reply is in journal.jsonl (review.invalid). Ask again, with this model or another: "
        f"python -m agent.launch --resume {ctx.ws.root} --stages review [--model MODEL]")


def _paper(ctx: RunContext) -> tuple[PaperSource, str]:
    """The paper as the reviewer reads it: the text of paper.pdf (`pdftotext -layout`), or the
    LaTeX source with the results.tex that defines its macros when there is no PDF to read."""
    pdf = ctx.ws.resolve("paper.pdf")
    if pdf.is_file():
        from agent import pdftools

        read = pdftools.text(pdf, timeout_s=PDFTOTEXT_TIMEOUT_S)
        if read.text.strip():
            return "pdf", read.text
        ctx.console.warn(f"review: paper.pdf could not be read as text ({read.problem or 'no text'}); "
                         "the reviewer reads the LaTeX source")
    tex = ctx.ws.resolve(TEX).read_text(encoding="utf-8")
    results = ctx.ws.resolve("latex/results.tex")
    if results.is_file():
        tex += "\n\n% ---- latex/results.tex: the macros the paper uses ----\n" + results.read_text(encoding="utf-8")
    return "latex", tex

