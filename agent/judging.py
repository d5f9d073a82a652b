"""Verdicts of pre-registered hypotheses (`agent.hypotheses`), decided by code after the runs.

`judge(doc, final_infos, metrics)` compares each effective hypothesis's two runs on its metric
with `agent.stats` (Welch interval of the difference over the seeds) and gives it a verdict
with `stats.hypothesis_verdict`: supported, refuted or inconclusive, with the reason;
`provisional` is the same for the prompts while runs remain; `verdicts_json` is the content of
`hypotheses_verdicts.json`.

A pre-registration is judged as it was registered: an amended hypothesis's verdict, the one
every count and the paper's verdict macros use, is that of its registered form; the amended
form is judged too and reported beside it (`amended` in its record), marked post hoc and
counted nowhere. A hypothesis added after results were seen has no registered form: it is
reported, marked, with its own verdict, and not counted among the pre-registered ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agent import stats
from agent.hypotheses import Effective, HypothesesDoc


@dataclass(frozen=True)
class Judged:
    """One effective hypothesis with the verdict the intervals give it."""

    effective: Effective
    verdict: stats.HypothesisVerdict
    why: str
    diff: float | None = None
    ci: tuple[float, float] | None = None
    n_run: int = 0
    n_against: int = 0
    registered: Judged | None = None
    """For an amended hypothesis: its registered form, judged; that verdict is the one that counts."""

    def _result(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "diff": self.diff, "ci": list(self.ci) if self.ci else None,
                "n_run": self.n_run, "n_against": self.n_against, "why": self.why}

    def to_json(self) -> dict[str, Any]:
        """The record that counts (the registered form, judged), and for an amended hypothesis
        its amended form beside it (`amended`: its fields, when and why, and its own verdict)."""
        e = self.effective
        marks = {"amended_after_run": e.amended_after_run, "added_after_results": e.added_after_results}
        if self.registered is None:
            return {**e.hypothesis.to_json(), **marks, **self._result(), "amended": None}
        amended = {**e.hypothesis.to_json(), "after_run": e.amended_after_run, "reason": e.reason,
                   **self._result()}
        return {**self.registered.effective.hypothesis.to_json(), **marks, **self.registered._result(),
                "amended": amended}

    @property
    def counted(self) -> Judged:
        """The verdict that counts: the registered form's."""
        return self.registered or self

    def head(self) -> str:
        """`H1 (top1_acc, run 1 vs run 0, expected decrease >= 2; amended after run 2)`."""
        h, e = self.effective.hypothesis, self.effective
        mark = ""
        if e.added_after_results:
            mark = f"; added after run {e.amended_after_run}"
        elif e.amended_after_run is not None:
            mark = f"; amended after run {e.amended_after_run}"
        return (f"{h.id} ({h.metric}, run {h.run} vs run {h.against}, expected {h.expected} "
                f">= {h.smallest_effect:g}{mark})")

    def line(self) -> str:
        """The head, the verdict and why: one console line (an amended hypothesis: its
        registered form's, then the amended form's verdict, which does not count)."""
        if self.registered is not None:
            return (f"{self.registered.head()}: {self.registered.verdict}: {self.registered.why}; as amended "
                    f"after run {self.effective.amended_after_run} (post hoc, not counted): {self.verdict}")
        return f"{self.head()}: {self.verdict}: {self.why}"


def _n(x: float) -> str:
    return format(x, ".4g")


def _why_seeds(info: Mapping[str, Any], name: str, n: int) -> str:
    seeds = info.get("seeds")
    if isinstance(seeds, Mapping) and seeds.get("independent") is False:
        return f"the seeds of {name} produced identical weights (one measurement)"
    return f"{name} has {n} successful seed{'s' if n != 1 else ''}"


def judge_one(e: Effective, final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any]) -> Judged:
    h = e.hypothesis
    run, against = f"run_{h.run}", f"run_{h.against}"
    for name in (run, against):
        if name not in final_infos:
            return Judged(e, "inconclusive", f"{name} was never executed successfully (no {name}/final_info.json)")
    spec = next((m for m in metrics if m.name == h.metric), None)
    if spec is None:
        return Judged(e, "inconclusive", f"{h.metric} is not a metric of this template")
    found = stats.compare_runs(final_infos[run], final_infos[against], h.metric, spec.direction, run, against)
    if found is None:
        lacking = run if not stats.seed_values(final_infos[run], h.metric) else against
        return Judged(e, "inconclusive", f"{lacking} reports no value of {h.metric}")
    c, n_run, n_against = found.comparison, found.n_run, found.n_against
    if c.ci is None:
        few = [_why_seeds(final_infos[r], r, n) for r, n in ((run, n_run), (against, n_against)) if n < 2]
        return Judged(e, "inconclusive", f"no interval: {' and '.join(few)}; an interval needs 2 or more "
                      "independent seeds on each side", c.diff, None, n_run, n_against)
    verdict = stats.hypothesis_verdict(c, h.expected, h.smallest_effect)
    sign = 1.0 if h.expected == "increase" else -1.0
    lo, hi = sorted((sign * c.ci[0], sign * c.ci[1]))
    interval = f"the {int(stats.LEVEL * 100)}% interval of the difference [{_n(c.ci[0])}, {_n(c.ci[1])}]"
    side, other = ("above", "below") if sign > 0 else ("below", "above")
    s = abs(h.smallest_effect)
    if verdict == "supported":
        why = f"{interval} lies {side} 0 and the difference {_n(c.diff)} is at least {_n(s)} in size"
    elif hi < 0:
        why = f"{interval} lies {other} 0: the metric moved against the expected {h.expected}"
    elif verdict == "refuted":
        why = f"{interval} lies within ±{_n(s)}: any effect is smaller than the smallest effect that matters"
    elif lo <= 0:
        why = f"{interval} includes 0"
    else:
        why = f"{interval} lies {side} 0, but the difference {_n(c.diff)} is smaller than {_n(s)} and the interval reaches beyond it"
    return Judged(e, verdict, why, c.diff, c.ci, n_run, n_against)


def judge(doc: HypothesesDoc, final_infos: Mapping[str, Mapping[str, Any]], metrics: Sequence[Any]) -> list[Judged]:
    """Every effective hypothesis against the runs' records ({"run_i": final_info}); an amended
    one with its registered form judged too (`Judged.registered`)."""
    registered = {h.id: h for h in doc.hypotheses}
    out = []
    for e in doc.effective():
        judged = judge_one(e, final_infos, metrics)
        if e.amended_after_run is not None and not e.added_after_results and e.hypothesis.id in registered:
            original = Effective(registered[e.hypothesis.id], None, False)
            judged = replace(judged, registered=judge_one(original, final_infos, metrics))
        out.append(judged)
    return out


def provisional(doc: HypothesesDoc, final_infos: Mapping[str, Mapping[str, Any]],
                metrics: Sequence[Any]) -> list[str]:
    """One line per effective hypothesis for the prompts: its verdict so far, or that its runs
    have not run yet, with its statement."""
    lines = []
    for j in judge(doc, final_infos, metrics):
        h = j.effective.hypothesis
        waiting = [r for r in (h.run, h.against) if f"run_{r}" not in final_infos]
        line = f"{j.head()}: not decided yet: run {waiting[0]} has no result yet" if waiting else j.line()
        lines.append(f"{line}\n    \"{h.statement}\"")
    return lines


def verdicts_json(doc: HypothesesDoc, judged: Sequence[Judged]) -> dict[str, Any]:
    """The content of hypotheses_verdicts.json."""
    return {"level": stats.LEVEL, "verdicts": [j.to_json() for j in judged], "problem": doc.problem}
