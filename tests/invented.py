"""Invented numbers: each true number of a correct paper replaced by plausible fabrications.

`fabrications(blocks, evidence)` takes blocks of a correct paper (a line, a paragraph, a whole
table: text the checker reads on its own) and, for every plain decimal number a reader sees in
them, writes the block again with the number replaced (a fixed seed, so the set is the same on
every run). The kinds of fabrication:

- `perturbed`: the number moved by 5-50 % either way, written with as many decimals;
- `other_quantity`: a value of another quantity of the evidence (another metric, a setting, an
  evaluation-harness setting) written at the number's precision;
- `one_digit`: a value 10-50 % away, rounded to one significant digit (`0.0018` -> `0.002`).

A fabrication that lands within the written digits of a value of the quantity the true number
is about (any run) is not invented, and is left out; so are bounds ("below 16%"), which may
still be true when moved. `bench/grounding.py` counts how many of
the rest the checker accepts.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent.paper.ground.evidence import Evidence, EvidenceValue
from agent.paper.read.mentions import Mention
from agent.paper.read.reading import read, sentences_of

KINDS = ("perturbed", "other_quantity", "one_digit")
_PLAIN = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Fabrication:
    """One block of a correct paper with one of its true numbers replaced."""

    kind: str
    block: str
    """The block as written, with the invented number in it."""
    original: str
    """The block as written, with the true number."""
    true: str
    invented: str


def with_harness_sections(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The runs with the evaluation and data sections today's evaluator writes beside the
    metrics (`experiment/harness/evaluator.py`): harness settings a paper's numbers must not
    borrow (an evaluation batch of 4096 tokens is not the training batch size)."""
    evaluation = {"reconstruction_tokens": 4096, "dead_dense_window_tokens": 4096, "dense_threshold": 0.1,
                  "ce_kl_positions": 1024, "zero_ablation_from_cache": True, "held_out": "tiny eval split"}
    return {run: {**info, "evaluation": evaluation,
                  "data": {"model": "tiny-gpt", "layer": 3, "dataset": "tiny-stories", "context_len": 128,
                           "train_tokens_available": 2097152, "eval_tokens": 65536, "act_scale": 1.73,
                           "harvest_seconds": info["timings"]["harvest_s"], "torch_threads": 2}}
            for run, info in runs.items()}


def blocks(tex: str) -> list[str]:
    """The blocks of a correct paper: each line, except that an environment is one block."""
    out: list[str] = []
    depth, current = 0, []
    for line in tex.splitlines():
        if line.lstrip().startswith("%") or not line.strip():
            continue
        current.append(line)
        depth += len(re.findall(r"\\begin\{", line)) - len(re.findall(r"\\end\{", line))
        if depth <= 0:
            out.append("\n".join(current))
            current, depth = [], 0
    return out


def _quantity(v: EvidenceValue) -> str:
    """The quantity a value is of: its metric, else the last part of its path."""
    return v.metric or re.sub(r"\.\d+$", "", v.path).rsplit(".", 1)[-1]


def _of(m: Mention, value: float, half: float, evidence: Evidence) -> set[str]:
    """The quantities with a value (any run), or a change between two runs, within `half` of
    `value` (a number read as `m` is: percent, factor)."""
    scale = 100.0 if m.percent else 1.0
    found = {_quantity(v) for v in evidence.values if "/" not in v.path
             and abs(v.value * scale - value) <= half + 1e-12}
    for series in evidence.series().values():
        if "/" in series[0].path:
            continue
        for i, a in enumerate(series):
            for b in series[i + 1:]:
                x, y = sorted((abs(a.value), abs(b.value)))
                changes = [y / x] if m.ratio and x else [scale * (y - x)]
                changes += [100 * (y - x) / x, 100 * (y - x) / y] if m.percent and x else []
                if any(abs(c - abs(value)) <= half + 1e-12 for c in changes):
                    found.add(_quantity(a))
    return found


def _half(written: str, factor: float) -> float:
    decimals = len(written.split(".", 1)[1]) if "." in written else 0
    return 0.5 * 10.0 ** -decimals * abs(factor)


def _written(value: float, like: str) -> str:
    """`value` with as many decimals as `like` (a plain number as written)."""
    decimals = len(like.split(".", 1)[1]) if "." in like else 0
    return f"{value:.{decimals}f}"


def _one_digit(value: float) -> str:
    if value == 0:
        return "0"
    exp = math.floor(math.log10(abs(value)))
    digit = round(value / 10.0 ** exp)
    if abs(digit) == 10:
        digit, exp = digit // 10, exp + 1
    return f"{digit * 10.0 ** exp:.{max(0, -exp)}f}"


def _candidates(kind: str, m: Mention, digits: str, evidence: Evidence, rng: random.Random) -> list[str]:
    true = float(digits)
    factor = m.value / true if true else 1.0  # a multiplier or percent read around the digits
    if kind == "perturbed":
        return [_written(true * (1 + rng.choice((-1, 1)) * rng.uniform(0.05, 0.5)), digits) for _ in range(3)]
    if kind == "one_digit":
        return [_one_digit(true * (1 + rng.choice((-1, 1)) * rng.uniform(0.1, 0.5))) for _ in range(3)]
    pool = sorted({v.value * (100.0 if m.percent else 1.0) / factor for v in evidence.values
                   if "/" not in v.path and v.value and 0.2 <= abs(v.value * (100.0 if m.percent else 1.0) / factor / true) <= 5}
                  if true else set())
    rng.shuffle(pool)
    return [_written(x, digits) for x in pool[:6]]


def _mentions_with_source(block: str) -> Iterator[tuple[Mention, int, str]]:
    """The block's mentions written as plain numbers, with where their digits are in the source."""
    reading = read(block)
    for s in sentences_of(reading):
        for m in s.mentions:
            if m.formula or m.qualifier in ("at_least", "at_most"):
                continue  # a bound ("below 16%") moved may still be true
            pos = reading.source_pos(m.start)
            found = _PLAIN.match(block, pos)
            if found and float(found.group(0)) != 0:
                yield m, pos, found.group(0)


def fabrications(blocks_: list[str], evidence: Evidence, seed: int = 0) -> list[Fabrication]:
    """Every kind of fabrication of every plain number of the blocks (see the module doc)."""
    rng = random.Random(seed)
    out = []
    for block in blocks_:
        for m, pos, digits in _mentions_with_source(block):
            factor = m.value / float(digits)
            true_of = _of(m, m.value, _half(digits, factor), evidence)
            for kind in KINDS:
                for invented in _candidates(kind, m, digits, evidence, rng):
                    value = float(invented) * factor
                    if invented == digits or float(invented) == 0 or \
                            _of(m, value, _half(invented, factor), evidence) & true_of:
                        continue  # not invented: a true value of the same quantity
                    out.append(Fabrication(kind, block[:pos] + invented + block[pos + len(digits):], block,
                                           digits, invented))
                    break
    return out
