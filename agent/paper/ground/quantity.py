"""What a number is about, and which values of the evidence are of that quantity.

A number of the prose is grounded only by evidence of the quantity its sentence says it is:
a setting named by its config key or an alias (`a batch size of 4096`, `Learning rate & 3e-4`),
a counted noun (`488 steps`, `2 million tokens`), a metric by its name, label or alias, or
nothing named. `Quantity.admits(value)` says whether one value of the evidence
(`agent.paper.ground.evidence`) may ground it:

- a duration (`41.2 s`): timings, those whose key the clause names if it names one
  ("harvesting took");
- a setting or counted noun: values whose key names it (words compared after aliases:
  `learning_rate`, `lr` and "learning rate" are one key; a penalty, weight and coefficient
  are one noun); a symbol that names no key (`alpha = 0.1`) any training setting;
- a metric: values of that metric (its seed statistics included);
- evaluation-harness values (the `evaluation` and `data` sections, and paths of an evaluation's
  configuration) only when the sentence names the evaluation ("held-out", "probe", "eval") or a
  word of the value's own key beyond the quantity ("window" for `dead_dense_window_tokens`);
- differences between runs (the seed comparisons, the hypotheses' differences and intervals)
  only when the number is said to be a difference (`Mention.difference`), or is a bound of an
  interval in a sentence that says one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from agent.paper.ground import vocabulary
from agent.paper.ground.evidence import Evidence, EvidenceValue
from agent.paper.read.mentions import Mention

Kind = Literal["setting", "count", "duration", "metric", "value"]

_STOP = frozenset("a an the of to in on for with and or is was are were we our its their this that each all "
                  "every per use uses used using set sets run runs baseline value values setting settings "
                  "be by as at from it".split())
_EVALUATION = re.compile(r"\beval\w*|\btest(?:s|ing)?\b|\bheld[\s-]*out\b|\bvalidation\b|\bprob(?:e|es|ing)\b|"
                         r"\bharness\b|\bbenchmark\w*", re.I)
_HARNESS_PATH = re.compile(r"eval|held_?out|test|valid|probe|harness", re.I)
_INTERVAL = re.compile(r"(?:\bCIs?\b|\bintervals?\b|±|\+/-)\s*(?:of\s*)?[:=]?\s*[\[(]?\s*"
                       r"(?:[-−]?[\d.]+\s*(?:,|to|and|--|–|-)\s*)?$", re.I)
_SAYS_DIFFERENCE = re.compile(r"\b(?:by|differ\w*|gap|delta|changes?|margin|improv\w*|increas\w*|decreas\w*|"
                              r"reduc\w*)\b|[+−]\s*\d|Δ", re.I)
_SYMBOLS = frozenset("alpha beta gamma delta epsilon eps tau kappa mu nu rho sigma omega theta xi zeta phi psi "
                     "chi".split())
_MODIFIERS = frozenset("initial base default fixed final peak maximum max minimum min global overall effective "
                       "constant chosen optimal best same training".split())
_GENERIC = frozenset({"n", "num", "total", "size", "batchsize", "count", "steps", "tokens", "config", "eval",
                      "evaluation", "results", "result", "metrics", "mean", "core", "k"})


@lru_cache(maxsize=8192)
def words(text: str) -> frozenset[str]:
    """The content words of a key or a name, after aliases (`learning_rate` -> {lr})."""
    text = re.sub(r"\\?_|[.{}$\\]", " ", text).lower()
    for pattern, word in vocabulary.known().synonyms:
        text = pattern.sub(f" {word} ", text)
    return frozenset(w for w in re.findall(r"[a-z0-9]+", text) if w not in _STOP and not w.isdigit())


def _same(a: str, b: str) -> bool:
    """One word of a name and one of a key: equal, or one a prefix of the other (`coeff`)."""
    return a == b or (min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)))


def _key(v: EvidenceValue) -> str:
    return _last(v.path)


@lru_cache(maxsize=8192)
def _last(path: str) -> str:
    """The last part of a path that is not a list index."""
    return re.sub(r"(?:\.\d+)+$", "", path).rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Keys:
    """The keys of the settings in the evidence, with their words (built once per check)."""

    config: tuple[tuple[str, frozenset[str]], ...]
    """(path, words) of each config key (a key of one letter left out)."""
    settings: tuple[tuple[str, frozenset[str]], ...]
    """(path, words) of every key a setting may be: config, data, evaluation, measurements, other."""

    @classmethod
    def of(cls, evidence: Evidence) -> Keys:
        config = {v.path: words(_key(v)) for v in evidence.values if v.source == "config" and len(_key(v)) > 1}
        settings = {v.path: words(_key(v)) for v in evidence.values
                    if v.source in ("config", "data", "evaluation", "measurements", "other")}
        return cls(tuple(config.items()), tuple(settings.items()))


def is_harness(v: EvidenceValue) -> bool:
    """A setting or count of the evaluation harness, not of the run's training."""
    return v.source in ("evaluation", "data") or bool(_HARNESS_PATH.search(v.path))


