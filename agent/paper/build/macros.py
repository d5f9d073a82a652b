"""The macros of results.tex: the record of one macro, how macros are named, how numbers print.

Names are letters only, so LaTeX accepts them: run indices and digits in metric names are
spelled in words (`\\RunTwelveAZero`). Macros print in text mode: a minus sign is `$-$`, so a
macro must not be wrapped in `$...$`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from agent.paper.build.spec import MetricSpec

MacroKind = Literal[
    "value", "delta", "delta_pct", "count", "setup", "gates", "seeds",
    "ci_low", "ci_high", "sd", "ci_half",
    "delta_low", "delta_high", "delta_ci", "verdict",
    "hypothesis", "hypothesis_verdict", "hypothesis_diff", "hypothesis_low", "hypothesis_high", "hypothesis_ci",
]
"""value: a run's metric (the mean over its seeds); delta / delta_pct: its difference to the
baseline, signed / relative; count, setup, gates, seeds: paper-wide facts and sentences;
ci_low / ci_high / sd / ci_half: the 95% interval of a run's mean over its seeds, the seeds'
standard deviation, the interval's half-width; delta_low / delta_high: the 95% Welch interval of
the difference to the baseline, delta_ci the same as a phrase; verdict: better, worse, no
detectable difference, or no interval (1 seed); hypothesis*: a pre-registered hypothesis (its
id or statement, verdict, difference between its runs and the interval of that difference)."""

_ONES = ("Zero One Two Three Four Five Six Seven Eight Nine Ten Eleven Twelve Thirteen "
         "Fourteen Fifteen Sixteen Seventeen Eighteen Nineteen").split()
_TENS = "_ _ Twenty Thirty Forty Fifty Sixty Seventy Eighty Ninety".split()
RUN_NAME = re.compile(r"^run_(\d+)$")
MINUS = "$-$"


@dataclass(frozen=True)
class Macro:
    """One macro of results.tex."""

    name: str
    """The control sequence without the backslash, e.g. `RunOneMse`."""
    value: str
    """What it prints (LaTeX), e.g. `0.912` or `+1.3\\%`."""
    run: str
    """The run it belongs to (`run_0` is the baseline); empty for paper-wide macros."""
    metric: str
    """The metric key; empty for paper-wide macros."""
    kind: MacroKind
    """What the macro holds (see `MacroKind`)."""
    number: float | None
    """The unrounded number behind it; None for words and sentences."""
    against: str = ""
    """For a comparison (deltas, intervals of a difference, verdicts, hypotheses): the run it is
    compared with, `run_0` for the baseline; empty otherwise."""

    def line(self) -> str:
        """One line for prompts: `\\RunOneMse = 1.578  (run_1, MSE)`."""
        where = f"  ({self.run}, {self.metric}, {self.kind})" if self.run else ""
        return f"\\{self.name} = {self.value}{where}"


def number_word(n: int) -> str:
    """0..999 in CamelCase words: 21 -> `TwentyOne`, 305 -> `ThreeHundredFive`."""
    if not 0 <= n <= 999:
        raise ValueError(f"run index {n} out of range for macro names")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (_ONES[n % 10] if n % 10 else "")
    rest = n % 100
    return _ONES[n // 100] + "Hundred" + (number_word(rest) if rest else "")


def metric_word(name: str) -> str:
    """`val_loss` -> `ValLoss`, `a0` -> `AZero`, `top10_acc` -> `TopTenAcc`."""
    parts = re.findall(r"[A-Za-z]+|\d+", name)
    word = "".join(number_word(int(p)) if p.isdigit() else p[0].upper() + p[1:] for p in parts)
    if not word:
        raise ValueError(f"metric name {name!r} has no letters or digits")
    return word


def run_prefix(run: str) -> str:
    """`run_0` -> `Baseline`, `run_3` -> `RunThree`."""
    index = int(RUN_NAME.match(run).group(1))  # type: ignore[union-attr]
    return "Baseline" if index == 0 else "Run" + number_word(index)


def finite(value: Any) -> float | None:
    """The value as a float if it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _shows_nonzero(text: str) -> bool:
    return re.search(r"[1-9]", text) is not None


def _is_percent(spec: MetricSpec) -> bool:
    return spec.format.endswith("%")


def _diff_text(magnitude: float, spec: MetricSpec) -> str:
    if _is_percent(spec):
        digits = re.search(r"\.(\d+)", spec.format)
        return format(magnitude * 100, f".{digits.group(1) if digits else 1}f") + " pp"
    return spec.fmt(magnitude)


def diff_body(magnitude: float, spec: MetricSpec) -> str:
    """A difference's size without sign; a difference of percentages is in percentage points.
    A nonzero size that the metric's format would round to 0 keeps two significant digits."""
    body = _diff_text(magnitude, spec)
    if magnitude and not _shows_nonzero(body):
        body = format(magnitude * 100, ".2g") + " pp" if _is_percent(spec) else format(magnitude, ".2g")
    return body


def signed(value: float, spec: MetricSpec) -> str:
    """A difference with its sign (`+0.061`, `$-$99.5`, `+7.5 pp`); no sign when it prints as 0."""
    body = _diff_text(abs(value), spec)
    if not _shows_nonzero(body):
        return body
    return ("+" if value > 0 else MINUS) + body


def bound(value: float, spec: MetricSpec, *, difference: bool) -> str:
    """One end of an interval: a minus sign only (`$-$0.036`, `0.012`); a difference of
    percentages in percentage points; never rounded to a misleading 0."""
    if difference:
        body = diff_body(abs(value), spec)
    else:
        body = spec.fmt(abs(value))
        if value and not _shows_nonzero(body):
            body = format(abs(value), ".2g")
    return (MINUS if value < 0 and _shows_nonzero(body) else "") + body


def spread(value: float, spec: MetricSpec) -> str:
    """A standard deviation or half-width, in the metric's units (pp for percentages)."""
    if _is_percent(spec):
        return diff_body(value, spec).replace(" pp", r"\%")
    body = spec.fmt(value)
    return format(value, ".2g") if value and not _shows_nonzero(body) else body


_UNICODE = {"≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$", "−": MINUS, "±": r"$\pm$", "→": r"$\rightarrow$",
            "≈": r"$\approx$", "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''", "…": r"\ldots{}",
            "°": r"$^\circ$", "α": r"$\alpha$", "β": r"$\beta$", "λ": r"$\lambda$", "μ": r"$\mu$"}


_TEXT_ASCII = {"|": r"\textbar{}", "<": r"\textless{}", ">": r"\textgreater{}", '"': "''"}


def latex_text(text: str) -> str:
    """Free text (a hypothesis statement, a reason) as LaTeX that pdflatex always accepts:
    whitespace collapsed, specials escaped, a few symbols spelled, other non-ASCII letters
    reduced to ASCII (accents dropped) and the rest left out."""
    from pylatex.utils import escape_latex

    out = []
    for ch in str(escape_latex(" ".join(str(text).split()))):
        if ch in _TEXT_ASCII:  # characters the default (OT1) text font prints as others
            out.append(_TEXT_ASCII[ch])
        elif ord(ch) < 128:
            out.append(ch)
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        else:
            out.append(unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode())
    return "".join(out)
