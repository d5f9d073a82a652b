"""Who drew a run's figures, as the journal records it and the files still show.

The plot stage journals, per attempt, the figures the trusted renderer drew with their sha256
(`plot.finished.rendered`) and those `plot.py` drew itself (`by_plot_py`). A figure counts as
the renderer's only while its file still has that hash: the writeup includes only those, and
the report marks every figure with who drew it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from agent import runfiles
from agent.journal import Event

DrawnBy = Literal["renderer", "plot.py", "unknown"]


def last_plot(events: Iterable[Event]) -> dict[str, Any]:
    """The last plot attempt that succeeded (else the last one): its `plot.finished` data."""
    finished = [e.data for e in events if e.kind == "plot.finished"]
    ok = [d for d in finished if d.get("ok")]
    return (ok or finished or [{}])[-1]


def trusted(root: Path, events: Iterable[Event]) -> list[str]:
    """The figures the renderer drew that are unchanged since: the only ones a paper may show."""
    return [name for name, by in drawn_by(root, events).items() if by == "renderer"]


def drawn_by(root: Path, events: Iterable[Event]) -> dict[str, DrawnBy]:
    """Each figure the last plot attempt recorded, with who drew it ("unknown": a renderer's
    figure whose file changed since)."""
    last = last_plot(events)
    rendered: dict[str, str] = last.get("rendered") or {}
    out: dict[str, DrawnBy] = {name: "renderer" if runfiles.sha256(root / name) == sha else "unknown"
                               for name, sha in rendered.items()}
    out.update({name: "plot.py" for name in last.get("by_plot_py") or [] if name not in out})
    return out
