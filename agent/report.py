"""`report.html`: one static page that shows a whole run to a person reviewing it.

  python -m agent.report RUN      writes RUN/report.html and prints its path and size

RUN is a run directory or a `git clone` of one. The page opens from `file://` with no server
and no network: styles, the small script (expand/collapse all; the page works without it),
figures and the paper's first page are inline. Everything read from the run (LLM replies,
notes, diffs, file names) is escaped by the template's autoescaping, every URL is checked and
a content security policy lets nothing else run or load (`report_urls`). Exit codes: 0 written,
2 not a run directory, 1 an unexpected error.
"""

from __future__ import annotations

import argparse
import base64
import logging
import sys
import time
from pathlib import Path
from typing import Any

from agent import report_data, report_urls, runfiles
from agent.report_checks import checks, is_clean
from agent.report_data import ReportData

REPORT_NAME = "report.html"
TEMPLATE = "report.html.j2"
SCRIPT = "report.js"
"""The page's one script (expand/collapse): inlined, and allowed by its hash (report_urls.policy)."""
MAX_IMAGE_BYTES = 8 * 2**20
"""A figure larger than this is linked, not inlined."""
PDFTOPPM_TIMEOUT_S = 60


def write(root: Path) -> Path:
    """Write `root/report.html` and return its path. Raises UsageError only for a folder that
    is not a run directory; every missing piece of a run is said on the page instead."""
    return _write(root)[0]


def _write(root: Path) -> tuple[Path, Exception | None]:
    """The page written, and the bug that left only an error page there (None: none)."""
    hist = report_data.load(root)
    error: Exception | None = None
    try:
        html = render(report_data.gather(hist))
    except Exception as exc:  # noqa: BLE001 - at the end of a launch, a page saying why beats none
        logging.getLogger(__name__).exception("report.html could not be rendered")
        html, error = _fallback(hist.root, exc), exc
    out = hist.root / REPORT_NAME  # ignored by the run's git (a temporary file beside it would not be)
    out.write_text(html, encoding="utf-8")
    return out, error


def render(data: ReportData) -> str:
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(clock=_clock, date=_date, duration=_duration, money=_money, num=_num, model=_model,
                       url=lambda value: report_urls.checked(str(value), data.root))
    script = (Path(__file__).parent / "templates" / SCRIPT).read_text(encoding="utf-8")
    found = checks(data)
    css, diffs = _highlight(data)
    return env.get_template(TEMPLATE).render(
        d=data, checks=found, clean=is_clean(found), pygments_css=Markup(css), diffs=diffs,
        script=Markup(script), csp=report_urls.policy(script),
        images={f.name: _data_uri(f.path) for f in data.figures if f.path is not None},
        paper_page=_first_page(data.root) if data.paper_pdf else None,
        generated=time.time(), tz=time.strftime("%Z (UTC%z)"),
        problems=sum(c.level == "problem" for c in found), warnings=sum(c.level == "warning" for c in found))


def _fallback(root: Path, exc: Exception) -> str:
    """A page that says the report could not be built, and how to see the run anyway."""
    import html
    import traceback

    text = html.escape("".join(traceback.format_exception(exc)))
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>run report: error</title>"
            "</head><body><h1>The report of this run could not be built</h1>"
            f"<p>This is a bug in agent.report, not a problem of the run. The run's history: "
            f"<code>python -m agent.replay {html.escape(str(root))}</code>.</p><pre>{text}</pre></body></html>\n")


def _highlight(data: ReportData) -> tuple[str, dict[int, Any]]:
    """The pygments style for diffs and each step's diff as highlighted HTML (escaped by pygments)."""
    from markupsafe import Markup
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import DiffLexer

    formatter = HtmlFormatter(nowrap=True, style="default")
    lexer = DiffLexer()
    # Quotes need no escaping in text: JSON diffs would otherwise grow by 5 bytes a quote.
    diffs = {v.step.n: Markup(highlight(v.diff, lexer, formatter).replace("&quot;", '"').replace("&#39;", "'"))
             for v in data.steps if v.diff}
    return formatter.get_style_defs(".diff"), diffs


def _data_uri(path: Path | None, mime: str = "image/png") -> str | None:
    try:
        if path is None:
            return None
        with runfiles.open_file(path) as f:  # plot.py may have left a link to a file outside
            data = f.read(MAX_IMAGE_BYTES + 1)
        return None if len(data) > MAX_IMAGE_BYTES else f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    except OSError:
        return None


def _first_page(root: Path) -> str | None:
    """paper.pdf's first page as a PNG data URI (60 dpi), or None without pdftoppm or on failure."""
    from agent import pdftools

    png = pdftools.first_page_png(root / "paper.pdf", dpi=60, timeout_s=PDFTOPPM_TIMEOUT_S)
    if png is None or len(png) > MAX_IMAGE_BYTES:
        return None
    return f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}"


# --- filters -------------------------------------------------------------------------------

def _clock(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%H:%M:%S", time.localtime(ts))


def _date(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _money(cost: float | None) -> str:
    if cost is None:
        return "unknown"
    return f"${cost:.2f}" if cost >= 0.01 or cost == 0 else f"${cost:.4f}"


def _model(name: str | None) -> str:
    """A model's name; a replay as `replay: <file name>` (the whole path is in the banner)."""
    if not name:
        return "unknown"
    return f"replay: {Path(name[7:]).name}" if name.startswith("replay:") else name


def _num(n: int | float) -> str:
    return f"{n:,}"


# --- command line ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agent.report",
                                description="Write RUN/report.html: one static page showing the whole run "
                                "(works on a run directory or a git clone of one; opens from file://).",
                                epilog="exit codes: 0 written, 2 not a run directory, 1 unexpected error")
    p.add_argument("run_dir", metavar="RUN", help="a run directory (runs/<id>) or a clone of its repository")
    args = p.parse_args(argv)
    from agent.errors import AgentError

    try:
        out, error = _write(Path(args.run_dir))
    except AgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if error is not None:
        print(f"error: the report could not be built ({type(error).__name__}: {error}); {out} says so",
              file=sys.stderr)
        return 1
    size = out.stat().st_size
    print(f"{out} ({size / 1024:,.0f} KiB)" if size >= 1024 else f"{out} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
