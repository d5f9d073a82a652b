"""Command line: `python -m agent.launch --idea NAME` (thin: parse, hand over, print, exit).

Exit codes: 0 done; 1 an unexpected error (a bug of ours, a full disk; journaled with its
traceback, resumable); 2 bad input, missing credentials, a busy run directory or an idea found
"not novel" without --allow-not-novel (nothing created); 3 the template or machine cannot run (e.g. the baseline fails); 4 stopped on purpose
and resumable (cost budget, LLM unavailable); 5 a replayed session diverged; 6 a stage failed;
130 interrupted.
Only this module prints; everything it shows is also in the run's journal.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from agent.config import STAGES, LaunchConfig

EPILOG = """\
model selection (first that applies):
  --model, then $AGENT_MODEL, then $ANTHROPIC_API_KEY (a current Claude model), then
  $OPENAI_API_KEY (a current OpenAI model), then the idea's recorded reference session
  (replayed offline, with a banner saying so). --model replay:PATH replays a journal or
  session file on purpose. Before anything is created, one minimal request (at most one
  token out) checks that the provider takes the key and knows the model.

exit codes: 0 done, 1 unexpected error (traceback in RUN_DIR/crashes/, resumable), 2 bad
input, credentials, a busy run directory or a "not novel" idea without --allow-not-novel
(nothing created; a key rejected mid-run keeps
its run directory, resumable once fixed), 3 template/baseline broken,
4 stopped and resumable (--resume RUN_DIR), 5 replay diverged, 6 a stage failed,
130 interrupted.

examples:
  python -m agent.launch --idea orthogonal_sae
  python -m agent.launch --idea orthogonal_sae --model anthropic/claude-sonnet-4-5 --max-cost 5
  python -m agent.launch --idea orthogonal_sae --model openai/qwen --api-base http://localhost:8000/v1 \
      --max-cost 2 --price-per-mtok 0.2,0.6
  python -m agent.launch --resume runs/20261121_120000_orthogonal_sae
