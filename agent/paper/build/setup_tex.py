"""The paper-wide macros of results.tex: setup facts, seeds, and the plausibility gates.

Setup facts come from the records, never from prose: the preset, and the facts the template
declares (`[[setup]]`: for the SAE `\\SetupModel`, `\\SetupLayer`, `\\SetupDataset`, token counts,
sizes), the baseline's value, marked where the runs differ; `\\SetupSeeds` (every seed a run was trained with) and `\\SetupNumSeeds` (seeds per run),
from the runs' `seeds` sections (`requested`), or `config.seed` in older single-seed records;
`\\SeedSummary`, a sentence on how many seeds each run has, which failed, and which runs
therefore have no interval; `\\GateSummary`, a sentence saying which runs pass or fail which
plausibility gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.paper.build.macros import Macro, number_word
from agent.stats import LEVEL

SETUP: tuple[tuple[str, tuple[str, ...], str], ...] = (
    # macro name, where to look in final_info (first found), how to print
    ("SetupPreset", ("preset", "config.preset"), "tt"),
)
"""Setup facts of every template; a template adds its own (`[[setup]]` in template.toml: the
model, the data, sizes). One macro each where every run records the same value."""


def dig(info: Mapping[str, Any], path: str) -> Any:
    """`info["a"]["b"]` for `a.b`, or None."""
    node: Any = info
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _setup_value(value: Any, how: str) -> tuple[str, float | None] | None:
    from pylatex.utils import escape_latex

    if how in ("int", "id"):  # "id": a seed or a year, printed without thousands separators
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            return None
        return (str(int(value)) if how == "id" else f"{int(value):,}".replace(",", "{,}")), float(value)
    if not isinstance(value, str) or not value:
        return None
    text = escape_latex(value)
    return (f"\\texttt{{{text}}}" if how == "tt" else text), None


def run_words(runs: Sequence[str]) -> str:
    """`the baseline, run 2 and run 3`."""
    names = ["the baseline" if r == "run_0" else f"run {r.split('_')[1]}" for r in runs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def gate_summary(infos: Sequence[Mapping[str, Any]], runs: Sequence[str]) -> str:
    """One or two sentences: which runs pass every plausibility gate, and for each gate that
    fails or warns, which runs (gate names as the template declares them)."""
    from pylatex.utils import escape_latex

    failing: dict[str, list[str]] = {}
    warning: dict[str, list[str]] = {}
    for run, info in zip(runs, infos, strict=True):
        for g in info.get("gates", []):
            if isinstance(g, Mapping) and g.get("passed") is False:
                bucket = failing if g.get("severity", "fail") == "fail" else warning
                bucket.setdefault(str(g.get("name")), []).append(run)
    n = len(runs)

    def who(names: list[str]) -> str:
        return ("every run" if n > 1 else "the run") if len(names) == n else run_words(names)

    failed_runs = {r for names in failing.values() for r in names}
    if not failing:
        every = {1: "The run passes", 2: "Both runs (the baseline included) pass"}.get(
            n, f"All {number_word(n).lower()} runs (the baseline included) pass")
        text = every + " every plausibility gate of the template."
    else:
        text = "Plausibility gates: " + "; ".join(
            f"{who(names)} fail{'s' if len(names) == 1 or len(names) == n else ''} {gate}"
            for gate, names in failing.items()) + "."
        passing = [r for r in runs if r not in failed_runs]
        if passing:
            text += f" {run_words(passing).capitalize()} pass{'es' if len(passing) == 1 else ''} every gate."
    if warning:
        text += " Warnings: " + "; ".join(f"{who(names)} trigger{'s' if len(names) == 1 or len(names) == n else ''} {gate}"
                                          for gate, names in warning.items()) + "."
    return escape_latex(text)


def _ints(value: Any) -> list[int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return sorted(value)
    return None


def requested_seeds(info: Mapping[str, Any]) -> list[int] | None:
    """The seeds a run was trained with: `seeds.requested`, else `config.seed` (an int in
    single-seed records, or a list)."""
    seeds = info.get("seeds")
    found = _ints(seeds.get("requested")) if isinstance(seeds, Mapping) else None
    return found if found is not None else _ints(dig(info, "config.seed"))


def seed_count(info: Mapping[str, Any]) -> int:
    """How many independent measurements the run's means rest on: its successful seeds, or 1
    (no seeds section, or seeds that produced identical weights)."""
    seeds = info.get("seeds")
    if not isinstance(seeds, Mapping) or seeds.get("independent", True) is False:
        return 1
    n = seeds.get("n")
    if isinstance(n, int) and not isinstance(n, bool):
        return n
    succeeded = seeds.get("succeeded")
    return len(succeeded) if isinstance(succeeded, list) else 1


def _label(run: str) -> str:
    return "The baseline" if run == "run_0" else f"Run {run.split('_')[1]}"


def seed_summary(infos: Sequence[Mapping[str, Any]], runs: Sequence[str]) -> str:
    """Plain text: the seeds every run was trained with, the ones that failed, and which runs
    have no interval (fewer than 2 successful seeds, or seeds that were not independent)."""
    requested = [requested_seeds(info) or [] for info in infos]
    if not any(isinstance(info.get("seeds"), Mapping) for info in infos):
        return ("Each run was trained with a single seed, so the results have no confidence intervals "
                "and no difference between runs is tested.")
    counts = {len(r) for r in requested}
    level = f"{round(LEVEL * 100)}%"
    first = (f"Every run (the baseline included) was trained with {len(requested[0])} seeds "
             f"({', '.join(map(str, requested[0]))})" if len(counts) == 1 and requested[0] else
             "The runs were trained with different numbers of seeds")
    notes = []
    for run, info, req in zip(runs, infos, requested, strict=True):
        seeds = info.get("seeds")
        if not isinstance(seeds, Mapping):
            notes.append(f"{_label(run)} was trained with a single seed, so it has no interval.")
            continue
        succeeded = _ints(seeds.get("succeeded")) or []
        failed = [s for s in req if s not in succeeded]
        n = seed_count(info)
        if seeds.get("independent", True) is False:
            notes.append(f"{_label(run)}'s seeds produced identical weights, so they count as one "
                         "measurement and it has no interval.")
        elif failed or n < len(req):
            which = f" (seed{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))} failed)" if failed else ""
            tail = ", so it has no interval" if n < 2 else ""
            notes.append(f"{_label(run)}: {n} of {len(req)} seeds succeeded{which}{tail}.")
        elif len(counts) > 1:
            notes.append(f"{_label(run)}: {n} seeds.")
    if not notes:
        return (f"{first}, all of which succeeded; values are means over the seeds, with {level} "
                "confidence intervals of the mean.")
    return f"{first}; values are means over the successful seeds. " + " ".join(notes)


def setup_macros(infos: Sequence[Mapping[str, Any]], runs: Sequence[str],
                 facts: Sequence[Any] = ()) -> list[Macro]:
    """`\\Setup...` macros for the facts every run shares (the preset and the template's
    `facts`, `agent.template.SetupFact`), the seeds, `\\GateSummary`."""
    from pylatex.utils import escape_latex

    out = []
    for name, paths, how in (*SETUP, *((f.macro, f.paths, f.format) for f in facts)):
        found = [next((v for p in paths if (v := dig(info, p)) is not None), None) for info in infos]
        shown = _setup_value(found[0], how) if found else None
        if shown is None:
            continue
        if len({repr(v) for v in found}) > 1:  # still defined, so a paper citing it compiles
            out.append(Macro(name, f"{shown[0]} (baseline; runs differ)", "", "", "setup", None))
        else:
            out.append(Macro(name, shown[0], "", "", "setup", shown[1]))
    lists = [seeds for info in infos if (seeds := requested_seeds(info)) is not None]
    if lists:
        every = sorted({s for run_seeds in lists for s in run_seeds})
        out.append(Macro("SetupSeeds", ", ".join(map(str, every)), "", "", "setup",
                         float(every[0]) if len(every) == 1 else None))
        per_run = len(lists[0])
        if len({len(run_seeds) for run_seeds in lists}) == 1:
            out.append(Macro("SetupNumSeeds", str(per_run), "", "", "setup", float(per_run)))
        else:
            out.append(Macro("SetupNumSeeds", f"{per_run} (baseline; runs differ)", "", "", "setup", None))
    if infos:
        out.append(Macro("SeedSummary", escape_latex(seed_summary(infos, runs)), "", "", "seeds", None))
    if any(info.get("gates") for info in infos):
        out.append(Macro("GateSummary", gate_summary(infos, runs), "", "", "gates", None))
    return out
