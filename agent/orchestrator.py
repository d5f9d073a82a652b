"""The loop you can read in one sitting: prepare the run directory, run the baseline, then
the stages in order. `resume` re-enters the same sequence; finished steps are read back
from the journal instead of being done again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent import baseline, ideas, paths, presets
from agent import template as template_mod
from agent.config import LaunchConfig
from agent.context import RunContext
from agent.errors import AgentError, UsageError
from agent.journal import JOURNAL_NAME, Journal
from agent.progress import Console
from agent.workspace import Workspace

Stage = Callable[[RunContext], str]


@dataclass(frozen=True)
class LaunchResult:
    """How a launch ended, for the CLI."""

    run_dir: Path
    exit_code: int
    summary: str


def _stage_fn(name: str) -> Stage:
    # Imported on use: a stage may pull in heavy modules (LaTeX, plotting).
    import importlib

    if name not in ("experiment", "plot", "writeup"):
        raise UsageError(f"unknown stage '{name}'")
    stage: Stage = importlib.import_module(f"agent.stages.{name}").run_stage
    return stage


def launch(config: LaunchConfig, console: Console, templates_dir: Path | None = None) -> LaunchResult:
    """Validate everything that can be validated, then create the run directory and go."""
    templates_dir = templates_dir or paths.TEMPLATES
    idea = ideas.load(ideas.find(config.idea or "", templates_dir, config.template))
    template = template_mod.load(templates_dir / idea.template)
    ideas.check_binding(idea, template)
    preset = presets.choose(template, config.preset)
    from agent.llm import preflight, resolve_model

    choice = resolve_model(config.model, os.environ, idea.reference_session)
    preflight(choice.model, config.api_base)
    # Nothing above created anything; from here on, the run directory exists.
    ws = Workspace.create(
        config.runs_path, idea.name, template.root, idea.fields,
        extra_files={"preset.json": json.dumps({"preset": preset}) + "\n"} if preset else None,
        latex_skeleton=paths.LATEX,
    )
    journal = Journal(ws.root / JOURNAL_NAME)
    journal.append("launch.started", config=config.to_dict(), idea=idea.name, idea_path=str(idea.path),
                   template=template.name, template_root=str(template.root), preset=preset,
                   model=choice.model, model_source=choice.source, setup_commit=ws.head())
    if choice.banner:
        console.banner(choice.banner)
    console.info(f"run directory: {ws.root}")
    ctx = RunContext(ws, journal, template, idea, config, console, choice.model, preset,
                     llm_factory=_llm_factory(choice.model, config, journal))
    return _go(ctx)


def resume(run_dir: Path, overrides: LaunchConfig, console: Console, explicit: set[str]) -> LaunchResult:
    """Continue a run directory: restore it to its last commit, then re-enter the stages."""
    journal_path = run_dir / JOURNAL_NAME
    if not journal_path.is_file():
        raise UsageError(f"{run_dir} is not a run directory (no {JOURNAL_NAME}); pass a folder under runs/")
    journal = Journal(journal_path)
    if journal.recovered_tail is not None:
        console.info("journal: a line cut off by a crash was found and dropped")
    started = next((e for e in journal.events() if e.kind == "launch.started"), None)
    if started is None:
        raise UsageError(f"{journal_path} has no launch.started event: cannot resume")
    config = LaunchConfig.from_dict(started.data["config"])
    # Flags typed on the resume command line win (e.g. a larger --max-cost).
    changed = {k: v for k, v in overrides.to_dict().items() if k in explicit and k not in ("idea", "resume")}
    config = LaunchConfig.from_dict({**config.to_dict(), **changed})
    ws = Workspace(run_dir)
    _kill_leftovers(journal, ws.root)
    lost = ws.restore_clean() if ws.is_dirty() else []
    template = template_mod.load(Path(started.data["template_root"]))
    idea = ideas.load(Path(started.data["idea_path"]))
    model = config.model or started.data["model"]
    journal.append("launch.resumed", restored=lost, head=ws.head(), changed=changed)
    if lost:
        console.info(f"restored the run directory to its last commit; dropped unfinished changes: {', '.join(lost)}")
    from agent.llm import preflight

    preflight(model, config.api_base)
    ctx = RunContext(ws, journal, template, idea, config, console, model, started.data.get("preset"),
                     llm_factory=_llm_factory(model, config, journal))
    return _go(ctx)


def _kill_leftovers(journal: Journal, root: Path) -> None:
    """An experiment whose orchestrator was killed may still run: stop it before restoring."""
    from agent import runner

    events = journal.events()
    finished = {(e.data.get("run"), e.data.get("attempt")) for e in events if e.kind == "run.finished"}
    for e in events:
        if e.kind == "run.process" and (e.data["run"], e.data["attempt"]) not in finished:
            if runner.kill_leftover(int(e.data["pgid"]), root):
                journal.append("run.leftover_killed", run=e.data["run"], attempt=e.data["attempt"],
                               pgid=e.data["pgid"])


def _llm_factory(model: str, config: LaunchConfig, journal: Journal) -> Callable[[], object]:
    def make() -> object:
        from agent.llm import LLMClient, LLMSettings

        settings = LLMSettings(model=model, api_base=config.api_base, tpm_limit=config.tpm_limit,
                               max_cost_usd=config.max_cost_usd)
        return LLMClient(settings, journal)
    return make


def _go(ctx: RunContext) -> LaunchResult:
    """Baseline, then each requested stage; a stage that already finished is skipped."""
    try:
        baseline.ensure(ctx)
        summaries = []
        for name in ctx.config.stages:
            done = ctx.find("stage.finished", stage=name)
            if done is not None:
                summaries.append(f"{name}: {done.data.get('summary', 'done')} (already done)")
                continue
            ctx.console.stage(name)
            ctx.record("stage.started", stage=name)
            summary = _stage_fn(name)(ctx)
            ctx.record("stage.finished", stage=name, summary=summary)
            ctx.crashpoint("stage_finished")
            summaries.append(f"{name}: {summary}")
            ctx.console.stop_status()
            ctx.console.info(f"{name}: {summary}")
    except AgentError as exc:
        ctx.record("launch.stopped", error=type(exc).__name__, message=str(exc), exit_code=exc.exit_code)
        ctx.console.stop_status()
        hint = f"\nrun directory: {ctx.ws.root}"
        if exc.exit_code in (4, 5, 130):
            hint += f"\ncontinue with: python -m agent.launch --resume {ctx.ws.root}"
        exc.args = (f"{exc}{hint}",)
        raise
    tokens, cost = ctx.spent()
    cost_text = "unknown" if cost is None else f"${cost:.2f}"
    ctx.record("launch.finished", tokens=tokens, cost_usd=cost)
    summary = "\n".join([f"done: {ctx.ws.root}", *summaries, f"LLM tokens: {tokens}, cost: {cost_text}"])
    return LaunchResult(ctx.ws.root, 0, summary)
