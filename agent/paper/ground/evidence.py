"""What the paper may claim: the numbers the evaluator and the effective config wrote, and
what can be derived from them.

Evidence is only what a run's `final_info.json` holds under metrics, config, measurements,
timings, gates, data and evaluation (and any section of a result file of another shape):
never the LLM's own prose (the runs' descriptions), the training process's self-report, nor
bookkeeping (commits, hashes, dates). A number equals a
value when the value lies within half a unit of the number's last written digit (`0.95`:
±0.005; `0.005`: ±0.0005, so it does not "match" a metric that is 0), with its sign, and
within 5 % of it (`agent.paper.ground.matching`). Derived
values (a difference, ratio or relative change of one metric between two runs) use interval
arithmetic over the metric's printed precision, because authors compute them from the rounded
numbers they see (1.055 / 0.75 - 1 = 40.7%, not 40.6%).

With seeds, the statistics are evidence too (source `statistics`): each run's per-seed values,
standard deviations and 95% interval bounds and half-widths (`0.433 ± 0.004`), the difference
of each run from the baseline on each metric with its Welch interval (`agent.stats`; either
sign, since a paper may write baseline − run), the interval level (`95% CI`), and the numbers
of the hypotheses' verdicts. The evidence also keeps the runs' records and the hypotheses'
verdicts (`hypotheses_verdicts.json`), which the statistical claim rules
(`agent.paper.ground.verdicts`) decide with. Matching a number against it: `agent.paper.ground.matching`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent import stats
from agent.paper.build.spec import MetricSpec, as_specs
from agent.paper.ground import vocabulary

Source = Literal["metrics", "config", "measurements", "timings", "gates", "data", "evaluation", "statistics",
                 "other"]
MatchKind = Literal["direct", "difference", "relative", "ratio"]
_SOURCES = ("metrics", "config", "measurements", "timings", "gates", "data", "evaluation")
_NOT_EVIDENCE = frozenset({"code", "harness", "provenance", "checkpoint", "written_at", "training",
                           "reported", "ignored_from_experiment", "cached_from", "pending"})
"""Bookkeeping (commits, hashes, dates) and the training process's self-report: never evidence.
Any other section (a result file of another shape) is evidence of source `other`."""


@dataclass(frozen=True)
class EvidenceValue:
    """One number of one run's result file."""

    run: str
    """`run_0` (baseline) ... `run_N`."""
    path: str
    """Where it sits, e.g. `metrics.loss`, `config.lr`, `metrics.active/config.n_units` (derived)."""
    value: float
    source: Source
    metric: str
    """The metric it belongs to (`loss`, `active` for `active/n_units`); empty for non-metrics."""
    half: float
    """Half a unit of the metric's printed precision (0 for non-metrics)."""

    def describe(self) -> str:
        return f"{self.run} {self.path} = {self.value:.6g}"


@dataclass(frozen=True)
class Match:
    """How a number of the prose is grounded."""

    kind: MatchKind
    values: tuple[EvidenceValue, ...]
    """One value (direct) or the pair it was derived from."""


@dataclass(frozen=True)
class HypothesisRecord:
    """One pre-registered hypothesis and the verdict code gave it (`hypotheses_verdicts.json`)."""

    id: str
    """`H1`."""
    statement: str
    metric: str
    run: str
    """`run_1`: the run it is about."""
    against: str
    """`run_0` unless the hypothesis compares with another run."""
    expected: str
    """`increase` or `decrease` of the raw value."""
    verdict: str
    """`supported`, `refuted` or `inconclusive`."""
    why: str = ""
    diff: float | None = None
    ci: tuple[float, float] | None = None
    added: bool = False
    """Added after results were seen: not pre-registered, counted nowhere."""


@dataclass(frozen=True)
class Evidence:
    """Everything the paper may rest on."""

    values: tuple[EvidenceValue, ...]
    runs: tuple[str, ...]
    """Run names, baseline first."""
    descriptions: tuple[tuple[str, str], ...]
    """(run, one-line description of what changed vs the baseline)."""
    metrics: tuple[MetricSpec, ...]
    infos: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)
    """The runs' final_info.json records, by run name (per-seed values in `seeds`)."""
    hypotheses: tuple[HypothesisRecord, ...] | None = None
    """The hypotheses' verdicts; None when there is no verdicts file (nothing to check)."""

    def spec(self, metric: str) -> MetricSpec:
        """The metric's spec (an undeclared metric: higher is better, printed with `.4g`)."""
        found = next((s for s in self.metrics if s.name == metric), None)
        return found or MetricSpec(metric, metric.replace("_", " "))

    def compare(self, run: str, against: str, metric: str) -> stats.RunComparison | None:
        """`run` against `against` on `metric` from their per-seed values (`agent.stats`)."""
        if run not in self.infos or against not in self.infos:
            return None
        return stats.compare_runs(self.infos[run], self.infos[against], metric, self.spec(metric).direction,
                                  run, against)

    def seeded(self, run: str) -> bool:
        """Whether the run's record has a seeds section (an old single-seed record has none)."""
        return isinstance(self.infos.get(run, {}).get("seeds"), Mapping)

    def run_indices(self) -> frozenset[int]:
        return frozenset(int(r.split("_")[1]) for r in self.runs if re.fullmatch(r"run_\d+", r))

    def description_text(self) -> str:
        return " \n".join(d for _, d in self.descriptions).lower()

    def series(self) -> dict[str, list[EvidenceValue]]:
        """Metric values grouped by path: the same metric across runs."""
        out: dict[str, list[EvidenceValue]] = {}
        for v in self.values:
            if v.source == "metrics":
                out.setdefault(v.path, []).append(v)
        return out


