"""The integrity report a reviewer receives: what code found wrong with a paper and its runs,
numbered F1..Fn. Assembled from the writeup's `review.json` (failing plausibility gates,
grounding findings with their sentence, paper checks, a compile that was not ok) and from the
last reproduction of the runs (`python -m agent.replay RUN --verify`, journaled as
`verify.finished`): a run that differs or failed to run is a finding, one that reproduced is
context.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

FindingSource = Literal["gates", "grounding", "checks", "compile", "reproduction"]


@dataclass(frozen=True)
class IntegrityFinding:
    """One thing code found wrong with the paper or its runs."""

    id: str
    """`F1`, `F2`, ... in the order of the report."""
    source: FindingSource
    """The check that found it."""
    text: str
    """What was found, in words for the reviewer."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IntegrityReport:
    """The findings, and what the reviewer should know besides them."""

    findings: tuple[IntegrityFinding, ...]
    """Numbered F1..Fn; empty when every check passed."""
    context: tuple[str, ...]
    """Facts that are not findings: runs that reproduced, or that none was re-executed."""

    @property
    def ids(self) -> list[str]:
        return [f.id for f in self.findings]


def build(review: dict[str, Any], verify: dict[str, Any] | None) -> IntegrityReport:
    """The report from the writeup's review.json and the last `verify.finished` data (or None)."""
    found: list[tuple[FindingSource, str]] = []
    gates = review.get("gates") or {}
    flag = " (the paper was written anyway, with --allow-failing-gates)" if gates.get("allowed_by_flag") else ""
    found += [("gates", f"plausibility gate failed: {g}{flag}") for g in gates.get("failing") or []]
    found += [("grounding", _grounding(f)) for f in (review.get("grounding") or {}).get("findings") or []]
    found += [("checks", str(p)) for p in review.get("checks") or []]
    compiled = review.get("compile")
    if compiled is not None and compiled.get("status") != "ok":
        errors = "; ".join(compiled.get("errors") or [])
        found.append(("compile", f"the paper did not compile cleanly (status {compiled.get('status')}): "
                                 f"{compiled.get('message', '')}" + (f"; errors: {errors}" if errors else "")))
    context: list[str] = []
    if verify is None:
        context.append("The runs were not re-executed: no reproduction (python -m agent.replay RUN "
                       "--verify) is recorded for this run directory.")
    else:
        runs, reproduced = _reproduction(verify)
        found += [("reproduction", text) for text in runs]
        context += reproduced
    findings = tuple(IntegrityFinding(f"F{i}", source, text) for i, (source, text) in enumerate(found, start=1))
    return IntegrityReport(findings, tuple(context))


def _grounding(f: dict[str, Any]) -> str:
    where = f.get("section") or "?"
    if f.get("line"):
        where += f", line {f['line']}"
    text = (f"[{where}] {f.get('kind', 'finding')}: \"{f.get('text', '')}\" -- "
            f"{f.get('reason', '')}; in the sentence: \"{f.get('context', '')}\"")
    closest = f.get("closest") or []
    return text + (f"; closest real values: {'; '.join(closest)}" if closest else "")


def _reproduction(verify: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(findings, context lines) of one `verify.finished` event's data."""
    tolerance = f"rtol {_num(verify.get('rtol'))}, atol {_num(verify.get('atol'))}"
    findings: list[str] = []
    reproduced: list[str] = []
    for r in verify.get("runs") or []:
        name = f"run_{r.get('run')} (commit {str(r.get('commit') or '?')[:12]})"
        message = f": {r['message']}" if r.get("message") else ""
        if r.get("status") == "reproduced":
            diff = r.get("max_abs_diff")
            reproduced.append(f"Reproduced: {name} was re-executed at its commit and its metrics match "
                              f"the recorded ones within {tolerance}"
                              + (f" (largest absolute difference {_num(diff)})" if diff is not None else "") + ".")
        elif r.get("status") == "differs":
            findings.append(f"{name}, re-executed at its commit, gives other metrics than "
                            f"recorded (tolerance {tolerance}): {_differences(r.get('differences') or [])}"
                            + (f"; largest absolute difference {_num(r['max_abs_diff'])}"
                               if r.get("max_abs_diff") is not None else "") + message)
        else:
            findings.append(f"{name} could not be re-executed at its commit "
                            f"(status {r.get('status')}){message}")
    if not verify.get("runs"):
        reproduced.append("A reproduction was run but re-executed no run.")
    return findings, reproduced


def _differences(diffs: Iterable[dict[str, Any]]) -> str:
    parts = [f"{d.get('metric')} recorded {_num(d.get('recorded'))}, reproduced {_num(d.get('reproduced'))}"
             for d in diffs]
    return "; ".join(parts) or "no metric named"


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, int | float) else str(value)
