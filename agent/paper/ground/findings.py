"""What the grounding checker reports: one record per unsupported number or claim."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

FindingKind = Literal["number", "setting", "attribution", "macro", "run", "count", "ablation", "comparison",
                      "baseline", "direction", "no_difference", "hypothesis", "interval", "typeset"]


@dataclass(frozen=True)
class Finding:
    """A number or claim in the paper that no run supports."""

    section: str
    """The section it is in (`Results`, `Abstract`, ...)."""
    kind: FindingKind
    """number: matches no result; setting: a setting no run's config has; attribution:
    matches another run than the one named; macro: redefines a results.tex macro;
    run: a run that does not exist; count: more runs than there were; ablation / comparison:
    an experiment no run performed; baseline: a run other than run_0 called the baseline;
    direction: a change between two runs the statistics do not support (the opposite, no
    detectable difference, or no interval); no_difference: no effect / no change claimed where
    the difference is detectable; hypothesis: a verdict on a pre-registered hypothesis that is
    not its verdict; interval: a difference stated without its interval where there is no
    detectable difference; typeset: a number the compiled PDF shows that neither the source nor
    results.tex holds (`agent.paper.ground.typeset`)."""
    text: str
    """The offending number or phrase, as written."""
    context: str
    """The sentence around it."""
    reason: str
    """Why it is flagged, in words the LLM can act on."""
    closest: tuple[str, ...] = ()
    """For numbers: the nearest real values, described."""
    line: int = 0
    """1-based line in the text that was checked (0 when unknown)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One entry for prompts and review.json."""
        head = f"[{self.section}{f', line {self.line}' if self.line else ''}] {self.kind}: \"{self.text}\""
        out = f"{head} -- {self.reason}\n    in: \"{self.context}\""
        if self.closest:
            out += "\n    closest real values: " + "; ".join(self.closest)
        return out


def describe_all(findings: Sequence[Finding]) -> str:
    return "\n".join(f.describe() for f in findings)
