"""The processes `agent.template_check` starts on a scratch copy of a template, confined as the
loop confines them: the harness's cache-filling step (`agent.baseline.prepare`'s sandbox and
bound), the baseline as a user types it (`python experiment.py --out_dir=run_0`, by hand: no
`HARNESS_EVALUATOR`, so the template's `finish` runs its evaluator itself), and plot.py with
the trusted figure renderer (`agent.stages.plot`'s sandboxes).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from agent import runner
from agent.executors import LOCAL, Process
from agent.runner import RunOutcome
from agent.sandbox import Sandbox
from agent.template import Template

PLOT_TIMEOUT_S = 600
RENDER_TIMEOUT_S = 300


def prepare(template: Template, preset: str | None, base: Sandbox | None, work: Path,
            timeout_s: float | None) -> str | None:
    """Fill the harness's caches for `preset` (the contract's `PREPARE`); why not, or None."""
    from agent import baseline, presets
    from harness import cache, provenance

    contract = template.contract
    assert contract is not None and contract.PREPARE
    hub = presets.needs_network(template, preset)
    bound = baseline.prepare_timeout(template, preset, template.timeout_for(preset, timeout_s))
    cwd = cache.root() if base is not None else work
    cwd.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="template-check-prepare-") as logs:
        outcome = LOCAL.run(Process(
            tuple(provenance.prepare_command(preset, module=contract.PREPARE)), cwd=cwd,
            log_dir=Path(logs), timeout_s=bound, name="prepare",
            sandbox=baseline.prepare_sandbox(base, template, preset),
            pass_env=baseline.HUB_TOKENS if hub else ()))
    if outcome.ok:
        return None
    return (f"{contract.PREPARE} (filling the harness's caches for preset {preset or 'default'}) "
            f"{outcome.describe()}; run `python -m {contract.PREPARE}"
            f"{' --preset ' + preset if preset else ''}` to see why. The end of its stderr:\n"
            + outcome.stderr_tail[-1500:])


def run_experiment(template: Template, preset: str | None, base: Sandbox | None, work: Path,
                   timeout_s: float | None) -> RunOutcome:
    """`python experiment.py --out_dir=run_0` in `work`, writing only `work/run_0` (where its
    stdout.txt and stderr.txt go), with the preset in EXPERIMENT_PRESET."""
    run_0 = work / "run_0"
    run_0.mkdir(parents=True, exist_ok=True)
    env = {"EXPERIMENT_PRESET": preset} if preset else {}
    if template.evaluator:  # as under the loop: the hub presets were fetched by the preparation
        env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    return LOCAL.run(Process(
        tuple(template.command_for("run_0")), cwd=work, log_dir=run_0,
        timeout_s=template.timeout_for(preset, timeout_s), env_extra=env,
        sandbox=replace(base, writable=(run_0,)) if base is not None else None,
        pass_env=template.pass_env))


def render_figures(template: Template, work: Path, base: Sandbox | None) -> tuple[str, list[str]]:
    """plot.py's declaration drawn by the trusted renderer: (what is wrong or "", the figures
    drawn). plot.py may write only new files, the renderer only what the declaration names."""
    from agent.stages.plot import SPEC, declared_files, figure_problem
    from harness import provenance

    logs = work / "logs"

    def confined(writable: list[str]) -> Sandbox | None:
        if base is None:
            return None
        kept = tuple(p for p in sorted(work.iterdir()) if p.name not in writable)
        return replace(base, writable=(work,), readonly=kept)

    plot = LOCAL.run(Process(
        tuple(template.plot_command), cwd=work, log_dir=logs, timeout_s=PLOT_TIMEOUT_S, name="plot",
        sandbox=confined([*template.figures, SPEC, "logs"]), pass_env=template.pass_env,
        env_extra={"HARNESS_FIGURES": "declare", "CUDA_VISIBLE_DEVICES": ""}))
    if not plot.ok:
        return (f"`{' '.join(template.plot_command)}` {plot.describe()}; the end of its stderr:\n"
                f"{plot.stderr_tail[-1500:]}"), []
    if not (work / SPEC).is_file():
        return (f"`{' '.join(template.plot_command)}` declared no figures: it must write {SPEC} "
                "(see harness/figure_spec.py; the paper shows only figures the renderer draws)"), []
    declared = declared_files(work / SPEC)
    render = LOCAL.run(Process(
        tuple(provenance.figures_command(Path("."), manifest=template.root / "template.toml")),
        cwd=work, log_dir=logs, timeout_s=RENDER_TIMEOUT_S, name="render",
        sandbox=confined(declared), env_extra={"CUDA_VISIBLE_DEVICES": ""}))
    stdout = runner.log_paths(logs, "render")[0]
    receipt = runner.last_json(stdout.read_text(encoding="utf-8", errors="replace") if stdout.is_file() else "")
    problems = [str(p) for p in receipt.get("problems") or []]
    if problems:
        return f"the figure renderer refused {SPEC}: " + "; ".join(problems[:3]), []
    if not render.ok:
        return f"the figure renderer {render.describe()}: {render.stderr_tail[-800:]}", []
    drawn = [f for f in receipt.get("rendered") or [] if f in declared and figure_problem(work / f) is None]
    missing = [f for f in template.figures if f not in drawn]
    if missing:
        return (f"{', '.join(missing)} (template.toml's 'figures') not drawn: declare them in "
                f"{SPEC} from plot.py"), drawn
    return "", drawn