def is_duration(v: EvidenceValue) -> bool:
    """A time: the timings, or a key that says it is one (`harvest_seconds`)."""
    return v.source == "timings" or bool(re.search(r"time|_s$|sec|duration", v.path))


def timing_keys(text: str, evidence: Evidence) -> frozenset[str] | None:
    """The durations a text names (`Training took` -> `timings.train_s`); None: it names none."""
    said = words(text)
    found = frozenset(v.path for v in evidence.values if is_duration(v)
                      and _all_said(words(_key(v)) - {"s", "sec", "seconds", "time"}, said))
    return found or None


def is_difference(v: EvidenceValue) -> bool:
    """A difference between two runs the statistics computed (or a hypothesis's bound on one)."""
    return v.path.startswith("comparisons.") or (v.path.startswith("hypotheses.") and v.path != "hypotheses.level")


def _all_said(name: frozenset[str], key: frozenset[str]) -> bool:
    """Whether every word of `name` is a word of `key`."""
    return bool(name) and all(any(_same(w, k) for k in key) for w in name)


def setting_keys(name: str, keys: Keys) -> frozenset[str] | None:
    """The paths of the settings a name names (`learning rate` -> `config.lr`; a modifier such
    as "initial" is not part of the name); None when the name is a symbol no key has (`alpha`,
    `G`), which may be any training setting."""
    said = words(name) - _MODIFIERS
    found = frozenset(path for path, key in keys.settings if _all_said(said, key))
    if found:
        return found
    symbol = len(name.strip()) <= 2 or name.strip().lower() in _SYMBOLS
    return None if symbol else frozenset()


def keys_named(text: str, keys: Keys) -> frozenset[str]:
    """The config keys a text names in full (`Learning rate & 3e-4`, `sparsity penalty lambda is
    set to 0.06`, `Warmup steps ... (minimum 1000)`): a setting named by its key, not by `=`."""
    said = words(text)
    return frozenset(path for path, key in keys.config if key and _all_said(key, said))


@dataclass(frozen=True)
class Quantity:
    """The quantity a number is said to be, and what may ground it."""

    kind: Kind
    name: str
    """As written: the setting's name, the counted noun, the metrics."""
    metrics: frozenset[str] = frozenset()
    keys: frozenset[str] | None = None
    """Paths of the settings it names (a setting; a metric's sentence may name settings too);
    None: any training setting."""
    difference: bool = False
    """Said to be a difference (or a bound of its interval)."""
    evaluation: bool = False
    """The sentence names the evaluation ("held-out", "probe", "evaluated on")."""
    sentence: frozenset[str] = frozenset()
    """The sentence's content words (a harness value's own key words may ground it)."""

    def admits(self, v: EvidenceValue) -> bool:
        if is_difference(v) and not self.difference:
            return False
        if self.kind == "metric" and ((v.source in ("metrics", "statistics") and v.metric in self.metrics) or (
                v.source in ("measurements", "other") and any(name in v.path.lower() for name in self.metrics))):
            return True
        if is_harness(v) and not self.evaluation and not self._names_own_words(v):
            return False
        if self.kind == "metric":  # a setting the sentence names beside its metrics
            return self.keys is not None and v.path in self.keys
        if self.kind == "setting":
            return v.source != "metrics" and not is_difference(v) and (
                v.path in self.keys if self.keys is not None else v.source == "config")
        if self.kind == "duration":
            return is_duration(v) and (self.keys is None or v.path in self.keys)
        if self.kind == "count":
            return any(stem in v.path.lower() for stem in vocabulary.known().counted.get(self.name, (self.name.rstrip("s"),)))
        return True

    def _names_own_words(self, v: EvidenceValue) -> bool:
        own = {w for w in words(_key(v)) | words(v.path.rsplit(".", 2)[0]) if len(w) >= 3} - _GENERIC - words(self.name)
        return any(any(_same(w, s) for s in self.sentence) for w in own)


def says_difference(m: Mention, before: str, sentence: str, partner: Mention | None) -> bool:
    """A number said to be a difference, or a bound of an interval (`95% CI 0.03 to 0.05`) in a
    sentence that says a difference."""
    if m.difference or (partner is not None and partner.difference):
        return True
    return bool(_INTERVAL.search(before)) and bool(_SAYS_DIFFERENCE.search(sentence))


def counted_keys(noun: str) -> bool:
    """Whether a counted noun names a quantity of the evidence (`steps`), not a bare count (`runs`)."""
    return noun in vocabulary.known().counted


def names_evaluation(text: str) -> bool:
    """Whether a sentence names the evaluation ("held-out", "probe", "evaluated")."""
    return bool(_EVALUATION.search(text))