"""


PAPER_STAGES = ("writeup", "review")
"""The stages --skip-writeup drops: the paper, and the review of it."""


def _stages(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in STAGES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown stage(s) {bad}; choose from {', '.join(STAGES)}")
    return tuple(s for s in STAGES if s in names)


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if not 0 < value < math.inf:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _price(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or not all(0 <= v < math.inf for v in values):
        raise argparse.ArgumentTypeError(
            f"expected INPUT,OUTPUT: two non-negative numbers of US dollars per million input "
            f"and output tokens (e.g. 3,15), got {text!r}")
    return (values[0], values[1])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m agent.launch",
        description="Run an LLM-driven research loop on an idea: plan, edit, run experiments, "
        "plot, write a paper whose every number traces to a run, and review it on the NeurIPS "
        "form with the integrity findings in hand.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_argument_group("what to run")
    what.add_argument("--idea", action="append", metavar="NAME",
                      help="idea name: templates/*/ideas/NAME.json; repeat it to run several ideas, "
                           "each in a run directory and process of its own (see --jobs)")
    what.add_argument("--jobs", type=_positive(int), default=1, metavar="N",
                      help="with several --idea: how many run at once (default 1); they share the "
                           "GPUs (one per process), the CPU cores, each model's --tpm-limit and "
                           "--max-cost")
    what.add_argument("--template", help="template folder, when the idea name is ambiguous")
    what.add_argument("--allow-not-novel", action="store_true",
                      help="run an idea whose novelty check found it \"not novel\" (refused otherwise)")
    what.add_argument("--templates-dir", default=None, help="where templates live (default: the repository's templates/)")
    what.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or crashed run directory")
    what.add_argument("--stages", type=_stages, default=STAGES, metavar="LIST",
                      help=f"comma-separated stages to run (default: {','.join(STAGES)}); e.g. "
                      "--resume RUN_DIR --stages review reviews the paper of a finished writeup")
    what.add_argument("--skip-writeup", action="store_true",
                      help="same as --stages experiment,plot (no paper, so no review either)")
    model = p.add_argument_group("model")
    model.add_argument("--model", help="litellm model string (anthropic/..., openai/..., ollama/...) or replay:PATH")
    model.add_argument("--api-base", help="URL of an OpenAI-compatible server (vLLM, llama.cpp, Ollama)")
    model.add_argument("--max-cost", type=_positive(float), metavar="USD",
                       help="stop cleanly (resumable) before an LLM call would exceed this cost")
    model.add_argument("--price-per-mtok", type=_price, metavar="INPUT,OUTPUT",
                       help="USD per million input and output tokens, for a model litellm has no "
                       "price for (needed with --max-cost; also counts the journal's cost)")
    model.add_argument("--tpm-limit", type=_positive(int), metavar="TOKENS",
                       help="client-side tokens-per-minute budget: wait instead of being rejected")
    model.add_argument("--llm-timeout", type=_positive(float), default=300.0, metavar="SECONDS",
                       help="seconds one LLM request may take before it counts as a timeout and "
                       "is retried (default 300)")
    model.add_argument("--no-preflight-call", dest="preflight_call", action="store_false",
                       help="skip the one-token request that checks the key and the model at launch")
    budget = p.add_argument_group("experiments")
    budget.add_argument("--max-runs", type=_positive(int), default=5, help="runs after the baseline (default 5)")
    budget.add_argument("--max-attempts", type=_positive(int), default=4,
                        help="executions per run when it fails and is fixed (default 4)")
    budget.add_argument("--max-reflections", type=_positive(int), default=3,
                        help="times a failed edit or lint error goes back to the LLM per turn (default 3)")
    budget.add_argument("--timeout", type=_positive(float), metavar="SECONDS",
                        help="per-run timeout (default: the template's or preset's)")
    budget.add_argument("--seeds", type=_positive(int), metavar="S",
                        help="seeds per run: each run (the baseline too) is trained and evaluated S "
                             "times and reported as means with 95%% intervals (default: the "
                             "preset's or template's, 3 for sae_variants)")
    budget.add_argument("--seed-jobs", type=_positive(int), metavar="J",
                        help="seeds of a run executed at once (default: all; each then gets an "
                             "equal share of the CPU threads)")
    budget.add_argument("--devices", metavar="LIST",
                        help="GPUs to use, as CUDA indices (e.g. 0,2,3): each experiment, evaluation "
                             "and plot process gets one (CUDA_VISIBLE_DEVICES) and waits while all "
                             "are busy (default: every GPU torch sees; none: the CPU)")
    cluster = p.add_argument_group("SLURM (--executor slurm: each experiment and evaluation is a job)")
    cluster.add_argument("--executor", choices=("local", "slurm"), default="local",
                         help="where experiments and evaluations run: local processes (default) or "
                              "SLURM jobs submitted with submitit (the orchestrator may run on a "
                              "login node; run directories must be on a filesystem the nodes share)")
    cluster.add_argument("--slurm-partition", metavar="NAME", help="sbatch --partition")
    cluster.add_argument("--slurm-gres", metavar="GRES", help="sbatch --gres, e.g. gpu:1")
    cluster.add_argument("--slurm-cpus", type=_positive(int), metavar="N", help="sbatch --cpus-per-task")
    cluster.add_argument("--slurm-mem", metavar="MEM", help="sbatch --mem, e.g. 16G")
    cluster.add_argument("--slurm-time", type=_positive(int), metavar="MINUTES",
                         help="sbatch --time (default: the run's timeout plus a margin)")
    cluster.add_argument("--slurm-sbatch", action="append", default=[], metavar="--KEY=VALUE",
                         help="another sbatch option (repeatable), e.g. --slurm-sbatch=--account=ml")
    cluster.add_argument("--slurm-config", metavar="FILE",
                         help="a TOML file of these options (partition, gres, cpus_per_task, mem, "
                              "time_min, extra = [...]); flags win over it")
    budget.add_argument("--preset", help="experiment size: tiny, cpu, gpu (default: best for this machine)")
    budget.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                        help="run experiments and plots without bubblewrap (their environment "
                        "stays allowlisted); the run records that it was unsandboxed")
    paper = p.add_argument_group("paper")
    paper.add_argument("--allow-failing-gates", action="store_true",
                       help="write the paper even if runs fail the plausibility gates (the paper says so)")
    paper.add_argument("--literature-search", action="store_true",
                       help="let the writeup search for citations online (cached; skipped offline)")
    out = p.add_argument_group("output")
    out.add_argument("--runs-dir", default="runs", help="where run directories are created (default runs/)")
    out.add_argument("--quiet", action="store_true", help="no progress lines or live status; only warnings, errors and the final summary")
    return p


def config_from_args(args: argparse.Namespace) -> LaunchConfig:
    stages = tuple(s for s in args.stages if s not in PAPER_STAGES) if args.skip_writeup else args.stages
    return LaunchConfig(
        idea=args.idea[0] if args.idea else None, template=args.template, model=args.model, api_base=args.api_base,
        max_runs=args.max_runs, max_attempts=args.max_attempts, timeout_s=args.timeout,
        seeds=args.seeds, seed_jobs=args.seed_jobs, devices=args.devices,
        executor=args.executor, slurm_partition=args.slurm_partition, slurm_gres=args.slurm_gres,
        slurm_cpus=args.slurm_cpus, slurm_mem=args.slurm_mem, slurm_time_min=args.slurm_time,
        slurm_sbatch=tuple(args.slurm_sbatch), slurm_config=args.slurm_config,
        preset=args.preset, max_cost_usd=args.max_cost, tpm_limit=args.tpm_limit,
        price_per_mtok=args.price_per_mtok, llm_timeout_s=args.llm_timeout,
        preflight_call=args.preflight_call, sandbox=args.sandbox, runs_dir=args.runs_dir, stages=stages, quiet=args.quiet,
        max_reflections=args.max_reflections, allow_failing_gates=args.allow_failing_gates,
        literature_search=args.literature_search, allow_not_novel=args.allow_not_novel,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.idea and not args.resume:
        parser.error("say what to run: --idea NAME, or --resume RUN_DIR")
    if args.idea and args.resume:
        parser.error("--idea and --resume exclude each other: a resumed run keeps its idea")
    if args.skip_writeup and set(args.stages) <= set(PAPER_STAGES):
        parser.error(f"--skip-writeup with --stages {','.join(args.stages)} leaves nothing to run")
    from agent.errors import AgentError
    from agent.progress import Console

    console = Console(quiet=args.quiet)
    if args.idea and len(args.idea) > 1:
        return _many(args, argv, console)
    try:
        from agent import orchestrator

        if args.resume:
            result = orchestrator.resume(Path(args.resume), config_from_args(args), console,
                                         explicit=set(_explicit_flags(argv)))
        else:
            # Resolved here: the sandbox binds it by path, from another working directory.
            templates_dir = Path(args.templates_dir).resolve() if args.templates_dir else None
            result = orchestrator.launch(config_from_args(args), console, templates_dir=templates_dir)
    except AgentError as exc:
        console.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        console.error("interrupted. Everything finished so far is committed; continue with --resume RUN_DIR.")
        return 130
    console.done(result)
    return result.exit_code


def _many(args: argparse.Namespace, argv: list[str] | None, console: object) -> int:
    """Several ideas: each is checked before any starts, then run by `agent.multi`."""
    from agent import ideas, multi, paths
    from agent.errors import AgentError

    templates_dir = Path(args.templates_dir).resolve() if args.templates_dir else paths.TEMPLATES
    try:
        for name in args.idea:
            ideas.check_novelty(ideas.load(ideas.find(name, templates_dir, args.template)),
                                args.allow_not_novel)
    except AgentError as exc:
        console.error(f"{exc}\nnothing was started")  # type: ignore[attr-defined]
        return exc.exit_code
    raw = sys.argv[1:] if argv is None else list(argv)
    return multi.launch_many(list(args.idea), raw, args.jobs, Path(args.runs_dir), args.quiet)


FIELD_OF_FLAG = {"slurm_time": "slurm_time_min", "max_cost": "max_cost_usd", "timeout": "timeout_s", "llm_timeout": "llm_timeout_s",
                 "no_preflight_call": "preflight_call", "no_sandbox": "sandbox", "skip_writeup": "stages"}
"""Flags whose LaunchConfig field has another name."""


def _explicit_flags(argv: list[str] | None) -> list[str]:
    """The LaunchConfig fields of the flags the user typed (so --resume overrides only those)."""
    raw = sys.argv[1:] if argv is None else argv
    names = [a.split("=", 1)[0].lstrip("-").replace("-", "_") for a in raw if a.startswith("--")]
    return [FIELD_OF_FLAG.get(n, n) for n in names]


if __name__ == "__main__":
    sys.exit(main())
