"""Command line: `python -m agent.ideas --template T -n N` (thin: parse, set up, hand over,
print, exit).

Exit codes: 0 every idea written; 2 bad input or missing credentials (nothing written);
4 stopped by --max-cost (the ideas finished before it are written); 5 a replayed session
diverged; 6 some ideas failed (their errors are printed; the others are written).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from agent.ideation.replies import Usage
from agent.ideation.session import LiteratureMode

REFERENCE_DIR = "ideation"
REFERENCE_SESSION = "reference.session.jsonl"
REFERENCE_LITERATURE = "reference.literature"

EPILOG = """\
model selection (first that applies): --model, $AGENT_MODEL, $ANTHROPIC_API_KEY, $OPENAI_API_KEY,
then the template's recorded reference ideation session (templates/T/ideation/reference.session.jsonl),
replayed offline with its literature cache (--literature replay), with a banner saying so.

novelty is three-valued: novel, not novel, or unknown (a search failed, was rate-limited past
its budget, or no search returned a paper). `python -m agent.launch --idea NAME` refuses a "not
novel" idea unless --allow-not-novel is given, and warns about an unknown one.

exit codes: 0 every idea written, 2 bad input or credentials, 4 stopped by --max-cost (ideas
finished before are written), 5 replay diverged, 6 some ideas failed (the others are written).

examples:
  python -m agent.ideas --template sae_variants -n 2                      # offline reference session
  python -m agent.ideas --template sae_variants -n 5 --model anthropic/claude-sonnet-4-5 --max-cost 2
"""


def build_parser() -> argparse.ArgumentParser:
    from agent.launch import _positive, _price

    p = argparse.ArgumentParser(
        prog="python -m agent.ideas", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate research ideas for a template, refine them over reflection rounds, "
                    "and check each one's novelty against the literature; one idea file each.")
    p.add_argument("--template", required=True, help="template folder name (e.g. sae_variants)")
    p.add_argument("-n", "--num-ideas", type=_positive(int), default=5, metavar="N", help="ideas to generate (default 5)")
    p.add_argument("--out", metavar="DIR", help="where the idea files go (default ideas/generated/TEMPLATE/, "
                                                "where --idea NAME finds them)")
    p.add_argument("--templates-dir", default=None, help="where templates live (default: the repository's templates/)")
    p.add_argument("--reflections", type=int, default=3, metavar="R", help="reflection rounds per idea, at most (default 3)")
    p.add_argument("--novelty-rounds", type=_positive(int), default=5, metavar="K",
                   help="novelty rounds per idea, at most; the last one decides (default 5)")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="times a reply that breaks the schema is sent back with its errors (default 2)")
    p.add_argument("--literature", choices=("live", "replay", "offline"), default=None,
                   help="live: search online (cached); replay: the cache only, a miss is an error; offline: "
                        "the cache only, a miss is 'unavailable' (default: replay with a reference session, else live)")
    p.add_argument("--literature-cache", metavar="DIR",
                   help="the literature cache (default: the reference session's, else OUT/literature-cache)")
    p.add_argument("--model", help="litellm model string, or replay:PATH (a session file or an ideation journal)")
    p.add_argument("--api-base", help="URL of an OpenAI-compatible server")
    p.add_argument("--max-cost", type=_positive(float), metavar="USD", help="stop cleanly before a call would exceed this cost")
    p.add_argument("--price-per-mtok", type=_price, metavar="INPUT,OUTPUT",
                   help="USD per million input and output tokens, for a model litellm has no price for")
    p.add_argument("--quiet", action="store_true", help="only warnings, errors and the summary")
    return p


def _money(usage: Usage) -> str:
    return "unknown" if usage.cost_usd is None else f"${usage.cost_usd:.4f}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from agent.errors import AgentError
    from agent.progress import Console

    console = Console(quiet=args.quiet)
    try:
        return _run(args, console)
    except AgentError as exc:
        console.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        console.error("interrupted: the ideas written so far are kept")
        return 130


def _literature(mode: LiteratureMode, cache: Path) -> Any:
    try:
        from agent.literature import Literature
    except ImportError as exc:
        from agent.errors import UsageError

        raise UsageError(f"the literature layer (agent.literature) cannot be imported: {exc}") from exc
    return Literature(cache, mode)


def _run(args: argparse.Namespace, console: Any) -> int:
    from agent import paths
    from agent import template as template_mod
    from agent.errors import UsageError
    from agent.ideation import output, session
    from agent.journal import Journal
    from agent.llm import LLMClient, LLMSettings, preflight, resolve_model

    templates_dir = Path(args.templates_dir).resolve() if args.templates_dir else paths.TEMPLATES
    if not (templates_dir / args.template).is_dir():
        known = ", ".join(sorted(p.name for p in templates_dir.iterdir() if p.is_dir()))
        raise UsageError(f"unknown template '{args.template}'; templates: {known}")
    template = template_mod.load(templates_dir / args.template)
    reference = template.root / REFERENCE_DIR / REFERENCE_SESSION
    choice = resolve_model(args.model, os.environ, reference)
    settings = LLMSettings(choice.model, api_base=args.api_base, max_cost_usd=args.max_cost,
                           price_per_mtok=args.price_per_mtok)
    preflight(settings, call=False)
    from_reference = choice.source == "reference_session"
    mode: session.LiteratureMode = args.literature or ("replay" if from_reference else "live")
    out_dir = Path(args.out) if args.out else output.default_out(templates_dir, template.name)
    if args.literature_cache:
        cache = Path(args.literature_cache)
    elif from_reference:
        cache = template.root / REFERENCE_DIR / REFERENCE_LITERATURE
    else:
        cache = out_dir / "literature-cache"
    stamp = time.strftime("%Y%m%d_%H%M%S")
    journal_path = out_dir / "sessions" / f"{stamp}.journal.jsonl"
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    journal = Journal(journal_path)
    if choice.banner:
        console.banner(choice.banner)
    console.info(f"ideation: template {template.name}, {args.num_ideas} idea(s), model {choice.model}, "
                 f"literature {mode} (cache {cache})")
    config = session.Settings(template, args.num_ideas, out_dir, templates_dir, choice.model, mode, cache,
                              reflections=max(0, args.reflections), novelty_rounds=args.novelty_rounds,
                              retries=max(0, args.retries))
    result = session.run(config, LLMClient(settings, journal), lambda: _literature(mode, cache),
                         journal, progress=console.info)
    return report(result, console)


def report(result: Any, console: Any) -> int:
    """Print what was written and what failed; the exit code."""
    from agent.ideation.session import Written

    written = [i for i in result.ideas if isinstance(i, Written)]
    failed = [i for i in result.ideas if not isinstance(i, Written)]
    for item in result.ideas:
        if isinstance(item, Written):
            line = f"idea {item.index}: {item.path} — novelty: {item.novelty} ({item.reason})"
            (console.warn if item.novelty != "novel" else console.info)(line)
        else:
            console.error(f"idea {item.index} FAILED, no file written: " + "; ".join(item.errors))
    u = result.usage
    console.info(f"ideation: {len(written)} written, {len(failed)} failed; {u.calls} LLM calls, "
                 f"{u.input_tokens} tokens in, {u.output_tokens} out, cost {_money(u)}; journal {result.journal}")
    if written and result.findable:
        console.info(f"launch one with: python -m agent.launch --idea {written[0].name}")
    elif written:
        console.info("--idea NAME finds ideas under ideas/generated/<template>/: move a file there to launch it")
    if result.stopped:
        console.error(f"stopped by --max-cost: {result.stopped}")
        return 4
    return 6 if failed else 0
