"""The writeup stage: a LaTeX paper drafted section by section, every number from a run.

results.tex (macros and the results table) is generated from the runs' final_info.json
files; each section is drafted, checked (grounding: numbers and claims against the result
files), refined, and fixed while findings remain (bounded); then the paper is checked and
compiled with the compiler's real errors fed back (bounded). What remains goes to review.json.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agent import prompting
from agent.context import RunContext
from agent.notes import recorded_sections
from agent.results import finished_runs, run_summaries
from agent.stages import writeup_prompts
from agent.stages.common import StageFailed, edit_session

STAGE = "writeup"
TEX = "latex/template.tex"
GROUNDING_FIXES = 2
LATEX_FIXES = 3


def _slug(part: str) -> str:
    return re.sub(r"[^a-z]+", "_", part.lower()).strip("_")


def _gate_report(runs: list[Any]) -> list[str]:
    return [f"{r.label}: {g.message}" for r in runs for g in r.failing("fail")]


def run_stage(ctx: RunContext) -> str:
    from agent.paper.build import results_tex, sections
    from agent.paper.ground import evidence, grounding
    from agent.paper.tex import checks

    runs = finished_runs(ctx.ws.root, ctx.template)
    failing = _gate_report(runs)
    if failing and not ctx.config.allow_failing_gates:
        _write_review(ctx, gates=failing, findings=[], problems=[], compiled=None, blocked=True)
        raise StageFailed("writeup stopped: these runs fail the template's plausibility gates, so they "
                          "cannot be presented as results:\n- " + "\n- ".join(failing) +
                          "\nFix the experiments, or pass --allow-failing-gates to write a paper that "
                          "says so (review.json has the report).")
    summaries = run_summaries(ctx.journal.events())
    infos = results_tex.load_final_infos(ctx.ws.root)
    descriptions = {r.name: summaries.get(r.index, "") for r in runs}
    latex_dir = ctx.ws.resolve("latex")
    judged = _hypotheses(ctx, infos)
    rt = results_tex.write_results_tex(latex_dir, infos, list(ctx.template.metrics), descriptions, judged,
                                     setup=ctx.template.setup, untrusted=ctx.template.evaluator is None)
    for problem in rt.problems:
        ctx.console.warn(f"results.tex: a record disagrees with its own seeds (the seeds' values are used): {problem}")
    ctx.ws.commit(["latex/results.tex"], "writeup: results.tex generated from the runs' final_info.json")
    ev = evidence.build_evidence(infos, descriptions, list(ctx.template.metrics), judged)
    # every macro results.tex defines, those of a run's metric with their run and metric
    cited = {**{n: ("", "") for n in rt.names()}, **{m.name: (m.run, m.metric) for m in rt.macros}}
    bib = (latex_dir / "references.bib").read_text(encoding="utf-8") if (latex_dir / "references.bib").is_file() else ""
    figures = [{"name": f, "description": "drawn by the project's renderer from the results (as plot.py declared it); "
                                                "described in notes.txt"}
               for f in _figures(ctx)]
    run_list = [{"name": r.name, "description": descriptions[r.name]} for r in runs]
    macros = writeup_prompts.macro_listing(rt.macros)
    tex_path = ctx.ws.resolve(TEX)

    def shared_system(bib: str) -> dict[str, str]:
        """Rules and material, the prefix every writeup call shares (the bib may grow once)."""
        return writeup_prompts.system_message(
            ctx.template.name, ctx.template.description, idea_title=ctx.idea.title,
            idea=ctx.idea.fields["Experiment"], runs=run_list, macros=macros, seed_note=rt.seed_note,
            comparisons=list(rt.verdicts), hypotheses=list(rt.hypotheses),
            references=[e.line() for e in checks.bib_entries(bib)], figures=figures, gate_failures=failing,
            notes=writeup_prompts.notes_for_writeup(ctx.ws.resolve("notes.txt").read_text(encoding="utf-8"),
                                                    [text for _, text, _ in recorded_sections(ctx)],
                                                    [m.label for m in ctx.template.headline]))

    system = shared_system(bib)

    def findings_for(part: str) -> list[Any]:
        titles = sections.SECTION_TITLES[part]  # type: ignore[index]
        return [f for f in grounding.check_paper(tex_path.read_text(encoding="utf-8"), ev, cited)
                if f.section in titles]

    shared = ""  # the paper before the last drafted part: the next draft starts with it
    for part in sections.DRAFT_ORDER:
        ctx.status(f"drafting {part}")
        slug = _slug(part)
        if part == "Related Work" and ctx.config.literature_search:
            bib = _literature(ctx, bib)
            system = shared_system(bib)
        messages, cached, shared = writeup_prompts.draft(system, part, sections.stubs(part), rt.table_macro,
                                                         tex_path.read_text(encoding="utf-8"), shared)
        draft = edit_session(ctx, messages, stage=STAGE, prompt_kind="writeup.draft",
                             call_id=f"writeup/{slug}/draft", label=f"draft {part}", editable=(TEX,), cache=cached)
        problems = [f.describe() for f in findings_for(part)]
        problems += [p.describe() for p in checks.check_tex(tex_path.read_text(encoding="utf-8"), latex_dir, rt.names())
                     if p.kind == "placeholder" and part in p.message]
        _record_check(ctx, part, "draft", problems)
        refine = [*messages, {"role": "assistant", "content": draft.final_reply},
                  {"role": "user", "content": prompting.render("writeup_refine", section=part, problems=problems)}]
        # the draft's breakpoints: it wrote them, the refine reads them (its own tail is not
        # marked: no later call starts with it)
        edit_session(ctx, refine, stage=STAGE, prompt_kind="writeup.refine", call_id=f"writeup/{slug}/refine",
                     label=f"refine {part}", editable=(TEX,), require_change=False, cache=cached)
        for attempt in range(1, GROUNDING_FIXES + 1):
            found = findings_for(part)
            _record_check(ctx, part, f"refine/fix{attempt - 1}", [f.describe() for f in found])
            if not found:
                break
            fix = [system, {"role": "user", "content": prompting.render(
                "writeup_grounding_fix", findings=[f.describe() for f in found], macros=macros,
                runs=run_list, comparisons=list(rt.comparisons), hypotheses=list(rt.hypotheses),
                attempt=attempt, max_attempts=GROUNDING_FIXES)}]
            edit_session(ctx, fix, stage=STAGE, prompt_kind="writeup.grounding",
                         call_id=f"writeup/{slug}/grounding{attempt}", label=f"ground {part}", editable=(TEX,))
    compiled, problems, shown = _compile(ctx, system, rt)
    remaining = grounding.check_paper(tex_path.read_text(encoding="utf-8"), ev, cited) + shown
    _write_review(ctx, gates=failing, findings=[f.to_dict() for f in remaining],
                  problems=[p.describe() for p in problems], compiled=compiled, blocked=False)
    for f in remaining:
        ctx.console.warn(f"unsupported by any result: {f.describe()}")
    for p in problems:
        ctx.console.warn(f"paper check: {p.describe()}")
    if compiled.status == "skipped":
        return f"paper written to {TEX} but not compiled: {compiled.message}"
    if not compiled.ok:
        what = "leaves the LaTeX allowlist" if compiled.status == "refused" else "does not compile"
        raise StageFailed(f"writeup: the paper {what} after {LATEX_FIXES} fixes:\n{compiled.feedback()}")
    flagged = f"; {len(remaining)} grounding finding(s) remain (see review.json)" if remaining else "; grounding check clean"
    return f"paper.pdf built{flagged}"


def _hypotheses(ctx: RunContext, infos: dict[str, Any]) -> dict[str, Any] | None:
    """hypotheses_verdicts.json for results.tex, with hypotheses.json's registration and problem;
    verdicts judged now (by code, from the runs) when hypotheses.json has no verdicts file yet."""
    from agent import hypotheses, judging

    root = ctx.ws.root
    try:
        registered, verdicts = hypotheses.load(root), hypotheses.load_verdicts(root)
    except (OSError, ValueError, KeyError, TypeError) as e:
        ctx.console.warn(f"the hypotheses files could not be read ({e}); the paper says none were registered")
        return {"verdicts": [], "problem": "the hypotheses files of the run could not be read"}
    if registered is None:
        return verdicts
    if verdicts is None:
        verdicts = judging.verdicts_json(registered, judging.judge(registered, infos, list(ctx.template.metrics)))
    return {"registered": {"before_run": registered.before_run}, "problem": registered.problem, **verdicts}


def _record_check(ctx: RunContext, part: str, after: str, findings: list[str]) -> None:
    """Journal a grounding check once: a resumed writeup checks again, but it is one fact."""
    if ctx.find("writeup.checked", part=part, after=after) is None:
        ctx.record("writeup.checked", part=part, after=after, findings=findings)


def _literature(ctx: RunContext, bib: str) -> str:
    """Add what the literature layer finds to references.bib: the idea's novelty-search papers,
    then a search for its title (cached in the run's `literature/`, committed with the bib; a
    replayed session asks no service: offline, from the caches only)."""
    from agent.literature import Mode
    from agent.paper.build import literature

    done = ctx.find("literature.searched")
    if done is None:
        mode: Mode = "offline" if ctx.model.startswith("replay:") else "live"
        result = literature.search(ctx.idea.title, cache=ctx.ws.resolve(literature.RUN_DIR), mode=mode,
                                   also_read=literature.idea_caches(ctx.idea.path, ctx.idea.name))
        added: list[str] = []
        if result.papers:
            bib, added = literature.merge_into_bib(bib, result.papers)
            ctx.ws.resolve("latex/references.bib").write_text(bib, encoding="utf-8")
        files = [str(p.relative_to(ctx.ws.root)) for p in result.used]
        ctx.ws.commit(["latex/references.bib", *files],
                      f"writeup: {len(added)} references from a literature search ({mode})")
        ctx.record("literature.searched", query=ctx.idea.title, mode=mode, added=added, skipped=result.skipped,
                   cached=result.cached, files=files,
                   searches=[{"query": s.query, "source": s.source, "status": s.status, "reason": s.reason,
                              "cache_key": s.cache_key, "from_cache": s.from_cache,
                              "papers": [r.summary() for r in s.records]} for s in result.searches])
        if result.skipped:
            ctx.console.warn(result.skipped)
    path = ctx.ws.resolve("latex/references.bib")
    return path.read_text(encoding="utf-8") if path.is_file() else bib


def _figures(ctx: RunContext) -> list[str]:
    """The figures the trusted renderer drew (unchanged since): the only ones the paper may show."""
    from agent.stages.plot import trusted_figures

    return trusted_figures(ctx)


def _compile(ctx: RunContext, system: dict[str, str], rt: Any) -> tuple[Any, list[Any], list[Any]]:
    """Pre-compile checks and pdflatex, with the real errors fed back a bounded number of times:
    the last result, its source problems, and the numbers its PDF shows untraced (`_typeset`,
    fed back as problems too, returned apart for review.json's grounding findings)."""
    from agent.paper.build import compile
    from agent.paper.tex import checks

    tex_path, latex_dir = ctx.ws.resolve(TEX), ctx.ws.resolve("latex")
    figures = _figures(ctx)
    compile.copy_figures(latex_dir, ctx.ws.root, figures)  # TeX reads nothing outside latex/
    skeleton = (ctx.template.root / TEX).read_text(encoding="utf-8")  # the template's: not editable
    result, problems, shown = None, [], []
    for attempt in range(1, LATEX_FIXES + 2):
        ctx.status(f"compiling the paper (attempt {attempt})")
        problems = checks.check_tex(tex_path.read_text(encoding="utf-8"), latex_dir, rt.names(),
                                    skeleton=skeleton, figures=figures)
        # Compiling again after a crash makes the same PDF from the same source, so it is
        # redone rather than memoized; its journal line is written once per attempt.
        result = _refused(problems) or compile.compile_paper(
            latex_dir, log_dir=ctx.ws.resolve("logs/latex"), pdf_out=ctx.ws.resolve("paper.pdf"),
            on_start=ctx.process_started("latex"))
        if result.status == "refused":
            ctx.ws.resolve("paper.pdf").unlink(missing_ok=True)  # an earlier source's PDF
        shown = _typeset(ctx, result)
        problems += [checks.Problem("typeset", f.describe(), f.line) for f in shown]
        if ctx.find("writeup.compiled", attempt=attempt) is None:
            ctx.record("writeup.compiled", attempt=attempt, status=result.status, errors=len(result.errors),
                       chktex=len(result.chktex), problems=[p.describe() for p in problems],
                       refused=list(result.refused),
                       outside_allowlist=[p.describe() for p in problems if p.kind == "refused_command"])
            if result.refused:
                ctx.console.warn(f"the paper tried what TeX refuses ({len(result.refused)}): "
                                 + "; ".join(result.refused[:3]))
        if result.status == "skipped" or (result.ok and not problems and not result.chktex) or attempt > LATEX_FIXES:
            break
        fix = [system, {"role": "user", "content": prompting.render(
            "writeup_latex_fix", status=result.status, errors=[e.describe() for e in result.errors] + list(result.bibtex_errors),
            warnings=list(result.warnings), chktex=list(result.chktex), problems=[p.describe() for p in problems],
            tex=tex_path.read_text(encoding="utf-8"), attempt=attempt, max_attempts=LATEX_FIXES)}]
        edit_session(ctx, fix, stage=STAGE, prompt_kind="writeup.latex_fix", call_id=f"writeup/latex/fix{attempt}",
                     label="fix LaTeX", editable=(TEX,))
    paths = ["latex", "logs/latex"] + (["paper.pdf"] if ctx.ws.resolve("paper.pdf").is_file() else [])
    ctx.ws.commit(paths, f"writeup: paper compiled ({result.status if result else 'not run'})")
    return result, [p for p in problems if p.kind != "typeset"], shown


def _typeset(ctx: RunContext, compiled: Any) -> list[Any]:
    """Numbers the compiled PDF shows that neither the source nor results.tex holds
    (`agent.paper.ground.typeset`); none when there is no PDF or its text cannot be read."""
    from agent import pdftools
    from agent.paper.ground import typeset

    if compiled is None or not compiled.ok or compiled.pdf_path is None:
        return []
    shown = pdftools.text(compiled.pdf_path)
    if shown.problem:
        ctx.console.warn(f"the PDF's text could not be read, so its numbers are not checked: {shown.problem}")
        return []
    latex = ctx.ws.resolve("latex")
    trusted = [(latex / name).read_text(encoding="utf-8", errors="replace")
               for name in ("results.tex", "template.bbl", "references.bib") if (latex / name).is_file()]
    return typeset.untraced(shown.text, ctx.ws.resolve(TEX).read_text(encoding="utf-8"), trusted)


def _refused(problems: list[Any]) -> Any:
    """Not compiled: what TeX would run is not what the checker reads when the paper leaves the
    LaTeX allowlist (`agent.paper.tex.allowlist`). Each use is an error, fed back like TeX's own."""
    from agent.paper.build import compile

    outside = [p for p in problems if p.kind == "refused_command"]
    if not outside:
        return None
    return compile.CompileResult(
        "refused", f"not compiled: the paper uses LaTeX outside the allowlist ({outside[0].describe()})",
        errors=tuple(compile.LatexError(p.message, p.line, "") for p in outside))


def _write_review(ctx: RunContext, *, gates: list[str], findings: list[dict[str, Any]], problems: list[str],
                  compiled: Any, blocked: bool) -> None:
    review = {
        "gates": {"failing": gates, "blocked_paper": blocked, "allowed_by_flag": bool(gates) and not blocked},
        "grounding": {"findings": findings, "clean": not findings},
        "checks": problems,
        "compile": None if compiled is None else {
            "status": compiled.status, "message": compiled.message,
            "errors": [e.describe() for e in compiled.errors], "chktex": list(compiled.chktex)},
    }
    ctx.ws.resolve("review.json").write_text(json.dumps(review, indent=2) + "\n", encoding="utf-8")
    ctx.ws.commit(["review.json"], "writeup: review.json (gates, grounding, checks, compile)")
    ctx.record("writeup.reviewed", findings=len(findings), problems=len(problems), blocked=blocked)
