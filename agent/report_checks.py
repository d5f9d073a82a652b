"""The report's integrity panel: what a person reviewing someone else's run must know first.

Each check is a value with a level: `problem` (a number or claim not to be trusted as it
stands: a failing gate, a grounding finding, a run that did not reproduce, experiments run
without the sandbox), `warning` (something to look at: a launch that stopped, a secret kept
out of a commit, failed seeds, hypotheses changed after results), `ok` (checked and clean),
or `info` (not checked: e.g. no reproduction was run). The panel says "clean" when no check is
a problem or a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agent.report_data import ReportData
from agent.results import UNTRUSTED

Level = Literal["problem", "warning", "ok", "info"]


@dataclass(frozen=True)
class Check:
    """One line of the integrity panel."""

    level: Level
    title: str
    items: tuple[tuple[str, str], ...] = ()
    """(what, the sentence or detail it is about; may be empty)."""
    href: str = ""
    """The section of the page with more (`#paper`)."""


def checks(data: ReportData) -> list[Check]:
    found = [_ending(data), _sandbox(data), _evaluator(data), _gates(data), _grounding(data), _paper(data),
             _reproduction(data), _rebuild(data), _secrets(data), _too_large(data), _tex_refused(data), _outside_allowlist(data),
             _figures(data), _git_refused(data), _seeds(data),
             _hypotheses(data)]
    rank = {"problem": 0, "warning": 1}
    return sorted((c for c in found if c is not None), key=lambda c: rank.get(c.level, 2))


def is_clean(found: list[Check]) -> bool:
    return not any(c.level in ("problem", "warning") for c in found)


def _ending(data: ReportData) -> Check:
    e = data.ending
    if e.state == "finished":
        return Check("ok", "The launch finished.", href="#overview")
    items = [("see the traceback in", e.traceback_file)] if e.traceback_file else []
    items += [(f"{r.label}: its results are in the run directory but in no commit (a clone lacks them; "
               "--resume records or redoes them)", "") for r in data.runs if not r.problem and not r.committed]
    what = "stopped before the end" if e.state == "stopped" else "did not finish"
    return Check("warning", f"The launch {what}" + (f" (exit {e.exit_code})" if e.exit_code is not None else "")
                 + ": what follows is a partial run.", ((e.text, ""), *items), "#ending")


def _sandbox(data: ReportData) -> Check:
    if not data.sandboxes:
        return Check("info", "The journal does not say whether experiments ran in a sandbox.", href="#overview")
    off = data.unsandboxed
    if off:
        return Check("problem", "UNSANDBOXED: LLM-edited experiments ran as the user, able to write "
                     "anywhere the user can and reach the network.", tuple((s, "") for s in off), "#overview")
    return Check("ok", "Experiments and plots ran in the bubblewrap sandbox.", href="#overview")


def _evaluator(data: ReportData) -> Check | None:
    """Who wrote the metrics: the template's trusted evaluator, or the experiment itself."""
    template = data.hist.template
    runs = [r for r in data.runs if not r.problem]
    if template is None or not runs:
        return None
    untrusted = [r.label for r in runs if not r.trusted]
    if not template.evaluator:
        return Check("warning", "UNTRUSTED METRICS: the template has no trusted evaluator; every run's "
                     "metrics were written by the experiment itself (LLM-edited code), not computed by "
                     "the harness in a process of its own.", tuple((f"{r}: {UNTRUSTED}", "") for r in untrusted),
                     "#metrics")
    if untrusted:
        return Check("problem", f"{len(untrusted)} run(s) have metrics that {template.evaluator} did not "
                     "write (no provenance naming it).", tuple((r, "") for r in untrusted), "#metrics")
    return Check("ok", f"Every run's metrics were computed by the trusted evaluator ({template.evaluator}); "
                 "the loop verified their provenance before recording them.", href="#metrics")


def _gates(data: ReportData) -> Check:
    failing = [(f"{r.label}: [{g.severity}] {g.message}", "") for r in data.runs for g in r.gates
               if g.passed is False]
    review = (data.review or {}).get("gates") or {}
    if review.get("allowed_by_flag"):
        failing.append(("The paper was written anyway (--allow-failing-gates).", ""))
    if not data.runs:
        return Check("info", "No run has readable results: no gate was evaluated.", href="#metrics")
    if failing:
        hard = any("[fail]" in text for text, _ in failing)
        return Check("problem" if hard else "warning", f"{len(failing)} plausibility gate result(s) fail.",
                     tuple(failing), "#metrics")
    n = max((len(r.gates) for r in data.runs), default=0)
    return Check("ok", f"Every run passes the template's {n} plausibility gate(s).", href="#metrics")


