"""The words a paper uses for settings and counted things: generic ones here, a template's own
in its `template.toml` (`[vocabulary]`), so the checker names no template's quantities.

    [vocabulary]
    setting_phrases = ["sparsity penalty"]        # names of settings ("sparsity penalty = 0.04")
    size_keys = ["n_units"]                       # config keys sizing a metric (active / n_units: a share)
    synonyms = [{pattern = '\\bunits?\\b', word = "unit"}]   # replaced before words are compared
    [vocabulary.counted]                          # a counted noun -> stems of the keys it counts
    units = ["unit", "width"]

The checker reads the vocabularies of every template in `templates/` (a paper's prose may use
any of them, and the words of one template never ground a number on their own: the value must
still be a value of the quantity).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SETTING_PHRASES = ("learning rate", "lr", "batch size", "batch", "seed", "k", "steps", "warm-up")
SYNONYMS = (
    (r"\blearning[\s_-]*rates?\b|\blr\b|\beta\b", "lr"),
    (r"\bbatch(?:es)?[\s_-]*(?:of\s+)?size\b|\bbatch\b|\bbs\b", "batchsize"),
    (r"\bwarm[\s_-]*up(?:[\s_-]*steps)?\b", "warmup"),
    (r"\b(?:training|total|num|n)?[\s_-]*(?:steps|iterations)\b", "steps"),
    (r"\bcoefficients?\b|\bcoeffs?\b|\bpenalty\b|\bpenalties\b|\bweights?\b|\bstrength\b|\blambda\b|λ", "coef"),
    (r"\bcontext[\s_-]*(?:length|len|size|window)\b|\bseq(?:uence)?[\s_-]*len(?:gth)?\b|\bctx\b", "context"),
    (r"\brandom[\s_-]*seed\b|\bseeds?\b", "seed"),
    (r"\btop[\s_-]*k\b", "k"),
)
"""Phrases of a key or a name that mean one thing (`learning_rate`, `lr`: `lr`), in order."""
COUNTED = {"tokens": ("token", "context", "seq", "ctx"), "steps": ("step", "iter"),
           "iterations": ("step", "iter"), "updates": ("step", "update"), "epochs": ("epoch",),
           "layers": ("layer",), "parameters": ("param", "model", "lm_name"), "dimensions": ("dim", "d_model"),
           "batches": ("batch",), "examples": ("example", "sample"), "samples": ("sample", "example"),
           "sequences": ("seq", "sequence", "context"), "heads": ("head",), "prompts": ("prompt",)}
"""The keys a counted noun may be of (stems of their names)."""
SIZE_KEYS = ("n_features", "num_features", "d_hidden", "hidden_dim", "latent_dim")
"""Config keys that give a metric a natural denominator (a count over a width is a share)."""


@dataclass(frozen=True)
class Vocabulary:
    setting_phrases: frozenset[str]
    synonyms: tuple[tuple[re.Pattern[str], str], ...]
    counted: dict[str, tuple[str, ...]]
    size_keys: frozenset[str]


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def parse(raw: Any, where: str) -> dict[str, Any]:
    """A template's `[vocabulary]` table, checked: a ValueError names what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")
    unknown = set(raw) - {"setting_phrases", "synonyms", "counted", "size_keys"}
    if unknown:
        raise ValueError(f"{where} has unknown field(s) {', '.join(sorted(unknown))}")
    synonyms = []
    for i, s in enumerate(raw.get("synonyms", [])):
        if not isinstance(s, dict) or set(s) != {"pattern", "word"} or not all(
                isinstance(v, str) and v for v in s.values()) or not re.fullmatch(r"[a-z0-9]+", s["word"]):
            raise ValueError(f"{where}.synonyms[{i}] must be {{pattern = '<regex>', word = '<lowercase word>'}}")
        try:
            synonyms.append((re.compile(s["pattern"], re.I), s["word"]))
        except re.error as exc:
            raise ValueError(f"{where}.synonyms[{i}]: not a regular expression ({exc})") from exc
    counted = raw.get("counted", {})
    if not isinstance(counted, dict):
        raise ValueError(f"{where}.counted must be a table of noun = [key stems]")
    return {"setting_phrases": _strings(raw.get("setting_phrases", []), f"{where}.setting_phrases"),
            "synonyms": tuple(synonyms),
            "counted": {n: _strings(v, f"{where}.counted.{n}") for n, v in counted.items()},
            "size_keys": _strings(raw.get("size_keys", []), f"{where}.size_keys")}


def merged(tables: list[dict[str, Any]]) -> Vocabulary:
    """The generic vocabulary with the templates' (their synonyms first: they are the more
    specific phrases, e.g. `dictionary size` before `size`)."""
    counted = {n: list(v) for n, v in COUNTED.items()}
    for t in tables:
        for noun, stems in t["counted"].items():
            counted.setdefault(noun, []).extend(s for s in stems if s not in counted[noun])
    return Vocabulary(
        frozenset(SETTING_PHRASES).union(*(t["setting_phrases"] for t in tables)),
        tuple(s for t in tables for s in t["synonyms"]) + tuple((re.compile(p, re.I), w) for p, w in SYNONYMS),
        {n: tuple(v) for n, v in counted.items()},
        frozenset(SIZE_KEYS).union(*(t["size_keys"] for t in tables)))


@lru_cache(maxsize=1)
def known() -> Vocabulary:
    """The generic vocabulary and every template's in `templates/` (read once)."""
    from agent.paths import TEMPLATES

    tables = []
    for path in sorted(Path(TEMPLATES).glob("*/template.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8")).get("vocabulary")
        if raw is not None:
            tables.append(parse(raw, f"{path}: vocabulary"))
    return merged(tables)
