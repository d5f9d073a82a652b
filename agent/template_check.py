"""`python -m agent.template check templates/<name>`: what a template still lacks, in plain words.

One line per check, each `ok`, `missing`, `failed`, `untrusted` or `skipped`, with what was
found or what to do: the manifest (`agent.template.load`), the editable files, the paper's
skeleton, the ideas (each loads and binds), then the baseline exactly as a user types it,
`python experiment.py --out_dir=run_0`, in a scratch copy of the template, sandboxed as the
loop sandboxes experiments when bubblewrap is available. By hand (no `HARNESS_EVALUATOR`), a
template's `finish` runs its evaluator itself, so `run_0/final_info.json` must appear, its
provenance verify (`agent.runs.provenance_problem`), every declared metric be in it and every
gate pass; plot.py must declare figures the trusted renderer draws. A template without a
trusted evaluator passes where it can, and is told that its runs will be marked untrusted.

Exit code: 0 when nothing is missing or failed (a template without an evaluator included),
1 when something is, 2 for a usage error (an unknown preset, a folder that is not there).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.errors import UsageError
from agent.sandbox import Sandbox
from agent.template import DEFAULT_EDITABLE, Template

Verdict = Literal["ok", "missing", "failed", "untrusted", "skipped"]
FAILING: tuple[Verdict, ...] = ("missing", "failed")
UNTRUSTED = ("no trusted evaluator: its runs will be marked untrusted in notes, paper and report "
             "(the experiment writes final_info.json itself). To add one, see the README's "
             "\"Writing your own template\"")
RESULTS_INPUT = r"\input{results.tex}"
_COPY_SKIP = ("ideas", "__pycache__", ".git", ".pytest_cache", "run_*")
TAIL_LINES = 12


@dataclass(frozen=True)
class Check:
    """One line of the check's output."""

    name: str
    verdict: Verdict
    detail: str
    """What was found, or what is missing and what to do."""

    def line(self) -> str:
        return f"  {self.verdict:<9} {self.name}: {self.detail}"


@dataclass(frozen=True)
class Options:
    """How to check: the preset, whether to run the baseline, its timeout, confinement."""

    preset: str | None = None
    """None: the template's default preset on this machine (`agent.presets.choose`)."""
    quick: bool = False
    """Skip everything that runs code (baseline, evaluator, plot)."""
    timeout_s: float | None = None
    """None: the preset's, else the template's."""
    sandbox: bool = True
    """Confine the baseline and plot with bubblewrap when it is available here."""
    keep: Path | None = None
    """Run the baseline in this folder (kept) instead of a temporary one."""


def check(root: Path, options: Options = Options(),
          say: Callable[[Check], None] = lambda c: None) -> list[Check]:
    """Every check of the template at `root`, in order (`say` sees each as it is made).
    UsageError for a preset this template lacks or this machine cannot run."""
    found: list[Check] = []

    def add(name: str, verdict: Verdict, detail: str) -> None:
        found.append(Check(name, verdict, detail))
        say(found[-1])

    template = _manifest(root, add)
    _files(root, template, add)
    _latex(root, add)
    if template is None:
        add("ideas", "skipped", "fix template.toml first (ideas are bound to it)")
        add("baseline", "skipped", "fix template.toml first")
        return found
    _ideas(root, template, add)
    from agent import presets

    preset = presets.choose(template, options.preset)
    _evaluator(template, add)
    if options.quick:
        add("baseline", "skipped", "--quick: `python experiment.py --out_dir=run_0` was not run")
        return found
    if options.keep is not None:
        _baseline(template, preset, options, options.keep, add)
    else:
        with tempfile.TemporaryDirectory(prefix="template-check-") as scratch:
            _baseline(template, preset, options, Path(scratch), add)
    return found


def _manifest(root: Path, add: Callable[[str, Verdict, str], None]) -> Template | None:
    from agent import template as template_mod

    try:
        t = template_mod.load(root)
    except UsageError as exc:
        add("template.toml", "failed", str(exc))
        return None
    headline = sum(m.headline for m in t.metrics)
    add("template.toml", "ok", f"'{t.name}': {len(t.metrics)} metric(s) ({headline} headline), "
        f"{len(t.gates)} gate(s), presets {', '.join(t.presets) or 'none'}, {t.seeds} seed(s) a run, "
        f"timeout {t.timeout_s:.0f} s")
    return t


def _files(root: Path, template: Template | None, add: Callable[[str, Verdict, str], None]) -> None:
    editable = template.editable if template else DEFAULT_EDITABLE
    plot = template.plot_command[-1] if template and template.plot_command[-1].endswith(".py") else "plot.py"
    wanted = list(dict.fromkeys(["experiment.py", *editable, plot]))
    # notes.txt is created by the loop in every run directory when the template has none
    missing = [f for f in wanted if not (root / f).is_file() and f != "notes.txt"]
    if missing:
        add("files", "missing", f"{', '.join(missing)} (template.toml's 'editable' and run/plot "
            "commands name them): add them to the template folder")
    else:
        made = "" if (root / "notes.txt").is_file() else " (notes.txt: the loop starts one in each run)"
        add("files", "ok", ", ".join(f for f in wanted if (root / f).is_file()) + made)