def _grounding(data: ReportData) -> Check:
    if data.review is None:
        return Check("info", "No paper was checked: review.json is absent (the writeup stage did not run "
                     "or did not finish): no grounding, figure, citation or compile check.", href="#paper")
    findings = (data.review.get("grounding") or {}).get("findings") or []
    if not findings:
        return Check("ok", "Grounding: every number and claim in the paper traces to a run.", href="#paper")
    return Check("problem", f"Grounding: {len(findings)} number(s) or claim(s) in the paper match no run "
                 "or disagree with the statistics.", tuple(_finding(f) for f in findings), "#paper")


def _finding(f: dict[str, Any]) -> tuple[str, str]:
    where = str(f.get("section") or "?") + (f", line {f['line']}" if f.get("line") else "")
    closest = f.get("closest") or []
    text = f"[{where}] {f.get('kind', 'finding')}: \u201c{f.get('text', '')}\u201d \u2014 {f.get('reason', '')}"
    if closest:
        text += f" (closest real values: {'; '.join(map(str, closest))})"
    return text, str(f.get("context") or "")


def _paper(data: ReportData) -> Check | None:
    if data.review is None:
        return None
    items = [(f"paper check: {p}", "") for p in data.review.get("checks") or []]
    compiled = data.review.get("compile")
    if compiled is None:
        items.append(("the paper was not compiled", ""))
    elif compiled.get("status") != "ok":
        items.append((f"compile {compiled.get('status')}: {compiled.get('message', '')}",
                      "; ".join(map(str, compiled.get("errors") or []))))
    if items:
        return Check("problem", "The paper's figures, citations or compile have problems.", tuple(items), "#paper")
    return Check("ok", "The paper compiled; its figures and citations exist.", href="#paper")


def _reproduction(data: ReportData) -> Check:
    v = data.verify
    if v is None:
        return Check("info", "The runs were not re-executed: no reproduction is recorded "
                     "(python -m agent.replay RUN --verify).")
    runs = [r for r in v.get("runs") or [] if isinstance(r, dict)]
    bad = [r for r in runs if r.get("status") != "reproduced"]
    tol = f"rtol {v.get('rtol')}, atol {v.get('atol')}"
    if v.get("seeds"):
        tol += f"; seeds {', '.join(map(str, v['seeds']))} only, their own values: the means were not re-computed"
    if not bad and v.get("ok"):
        return Check("ok", f"Reproduced: {len(runs)} run(s) re-executed at their commits gave the recorded "
                     f"metrics ({tol}).")
    items = []
    for r in bad:
        diffs = "; ".join(f"{d.get('metric')}: recorded {d.get('recorded')}, reproduced {d.get('reproduced')}"
                          for d in r.get("differences") or [] if isinstance(d, dict))
        items.append((f"run_{r.get('run')} at {str(r.get('commit') or '')[:8]}: {r.get('status')}"
                      + (f" (max abs diff {r.get('max_abs_diff')})" if r.get("max_abs_diff") is not None else "")
                      + (f": {r.get('message')}" if r.get("message") else ""), diffs))
    return Check("problem", f"Reproduction: {len(bad)} of {len(runs)} re-executed run(s) did not give the "
                 f"recorded metrics ({tol}).", tuple(items))


def _rebuild(data: ReportData) -> Check:
    r = data.rebuild
    if r is None:
        return Check("info", "The history was not rebuilt from the recorded replies "
                     "(python -m agent.replay RUN --rebuild DIR).")
    if r.get("same"):
        return Check("ok", f"Rebuilt: replaying the recorded replies gave the same history "
                     f"({r.get('steps')} steps, in {r.get('dir')}).")
    return Check("problem", "Rebuild: replaying the recorded replies gave a different history.",
                 ((f"first difference: {r.get('first_difference')}", f"rebuilt in {r.get('dir')}"),))


def _secrets(data: ReportData) -> Check:
    if not data.secrets:
        return Check("ok", "No file held a secret: nothing was redacted or kept out of the commits.")
    items = tuple((f"{s.get('path')}, step {s.get('step')}: "
                   + ("committed with the secret redacted (the rest kept)" if s.get("redacted") else
                      "kept out, put back as last committed" if s.get("restored") else "kept out, deleted"),
                   ", ".join(f"{f.get('source')} ({f.get('how')}" + (f", line {f['line']})" if f.get("line") else ")")
                             for f in s.get("found") or [] if isinstance(f, dict)))
                  for s in data.secrets)
    redacted = sum(1 for s in data.secrets if s.get("redacted"))
    return Check("warning", f"{len(items)} file(s) held a secret or a key-shaped string: {redacted} committed "
                 f"with it redacted, {len(items) - redacted} kept out of the commits. The history holds "
                 "no value found; what was found where is listed.", items)


