"""The loop you can read in one sitting: prepare the run directory, run the baseline, then
the stages in order. `resume` re-enters the same sequence; finished steps are read back
from the journal instead of being done again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from agent import baseline, ideas, paths, presets
from agent import template as template_mod
from agent.config import LaunchConfig
from agent.context import RunContext
from agent.devices import DevicePool
from agent.errors import AgentError, Crashed, UsageError
from agent.journal import HISTORY_DIR, JOURNAL_NAME, Journal
from agent.multi import RUN_DIR_ENV
from agent.progress import Console
from agent.sandbox import Sandbox
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

    if name not in ("experiment", "plot", "writeup", "review"):
        raise UsageError(f"unknown stage '{name}'")
    stage: Stage = importlib.import_module(f"agent.stages.{name}").run_stage
    return stage


def check_idea(config: LaunchConfig, templates_dir: Path) -> tuple[ideas.Idea, template_mod.Template, str | None]:
    """The idea, its template and a novelty warning, or a UsageError before anything (an LLM
    call included) happens: unknown or malformed idea, assumptions its template does not meet,
    found "not novel" without --allow-not-novel."""
    idea = ideas.load(ideas.find(config.idea or "", templates_dir, config.template))
    template = template_mod.load(templates_dir / idea.template)
    ideas.check_binding(idea, template)
    return idea, template, ideas.check_novelty(idea, config.allow_not_novel)


def launch(config: LaunchConfig, console: Console, templates_dir: Path | None = None) -> LaunchResult:
    """Validate everything that can be validated, then create the run directory and go."""
    idea, template, novelty_warning = check_idea(config, templates_dir or paths.TEMPLATES)
    if novelty_warning:
        console.warn(novelty_warning)
    preset = presets.choose(template, config.preset)
    from agent.llm import preflight, resolve_model

    choice = resolve_model(config.model, os.environ, idea.reference_session)
    warning = preflight(config.llm_settings(choice.model), call=config.preflight_call)
    if warning:
        console.warn(warning)
    sandbox, sandbox_note = _sandbox(config, console)
    pool = _devices(config)
    slurm = _slurm(config)
    # Nothing above created anything; from here on, the run directory exists.
    def first_event(staging: Path) -> None:
        Journal(staging / JOURNAL_NAME).append(
            "launch.started", config=config.to_dict(), idea=idea.name, idea_path=str(idea.path),
            template=template.name, template_root=str(template.root), preset=preset,
            model=choice.model, model_source=choice.source, setup_commit=Workspace(staging).head(),
            novelty=idea.novelty, novelty_warning=novelty_warning,
            preflight_warning=warning, sandbox=sandbox_note, devices=list(pool.gpus) or "cpu")

    ws = Workspace.create(
        config.runs_path, idea.name, template.root, idea.fields,
        extra_files={"preset.json": json.dumps({"preset": preset}) + "\n"} if preset else None,
        latex_skeleton=paths.LATEX, before_publish=first_event,
    )
    ws.lock()
    journal = Journal(ws.root / JOURNAL_NAME)
    if os.environ.get(RUN_DIR_ENV):  # one idea of several: tell the command where it is
        Path(os.environ[RUN_DIR_ENV]).write_text(str(ws.root), encoding="utf-8")
    if choice.banner:
        console.banner(choice.banner)
    console.info(f"run directory: {ws.root}")
    ctx = RunContext(ws, journal, template, idea, config, console, choice.model, preset,
                     sandbox=_with_run_dir(sandbox, ws.root, template.root),
                     llm_factory=_llm_factory(choice.model, config, journal), devices=pool,
                     slurm=slurm(ws.root) if slurm else None)
    return _go(ctx)


def resume(run_dir: Path, overrides: LaunchConfig, console: Console, explicit: set[str]) -> LaunchResult:
    """Continue a run directory: restore it to its last commit, then re-enter the stages."""
    journal_path = run_dir / JOURNAL_NAME
    if not journal_path.is_file() or not (run_dir / ".git").is_dir():
        raise UsageError(f"{run_dir} is not a run directory (no {JOURNAL_NAME} or no git "
                         "repository); pass a folder under runs/")
    ws = Workspace(run_dir)
    ws.lock()  # before anything is read or repaired: one orchestrator per run directory
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
    _kill_leftovers(journal, ws.root)
    lost = ws.restore_clean(keep=[*_unrecorded_outputs(journal), *_job_outputs(journal, ws.root)]) \
        if ws.is_dirty() else []
    template = template_mod.load(Path(started.data["template_root"]))
    if "seeds" in changed:
        before = template.seeds_for(started.data.get("preset"), LaunchConfig.from_dict(
            started.data["config"]).seeds)
        if changed["seeds"] != before:
            raise UsageError(f"this run directory's runs have {before} seed(s) each: a resumed run "
                             "keeps them, so its runs stay comparable; resume without --seeds")
    idea = ideas.load(Path(started.data["idea_path"]))
    model = config.model or started.data["model"]
    journal.append("launch.resumed", restored=lost, head=ws.head(), changed=changed)
    if lost:
        console.info(f"restored the run directory to its last commit; dropped unfinished changes: {', '.join(lost)}")
    from agent.llm import preflight

    preflight(config.llm_settings(model), call=False)  # the run's calls show a rejected key
    sandbox, sandbox_note = _sandbox(config, console)
    pool = _devices(config)
    slurm = _slurm(config)
    journal.append("sandbox.checked", sandbox=sandbox_note, devices=list(pool.gpus) or "cpu")
    ctx = RunContext(ws, journal, template, idea, config, console, model, started.data.get("preset"),
                     sandbox=_with_run_dir(sandbox, ws.root, template.root),
                     llm_factory=_llm_factory(model, config, journal), devices=pool,
                     slurm=slurm(ws.root) if slurm else None)
    return _go(ctx)


def _kill_leftovers(journal: Journal, root: Path) -> None:
    """A child (experiment, plot.py, pdflatex) whose orchestrator was killed may still run:
    stop every recorded process group before restoring the directory. A group that already
    ended, or whose pid now belongs to a process outside the run directory, is left alone."""
    from agent import runner

    events = journal.events()
    finished = {(e.data.get("run"), e.data.get("attempt")) for e in events if e.kind == "run.finished"}
    for e in events:
        if e.kind == "run.process" and (e.data["run"], e.data["attempt"]) not in finished:
            if runner.kill_leftover(int(e.data["pgid"]), root):
                journal.append("run.leftover_killed", run=e.data["run"], attempt=e.data["attempt"],
                               pgid=e.data["pgid"])
    for e in journal.of_kind("process.started"):
        if runner.kill_leftover(int(e.data["pgid"]), root):
            journal.append("process.leftover_killed", name=e.data.get("name"), pgid=e.data["pgid"])


def _unrecorded_outputs(journal: Journal) -> list[str]:
    """Outputs of steps that finished (`*.finished` with a `step` and `outputs`) but whose
    commit was not recorded yet: a resume keeps them and commits them, never redoes them."""
    recorded = {e.data.get("step") for e in journal.events() if e.kind.endswith(".recorded")}
    return [out for e in journal.events() if e.kind.endswith(".finished")
            and e.data.get("step") and e.data["step"] not in recorded for out in e.data.get("outputs", [])]


def _sandbox(config: LaunchConfig, console: Console) -> tuple[Sandbox | None, str]:
    """The sandbox for LLM-edited code, checked on this machine, and a line for the journal.
    Without it a run says so loudly: its experiments can write outside their run directory."""
    from agent import sandbox as sandbox_mod

    if not config.sandbox:
        console.banner("NOT SANDBOXED (--no-sandbox): experiments and plots run as you, may write "
                       "anywhere you can and reach the network; only their environment is "
                       "allowlisted.")
        return None, "off: --no-sandbox"
    found = sandbox_mod.check()
    if not found.available:
        console.banner(f"NOT SANDBOXED: {found.reason}. Experiments and plots run as you and may "
                       "write anywhere you can; only their environment is allowlisted. Install "
                       "bubblewrap, or pass --no-sandbox to accept this explicitly.")
        return None, f"unavailable: {found.reason}"
    from harness import cache

    # In view of every child: the harness's caches (read-only; harness.sae.prepare alone writes them)
    seen = (cache.root(), sandbox_mod.hub_cache())
    return sandbox_mod.Sandbox(writable=(), visible=seen), f"bubblewrap: {found.reason}"


def _slurm(config: LaunchConfig) -> Callable[[Path], object] | None:
    """With `--executor slurm`: the options checked and SLURM's commands found (before anything
    is created), and how to make the executor for a run directory (its jobs' files go to the
    run's `slurm/`, ignored by git). A UsageError says what is missing."""
    if config.executor != "slurm":
        return None
    from agent.executors.slurm import SlurmExecutor

    options = config.slurm_options()
    probe = SlurmExecutor(options, Path("slurm"))
    problem = probe.check()
    if problem:
        raise UsageError(f"--executor slurm: {problem}")
    return lambda root: SlurmExecutor(options, root / "slurm")


def _job_outputs(journal: Journal, root: Path) -> list[str]:
    """The run folders SLURM jobs a crash of ours left queued or running write to: a resume
    keeps them, reattaches and collects (never submits the same run twice)."""
    finished = {e.data.get("job_id") for e in journal.of_kind("slurm.finished")}
    keys = [str(e.data.get("key", "")) for e in journal.of_kind("slurm.submitted")
            if e.data.get("job_id") not in finished]
    runs = {k.split("/")[0].removeprefix("run") for k in keys if k.startswith("run")}
    return [f"run_{r}" for r in sorted(runs) if (root / f"run_{r}").exists()]


def _devices(config: LaunchConfig) -> DevicePool:
    """The GPUs this launch's processes take one each: `--devices`, else those torch sees."""
    from agent import devices

    return DevicePool(devices.parse(config.devices) if config.devices else devices.discover())


def _with_run_dir(sandbox: Sandbox | None, root: Path, template_root: Path) -> Sandbox | None:
    """The run directory in view and writable, its history and journal not (see
    `Sandbox.readonly`); the template's folder in view (its manifest holds the gates the
    evaluator applies)."""
    if sandbox is None:
        return None
    return replace(sandbox, writable=(root, *sandbox.writable),
                   visible=(*sandbox.visible, template_root, root),
                   readonly=(root / ".git", root / JOURNAL_NAME, root / HISTORY_DIR))


def _llm_factory(model: str, config: LaunchConfig, journal: Journal) -> Callable[[], object]:
    def make() -> object:
        from agent.llm import LLMClient

        return LLMClient(config.llm_settings(model), journal)
    return make


def _go(ctx: RunContext) -> LaunchResult:
    """Baseline, then each requested stage; a stage that already finished is skipped."""
    try:
        baseline.ensure(ctx)
        summaries = []
        for name in ctx.config.stages:
            done = ctx.find("stage.finished", stage=name)
            verified = ctx.find("verify.finished")
            if name == "review" and done is not None and verified is not None and verified.seq > done.seq:
                done = None  # runs were re-executed since the review: review with those results
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
        _commit_journal(ctx, f"journal: launch stopped ({type(exc).__name__}, exit {exc.exit_code})")
        ctx.console.stop_status()
        report = _write_report(ctx)
        hint = f"\nrun directory: {ctx.ws.root}" + (f"\nreport: {report}" if report else "")
        if exc.exit_code in (1, 4, 5, 130):
            hint += f"\ncontinue with: python -m agent.launch --resume {ctx.ws.root}"
        elif exc.exit_code == 2:  # e.g. a key rejected mid-run: fix it, nothing is lost
            hint += (f"\nonce that is fixed, continue with: python -m agent.launch --resume "
                     f"{ctx.ws.root} (with the corrected flags, e.g. --model or --api-base)")
        exc.args = (f"{exc}{hint}",)
        raise
    except KeyboardInterrupt:
        ctx.record("launch.stopped", error="KeyboardInterrupt", message="interrupted", exit_code=130)
        _commit_journal(ctx, "journal: launch interrupted")
        ctx.console.stop_status()
        _write_report(ctx)
        raise
    except Exception as exc:  # a bug of ours, or the machine (disk full, git failing)
        ctx.console.stop_status()
        raise _crashed(ctx, exc) from exc
    tokens, cost = ctx.spent()
    cost_text = "unknown" if cost is None else f"${cost:.2f}"
    ctx.record("launch.finished", tokens=tokens, cost_usd=cost)
    _commit_journal(ctx, "journal: launch finished")
    report = _write_report(ctx)
    shown = [f"report: {report} (open it in a browser)"] if report else []
    summary = "\n".join([f"done: {ctx.ws.root}", *summaries, f"LLM tokens: {tokens}, cost: {cost_text}", *shown])
    return LaunchResult(ctx.ws.root, 0, summary)


def _commit_journal(ctx: RunContext, message: str) -> None:
    """The journal's last events into the history. Best effort: a launch that stops because
    git or the disk fails still reports why; its next commit carries these events."""
    try:
        ctx.ws.commit_journal(message)
    except Exception as exc:  # noqa: BLE001 - reported, never masks the stop being reported
        ctx.console.warn(f"could not commit the journal's last events ({exc}); the next "
                         "commit (e.g. after --resume) carries them")


def _write_report(ctx: RunContext) -> Path | None:
    """`report.html` for a person: after every launch, stopped ones too. A report that cannot
    be written never hides how the launch ended; the warning says how to write it later."""
    try:
        from agent import report

        return report.write(ctx.ws.root)
    except Exception as exc:  # noqa: BLE001 - reported; the launch's own outcome comes first
        ctx.console.warn(f"could not write report.html ({type(exc).__name__}: {exc}); write it "
                         f"with: python -m agent.report {ctx.ws.root}")
        return None


def _crashed(ctx: RunContext, exc: Exception) -> AgentError:
    """Journal an unexpected exception with its traceback kept in the run directory
    (`crashes/`, ignored by git, so that restoring the directory on resume keeps it)."""
    import traceback

    text = "".join(traceback.format_exception(exc))
    where: Path | None = ctx.ws.root / "crashes" / f"{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}.txt"
    try:
        assert where is not None
        where.parent.mkdir(exist_ok=True)
        where.write_text(text, encoding="utf-8")
    except OSError:  # disk full: the journal line below is then the only record
        where = None
    try:
        ctx.record("launch.stopped", error=type(exc).__name__, message=str(exc)[:2000],
                   exit_code=Crashed.exit_code, traceback=text[-20000:],
                   traceback_file=str(where.relative_to(ctx.ws.root)) if where else None)
    except OSError:
        pass
    else:
        _commit_journal(ctx, f"journal: launch crashed ({type(exc).__name__})")
        _write_report(ctx)
    saved = f"the traceback is in {where}" if where else "the traceback could not be saved"
    return Crashed(
        f"unexpected error: {type(exc).__name__}: {exc}\n{saved}. Everything committed before it "
        f"is kept; once the cause is fixed (e.g. free disk space), continue with: "
        f"python -m agent.launch --resume {ctx.ws.root}")