def _latex(root: Path, add: Callable[[str, Verdict, str], None]) -> None:
    tex, bib = root / "latex" / "template.tex", root / "latex" / "references.bib"
    missing = [p.relative_to(root).as_posix() for p in (tex, bib) if not p.is_file()]
    if missing:
        add("latex", "missing", f"{', '.join(missing)}: the paper is written into latex/template.tex "
            "and cites from latex/references.bib (copy them from templates/sae_variants/latex/)")
    elif RESULTS_INPUT not in tex.read_text(encoding="utf-8", errors="replace"):
        add("latex", "failed", f"latex/template.tex does not {RESULTS_INPUT}: the paper cannot use the "
            "generated results macros and table (add it to the preamble)")
    else:
        add("latex", "ok", f"latex/template.tex ({RESULTS_INPUT}) and latex/references.bib")


def _ideas(root: Path, template: Template, add: Callable[[str, Verdict, str], None]) -> None:
    from agent import ideas

    paths = sorted((root / "ideas").glob("*.json"))
    if not paths:
        add("ideas", "missing", "no ideas/*.json: add at least one idea (the reference system's fields "
            f"plus \"template\": \"{template.name}\")")
        return
    bound, problems = [], []
    for path in paths:
        try:
            ideas.check_binding(ideas.load(path), template)
            bound.append(path.stem)
        except UsageError as exc:
            problems.append(str(exc))
    if problems:
        add("ideas", "failed", f"{len(problems)} of {len(paths)} idea(s) would be refused: " + "; ".join(problems))
    else:
        add("ideas", "ok", f"{len(bound)} load and bind to the template ({', '.join(bound)})")


def _evaluator(template: Template, add: Callable[[str, Verdict, str], None]) -> None:
    contract = template.contract
    if contract is None:
        add("evaluator", "untrusted", UNTRUSTED)
        return
    exports = ", ".join(contract.EXPORTS.values())
    add("evaluator", "ok", f"{template.evaluator} (the experiment exports {exports}"
        + (f", checkpoint {contract.CHECKPOINT}" if contract.CHECKPOINT else "") + ")")


def _sandboxes(template: Template, scratch: Path, options: Options) -> Sandbox | None:
    """The base sandbox of the loop (`agent.orchestrator`): the harness's caches in view,
    the scratch copy and the template folder visible; None where bubblewrap cannot run."""
    if not options.sandbox:
        return None
    from agent import sandbox
    from harness import cache

    if not sandbox.check().available:
        return None
    return Sandbox(writable=(), visible=(cache.root(), sandbox.hub_cache(), template.root, scratch))


def _copy(template: Template, scratch: Path) -> Path:
    work = scratch / template.name
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(template.root, work, ignore=shutil.ignore_patterns(*_COPY_SKIP))
    return work


def _baseline(template: Template, preset: str | None, options: Options, scratch: Path,
              add: Callable[[str, Verdict, str], None]) -> None:
    from agent import baseline_check

    work = _copy(template, scratch)
    base = _sandboxes(template, work, options)
    how = "sandboxed" if base is not None else "NOT sandboxed (bubblewrap unavailable or --no-sandbox)"
    contract = template.contract
    if contract is not None and contract.PREPARE:
        problem = baseline_check.prepare(template, preset, base, work, options.timeout_s)
        if problem:
            add("caches", "failed", problem)
            return
        add("caches", "ok", f"{contract.PREPARE} filled them for preset {preset or 'default'}")
    shown = " ".join(template.command_for("run_0"))
    outcome = baseline_check.run_experiment(template, preset, base, work, options.timeout_s)
    if not outcome.ok:
        add("baseline", "failed", f"`{shown}` {outcome.describe()} (preset {preset or 'none'}, {how}); "
            f"the end of its stderr:\n{_tail(outcome.stderr_tail)}")
        return
    add("baseline", "ok", f"`{shown}` {outcome.describe()} (preset {preset or 'none'}, {how})")
    run_0 = work / "run_0"
    if not _results(template, run_0, add):
        return
    _plot(template, work, base, add)


