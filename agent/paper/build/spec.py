"""The metric descriptions the paper side needs, independent of the manifest loader."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric of `final_info.json["metrics"]`, as declared in `template.toml`."""

    name: str
    """Key in the metrics dict, e.g. `top1_acc`."""
    label: str
    """Human name for tables and prose, e.g. `Explained variance`."""
    direction: Direction = "higher"
    """Whether higher or lower is better."""
    headline: bool = False
    """Shown as a column of the results table and given delta macros."""
    format: str = ".4g"
    """Python format spec for printing, e.g. `.3f`."""
    aliases: tuple[str, ...] = ()
    """Other phrases the prose may use for it (e.g. `top-1 accuracy` for `top1_acc`)."""

    def fmt(self, value: float | None) -> str:
        """The value as the paper prints it (LaTeX-safe: `%` is escaped)."""
        if value is None:
            return "n/a"
        if self.format.endswith("d"):
            value = int(round(value))
        return format(value, self.format).replace("%", r"\%")

    def names(self) -> tuple[str, ...]:
        """Every phrase that refers to this metric in prose, lower-cased."""
        spaced = self.name.replace("_", " ")
        found = {self.name.lower(), spaced.lower(), self.label.lower(), *(a.lower() for a in self.aliases)}
        return tuple(sorted(n for n in found if n))


def as_spec(metric: Any) -> MetricSpec:
    """A MetricSpec from anything with the same attributes (e.g. `agent.template.Metric`)."""
    if isinstance(metric, MetricSpec):
        return metric
    if isinstance(metric, Mapping):
        return spec_from_table(metric)
    return MetricSpec(
        name=metric.name, label=metric.label, direction=metric.direction,
        headline=bool(getattr(metric, "headline", False)), format=getattr(metric, "format", ".4g"),
        aliases=tuple(getattr(metric, "aliases", ()) or ()),
    )


def spec_from_table(raw: Mapping[str, Any]) -> MetricSpec:
    """A MetricSpec from one `[[metrics]]` table of `template.toml` (already validated)."""
    return MetricSpec(
        name=str(raw["name"]), label=str(raw.get("label", raw["name"])),
        direction="lower" if raw.get("direction") == "lower" else "higher",
        headline=bool(raw.get("headline", False)), format=str(raw.get("format", ".4g")),
        aliases=tuple(str(a) for a in raw.get("aliases", ())),
    )


def as_specs(metrics: Iterable[Any]) -> tuple[MetricSpec, ...]:
    return tuple(as_spec(m) for m in metrics)
