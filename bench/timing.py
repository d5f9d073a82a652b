"""Timing a command the way a user meets it: one warm-up call (the bytecode cache), then repeats.

    from timing import measure
    print(measure("python -m agent.launch --help", time_help, repeat=7, target_s=1.5))
"""

from __future__ import annotations

import statistics
from collections.abc import Callable


def measure(what: str, once: Callable[[], float], repeat: int, target_s: float, digits: int = 3) -> str:
    """`once()` returns one call's wall time in seconds; the line saying min, median and max."""
    once()  # warm the bytecode cache: not counted
    times = sorted(once() for _ in range(repeat))
    median = statistics.median(times)
    verdict = "meets" if median < target_s else "MISSES"
    return (f"{what}: min {times[0]:.{digits}f} s, median {median:.{digits}f} s, max {times[-1]:.{digits}f} s "
            f"over {len(times)} calls ({verdict} the {target_s:g} s target)")