def _results(template: Template, run_0: Path, add: Callable[[str, Verdict, str], None]) -> bool:
    """Exports, final_info.json, provenance, metrics and gates of run_0; False when there is
    nothing further to check."""
    from agent import runs
    from agent.results import load_run
    from harness import provenance

    contract = template.contract
    if contract is not None:
        wanted = [*contract.EXPORTS.values(), *([contract.CHECKPOINT] if contract.CHECKPOINT else [])]
        absent = [f for f in wanted if not (run_0 / f).is_file()]
        if absent:
            add("exports", "missing", f"run_0/ lacks {', '.join(absent)}: {contract.EXPORT_HINT}")
        else:
            add("exports", "ok", ", ".join(wanted))
    if not (run_0 / "final_info.json").is_file():
        why = (f"its finish() should run {template.evaluator} when HARNESS_EVALUATOR is not set, as "
               "by hand" if contract is not None else
               "the experiment must write it (harness.results.write_final_info)")
        add("final_info.json", "missing", f"the baseline exited 0 but wrote no run_0/final_info.json: {why}")
        return False
    if contract is not None:
        problem = runs.provenance_problem(run_0, provenance.harness_sha256(), contract)
        if problem:
            add("provenance", "failed", f"{problem}: only the evaluator may write final_info.json, "
                "from the files the experiment exported")
        else:
            add("provenance", "ok", f"run_0/final_info.json was written by {contract.EVALUATOR} from the "
                "exported files (hashes and harness sha256 verify)")
    else:
        add("provenance", "untrusted", "run_0/final_info.json was written by the experiment itself")
    try:
        record = load_run(run_0.parent, 0, template)
    except (OSError, ValueError) as exc:
        add("metrics", "failed", f"run_0/final_info.json cannot be read as a result: {exc}")
        return False
    lacking = [m.name for m in template.metrics if not _number(record.metrics.get(m.name))]
    if lacking:
        add("metrics", "failed", f"run_0/final_info.json's metrics lack {', '.join(lacking)}, which "
            "template.toml declares: compute them in the evaluator (or the experiment), or remove "
            "them from [[metrics]]")
    else:
        add("metrics", "ok", f"all {len(template.metrics)} declared metric(s) in run_0/final_info.json")
    failing = record.failing(severity=None)
    hard = [g for g in failing if g.severity == "fail" or g.passed is None]
    words = "; ".join(f"{g.name}: " + ("cannot be evaluated (a value it needs is missing)"
                                       if g.passed is None else g.message) for g in failing)
    if hard:
        add("gates", "failed", f"the baseline fails {len(hard)} of {len(record.gates)} gate(s): {words}")
    else:
        add("gates", "ok", f"{len(record.gates)} gate(s) pass" + (f" (warnings: {words})" if failing else ""))
    return True


def _plot(template: Template, work: Path, base: Sandbox | None,
          add: Callable[[str, Verdict, str], None]) -> None:
    from agent import baseline_check

    problem, drawn = baseline_check.render_figures(template, work, base)
    if problem:
        add("figures", "failed", problem)
    else:
        add("figures", "ok", f"{' '.join(template.plot_command)} declared {', '.join(drawn) or 'no figure'}; "
            "the trusted renderer drew them from run_0")


def _tail(text: str) -> str:
    lines = [ln for ln in text.rstrip().splitlines() if ln.strip()][-TAIL_LINES:]
    return "\n".join(f"      | {ln}" for ln in lines) or "      | (empty)"


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summary(found: list[Check]) -> tuple[str, int]:
    """The closing line and the exit code."""
    bad = [c for c in found if c.verdict in FAILING]
    if bad:
        return (f"{len(bad)} check(s) missing or failed ({', '.join(c.name for c in bad)}): the loop "
                "would refuse this template or its baseline.", 1)
    if any(c.verdict == "untrusted" for c in found):
        return ("The template runs, but without a trusted evaluator: its runs will be marked untrusted "
                "in notes, paper and report.", 0)
    skipped = [c.name for c in found if c.verdict == "skipped"]
    return ("Every check passes" + (f" (skipped: {', '.join(skipped)})." if skipped else "."), 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent.template check",
        description="Check that a template is complete: its manifest, files, ideas, and its baseline "
                    "run by hand (python experiment.py --out_dir=run_0), evaluated, with its gates.")
    parser.add_argument("template", type=Path, help="the template's folder, e.g. templates/sae_variants")
    parser.add_argument("--preset", help="preset to run the baseline with (default: the template's default here)")
    parser.add_argument("--quick", action="store_true", help="do not run the baseline, the evaluator or plot.py")
    parser.add_argument("--timeout", type=float, help="seconds the baseline may take (default: the preset's)")
    parser.add_argument("--no-sandbox", action="store_true", help="run the baseline without bubblewrap")
    parser.add_argument("--keep", type=Path, help="run the baseline in this folder and keep it")
    args = parser.parse_args(argv)
    root = args.template.resolve()
    if not root.is_dir():
        print(f"error: {args.template} is not a folder", file=sys.stderr)
        return 2
    print(f"Checking template {root.name} ({args.template})")
    options = Options(args.preset, args.quick, args.timeout, not args.no_sandbox, args.keep)
    try:
        found = check(root, options, say=lambda c: print(c.line(), flush=True))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    line, code = summary(found)
    print(line)
    return code


if __name__ == "__main__":
    sys.exit(main())