def _too_large(data: ReportData) -> Check | None:
    if not data.too_large:
        return None
    return Check("warning", f"{len(data.too_large)} file(s) were larger than the limit a commit stores "
                 "(TRUSTED_SCIENTIST_MAX_FILE_MB): left on disk, not in the history, so a clone lacks them.",
                 tuple((f"{d.get('path')} ({int(d.get('bytes') or 0) / 2**20:,.1f} MB)", f"step {d.get('step')}")
                       for d in data.too_large[:20]))


def _tex_refused(data: ReportData) -> Check | None:
    if not data.tex_refused:
        return None
    return Check("warning", f"The paper's LaTeX tried {len(data.tex_refused)} thing(s) TeX refuses (reading or "
                 "writing outside latex/, running a command): refused, in a sandbox that held nothing "
                 "else to read. A paper has no reason to; read what it tried.",
                 tuple((r, "") for r in data.tex_refused[:20]))


def _outside_allowlist(data: ReportData) -> Check | None:
    if not data.outside_allowlist:
        return None
    return Check("warning", f"The paper's LaTeX used {len(data.outside_allowlist)} command(s) outside the "
                 "allowlist (definitions, category codes, primitives, file access, verbatim, a file it did "
                 "not make as a figure): refused before compiling and sent back to the model. What TeX "
                 "would run was not what the checker reads; read what it tried.",
                 tuple((r, "") for r in data.outside_allowlist[:20]))


def _figures(data: ReportData) -> Check | None:
    """Who drew the figures: the renderer (from the results, checked) or LLM-edited plot.py
    (kept out of the paper), and the declarations the renderer refused."""
    own = [f.name for f in data.figures if f.path is not None and f.drawn_by == "plot.py"]
    items = [(p, "") for p in data.figures_refused]
    items += [(f"{name}: drawn by plot.py itself (LLM-edited code): its values are not checked and it is "
               "kept out of the paper", "") for name in own]
    if data.figures_refused:
        return Check("warning", f"The renderer refused {len(data.figures_refused)} figure declaration(s) of "
                     "plot.py (a value no run has, or a number no setting supports); the refusal went back to "
                     "the model.", tuple(items), "#figures")
    if own:
        return Check("info", f"{len(own)} figure(s) were drawn by LLM-edited code and are not in the paper.",
                     tuple(items), "#figures")
    drawn = [f.name for f in data.figures if f.drawn_by == "renderer"]
    if not drawn:
        return None
    return Check("ok", f"The figures ({', '.join(drawn)}) were drawn by the project's renderer from the "
                 "runs' results.", href="#figures")


def _git_refused(data: ReportData) -> Check | None:
    if not data.git_refused:
        return None
    return Check("warning", f"The run's code wrote {len(data.git_refused)} git metadata file(s) (a nested "
                 "repository, attributes, submodules or ignore rules): deleted before git read them, so "
                 "git ran nothing they asked for and every result was committed as files.",
                 tuple((path, "") for path in data.git_refused[:20]))


def _seeds(data: ReportData) -> Check:
    items = [(f"{r.label}: {p}", "") for r in data.runs for p in r.seed_problems]
    if items:
        return Check("warning", "Some seeds failed or were not independent: those runs' intervals "
                     "rest on fewer seeds.", tuple(items), "#metrics")
    return Check("ok", "Every seed of every run succeeded.", href="#metrics")


def _hypotheses(data: ReportData) -> Check:
    if data.hypotheses is None:
        return Check("info", "No hypotheses were registered (hypotheses.json is absent).", href="#hypotheses")
    if not data.hypotheses.get("hypotheses") and not data.hypotheses.get("amendments"):
        why = data.hypotheses.get("problem") or "the plan gave none"
        return Check("warning", f"No valid hypotheses were registered: {why}.", href="#hypotheses")
    later = [v for v in (data.verdicts or {}).get("verdicts") or []
             if isinstance(v, dict) and (v.get("added_after_results") or v.get("amended_after_run") is not None)]
    if later:
        return Check("warning", "Hypotheses were changed or added after results were seen.",
                     tuple((f"{v.get('id')}: " + ("added" if v.get("added_after_results") else "amended")
                            + f" after run {v.get('amended_after_run')}", str(v.get("statement", "")))
                           for v in later), "#hypotheses")
    reg = data.hypotheses.get("registered") or {}
    return Check("ok", f"Hypotheses were registered before run {reg.get('before_run', '?')} and not "
                 "changed after.", href="#hypotheses")