def _half(value: float, fmt: str) -> float:
    """Half a unit of the last digit `format(value, fmt)` prints."""
    if fmt.endswith("d"):
        return 0.5
    m = re.search(r"\.(\d+)([eEfF%gG]?)$", fmt)
    digits, kind = (int(m.group(1)), m.group(2)) if m else (4, "g")
    if kind in ("f", "F"):
        return 0.5 * 10.0 ** -digits
    if kind == "%":
        return 0.5 * 10.0 ** -(digits + 2)
    if value == 0:
        return 0.0
    exp = math.floor(math.log10(abs(value)))
    return 0.5 * 10.0 ** (exp - (digits if kind in ("e", "E") else max(digits, 1) - 1))


def _leaves(node: Any, path: str) -> Iterable[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{path}.{i}")
    else:
        yield path, node


def _numbers_in_string(text: str) -> list[float]:
    """Numbers written inside a string: `pythia-70m` -> 70 and 7e7, `15.2%` -> 15.2 and 0.152."""
    out = []
    for m in re.finditer(r"(?<![\d.])(\d+(?:\.\d+)?)([kKmMbB%]?)(?![\d])", text):
        out.append(float(m.group(1)))
        if m.group(2) == "%":
            out.append(float(m.group(1)) / 100)
        elif m.group(2):
            out.append(float(m.group(1)) * {"k": 1e3, "m": 1e6, "b": 1e9}[m.group(2).lower()])
    return out


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _statistics(run: str, seeds: Mapping[str, Any], name_of: Callable[[str], str],
                half_of: Callable[[str, float], float]) -> list[EvidenceValue]:
    """A run's seeds section: per-seed values, sd, interval bounds and half-widths; the rest
    (requested, succeeded, n, level) as any other section."""
    out = []
    for key in ("values", "sd", "ci95"):
        table = seeds.get(key)
        for metric, found in (table.items() if isinstance(table, Mapping) else ()):
            name = name_of(metric)
            if key == "ci95":
                if isinstance(found, (list, tuple)) and len(found) == 2 and all(map(_finite, found)):
                    lo, hi = float(found[0]), float(found[1])
                    out += [EvidenceValue(run, f"seeds.ci95.{metric}.{end}", v, "statistics", name, half_of(name, v))
                            for end, v in (("low", lo), ("high", hi), ("half_width", (hi - lo) / 2))]
                continue
            listed = isinstance(found, (list, tuple))
            for i, v in enumerate(found if listed else [found]):
                if _finite(v):
                    path = f"seeds.{key}.{metric}" + (f".{i}" if listed else "")
                    out.append(EvidenceValue(run, path, float(v), "statistics", name, half_of(name, float(v))))
    for key, leaf in seeds.items():
        if key in ("values", "sd", "ci95"):
            continue
        for path, v in _leaves(leaf, f"seeds.{key}"):
            if _finite(v):
                out.append(EvidenceValue(run, path, float(v), "statistics" if key == "level" else "other", "", 0.0))
    return out


def _comparisons(infos: Mapping[str, Mapping[str, Any]], runs: Sequence[str], specs: Sequence[MetricSpec],
                 half_of: Callable[[str, float], float]) -> list[EvidenceValue]:
    """Each run against the baseline on each metric: the difference and its Welch interval
    (bounds, either sign, and half-width), as evidence of both runs."""
    if "run_0" not in infos:
        return []
    declared = {s.name: s for s in specs}
    out = []
    for run in runs:
        if run == "run_0":
            continue
        names = dict.fromkeys([*declared, *(infos[run].get("metrics") or {})])
        for metric in names:
            direction = declared[metric].direction if metric in declared else "higher"
            found = stats.compare_runs(infos[run], infos["run_0"], metric, direction, run, "run_0")
            if found is None or found.comparison.ci is None:
                continue
            (lo, hi), diff = found.comparison.ci, found.comparison.diff
            for end, v in (("diff", diff), ("low", lo), ("high", hi), ("low_reversed", -hi), ("high_reversed", -lo),
                           ("half_width", (hi - lo) / 2)):
                for owner in (run, "run_0"):
                    out.append(EvidenceValue(owner, f"comparisons.{run}-run_0.{metric}.{end}", v, "statistics",
                                             metric, half_of(metric, v)))
    return out


def _hypotheses(doc: Mapping[str, Any] | None) -> tuple[tuple[HypothesisRecord, ...] | None, list[EvidenceValue]]:
    """The verdicts document as records, and its numbers (difference, interval, smallest effect, level)."""
    if not isinstance(doc, Mapping):
        return None, []
    records, values = [], []
    for raw in doc.get("verdicts") or []:
        if not isinstance(raw, Mapping) or not raw.get("id"):
            continue
        bounds = raw.get("ci")
        ci = (float(bounds[0]), float(bounds[1])) if isinstance(bounds, (list, tuple)) and len(bounds) == 2 \
            and all(map(_finite, bounds)) else None
        diff = float(raw["diff"]) if _finite(raw.get("diff")) else None
        run, against = f"run_{raw.get('run')}", f"run_{raw.get('against', 0)}"
        records.append(HypothesisRecord(str(raw["id"]).upper(), str(raw.get("statement", "")), str(raw.get("metric", "")),
                                        run, against, str(raw.get("expected", "")), str(raw.get("verdict", "")),
                                        str(raw.get("why", "")), diff, ci, bool(raw.get("added_after_results"))))
        metric = str(raw.get("metric", ""))
        numbers: list[tuple[str, Any]] = [("diff", diff), ("smallest_effect", raw.get("smallest_effect"))]
        numbers += [("ci.low", ci[0]), ("ci.high", ci[1])] if ci else []
        values += [EvidenceValue(run, f"hypotheses.{raw['id']}.{k}", float(v), "statistics", metric, 0.0)
                   for k, v in numbers if _finite(v)]
        amended = raw.get("amended")  # the post hoc form: its numbers are printed beside the registered
        if isinstance(amended, Mapping):
            for k in ("diff", "smallest_effect"):
                v = amended.get(k)
                if isinstance(v, (int, float)) and _finite(v):
                    values.append(EvidenceValue(f"run_{amended.get('run')}", f"hypotheses.{raw['id']}.amended.{k}",
                                                float(v), "statistics", str(amended.get("metric", "")), 0.0))
    if _finite(doc.get("level")):
        values.append(EvidenceValue("", "hypotheses.level", float(doc["level"]), "statistics", "", 0.0))
    return tuple(records), values


def build_evidence(final_infos: Mapping[str, Mapping[str, Any]], descriptions: Mapping[str, str] | None = None,
                   metrics: Sequence[Any] = (), hypotheses: Mapping[str, Any] | None = None) -> Evidence:
    """Evidence from `run name -> final_info dict`, the runs' descriptions, the metric specs and
    the hypotheses' verdicts (the content of `hypotheses_verdicts.json`, or None)."""
    specs = as_specs(metrics)
    by_name = {s.name: s for s in specs}
    values: list[EvidenceValue] = []
    runs = sorted(final_infos, key=lambda r: (int(r.split("_")[1]) if re.fullmatch(r"run_\d+", r) else 10**6, r))

    def name_of(key: str) -> str:
        spec = by_name.get(key) or by_name.get(key.rsplit(".", 1)[-1])
        return spec.name if spec else key.rsplit(".", 1)[-1]

    def half_of(metric: str, value: float) -> float:
        return _half(value, by_name[metric].format if metric in by_name else ".4g")

    size_keys = vocabulary.known().size_keys  # a count over a width is a share (template.toml)
    for run in runs:
        info = final_infos[run]
        if isinstance(info.get("seeds"), Mapping):
            values += _statistics(run, info["seeds"], name_of, half_of)
        sizes = {k.rsplit(".", 1)[-1]: float(v) for k, v in _leaves(info.get("config", {}), "")
                 if k.rsplit(".", 1)[-1] in size_keys and isinstance(v, (int, float)) and v > 1}
        for path, leaf in _leaves(info, ""):
            top = path.split(".", 1)[0]
            if top in _NOT_EVIDENCE or (top == "seeds" and isinstance(info.get("seeds"), Mapping)):
                continue
            source: Source = top if top in _SOURCES else "other"  # type: ignore[assignment]
            if isinstance(leaf, str) and source in ("config", "gates"):  # pythia-70m, "12.5% of"
                values += [EvidenceValue(run, path, x, source, "", 0.0) for x in _numbers_in_string(leaf)]
            if isinstance(leaf, bool) or not isinstance(leaf, (int, float)) or not math.isfinite(leaf):
                continue
            if source != "metrics":
                values.append(EvidenceValue(run, path, float(leaf), source, "", 0.0))
                continue
            key = path.split(".", 1)[1] if "." in path else path
            spec = by_name.get(key) or by_name.get(key.rsplit(".", 1)[-1])
            name = spec.name if spec else key.rsplit(".", 1)[-1]
            half = _half(float(leaf), spec.format if spec else ".4g")
            values.append(EvidenceValue(run, path, float(leaf), "metrics", name, half))
            for size_key, size in sizes.items():
                values.append(EvidenceValue(run, f"{path}/config.{size_key}", float(leaf) / size, "metrics",
                                            name, half / size))
    values += _comparisons(final_infos, runs, specs, half_of)
    records, stated = _hypotheses(hypotheses)
    values += stated
    descs = tuple((r, d) for r, d in (descriptions or {}).items())  # for claims, never numbers
    return Evidence(tuple(values), tuple(r for r in runs), descs, specs,
                    {r: final_infos[r] for r in runs}, records)
