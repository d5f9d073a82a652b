"""What a person sees in the terminal: banners, a live status line per stage, the summary.

The CLI builds one Console and hands it to the orchestrator, which reports through it; the
same facts are in the journal. `quiet` silences everything but errors.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol


class Outcome(Protocol):
    @property
    def exit_code(self) -> int: ...
    @property
    def summary(self) -> str: ...


class Console:
    """A thin wrapper over rich; rich is imported on first use, not at CLI start-up."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._console: Any = None
        self._status: Any = None
        self._stage_start = time.monotonic()
        self._stage = ""

    def _rich(self) -> Any:
        if self._console is None:
            from rich.console import Console as RichConsole

            self._console = RichConsole(stderr=False, highlight=False)
        return self._console

    def banner(self, text: str, style: str = "bold yellow") -> None:
        """A loud message that must not be missed (a replay instead of a live model): shown
        even with --quiet."""
        from rich.panel import Panel

        self._pause()
        self._rich().print(Panel(text, style=style))
        self._resume()

    def info(self, text: str) -> None:
        """A progress line (plain text: brackets are not rich markup)."""
        if not self.quiet:
            from rich.markup import escape

            self._pause()
            self._rich().print(escape(text))
            self._resume()

    def warn(self, text: str) -> None:
        """Something a person should look at; shown even with --quiet."""
        from rich.markup import escape

        self._pause()
        self._rich().print(f"[yellow]warning:[/] {escape(text)}")
        self._resume()

    def stage(self, name: str) -> None:
        """A stage begins: a rule, and the status line restarts its clock."""
        self._stage, self._stage_start = name, time.monotonic()
        if not self.quiet:
            self.stop_status()
            self._rich().rule(f"[bold]{name}")

    def status(self, text: str) -> None:
        """Replace the live status line: elapsed time of the stage is prefixed."""
        if self.quiet:
            return
        line = f"[{self._stage} {time.monotonic() - self._stage_start:5.0f}s] {text}"
        if not sys.stdout.isatty():
            return  # a log file gets the info lines, not a spinner redrawn every call
        if self._status is None:
            self._status = self._rich().status(line)
            self._status.start()
        else:
            self._status.update(line)

    def stop_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _pause(self) -> None:
        if self._status is not None:
            self._status.stop()

    def _resume(self) -> None:
        if self._status is not None:
            self._status.start()

    def error(self, text: str) -> None:
        self.stop_status()
        print(f"error: {text}", file=sys.stderr, flush=True)

    def done(self, outcome: Outcome) -> None:
        self.stop_status()
        print(outcome.summary, flush=True)
