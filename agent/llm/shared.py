"""One tokens-per-minute budget per model and one cost budget for a whole command running
several ideas at once: a small ledger file the ideas' processes share under an flock.

`python -m agent.launch --idea A --idea B` gives every idea's process the ledger's folder in
`AGENT_SHARED_DIR`. Each process reserves its request's tokens in the model's window before
sending (waiting when the window is full), and adds each reply's cost; `--max-cost` is then
checked against what all ideas spent together.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.llm.pacing import WINDOW_S

SHARED_ENV = "AGENT_SHARED_DIR"


class SharedLedger:
    """Tokens sent per model in the last minute, and dollars spent, by every idea of a command."""

    def __init__(self, folder: Path, clock: Callable[[], float] = time.monotonic) -> None:
        """`clock`: the same for every process of the command (the system's monotonic clock)."""
        self.folder = folder
        self._clock = clock

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ,
                 clock: Callable[[], float] = time.monotonic) -> SharedLedger | None:
        folder = env.get(SHARED_ENV)
        return cls(Path(folder), clock) if folder else None

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "ledger.json"
        with open(self.folder / "ledger.lock", "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
            except ValueError:
                state = {}
            state.setdefault("sent", [])
            state.setdefault("spent_usd", 0.0)
            yield state
            tmp = path.with_name(f"ledger.json.{os.getpid()}")
            tmp.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, path)

    def reserve(self, model: str, tokens: int, tpm_limit: int) -> float:
        """Seconds to wait before `tokens` fit the model's window; 0 means they were reserved
        now. A request larger than the whole budget goes alone rather than never."""
        now = self._clock()
        with self._state() as state:
            sent = [(t, m, n) for t, m, n in state["sent"] if t + WINDOW_S > now]
            mine = [(t, n) for t, m, n in sent if m == model]
            used = sum(n for _, n in mine)
            if used + tokens <= tpm_limit or not mine:
                state["sent"] = [*sent, (now, model, tokens)]
                return 0.0
            state["sent"] = sent
            for sent_at, n in mine:
                used -= n
                if used + tokens <= tpm_limit:
                    return max(0.01, sent_at + WINDOW_S - now)
            return max(0.01, mine[-1][0] + WINDOW_S - now)

    def used(self, model: str) -> int:
        now = self._clock()
        with self._state() as state:
            return sum(n for t, m, n in state["sent"] if m == model and t + WINDOW_S > now)

    def add_cost(self, usd: float | None) -> None:
        if usd:
            with self._state() as state:
                state["spent_usd"] = float(state["spent_usd"]) + float(usd)

    def spent(self) -> float:
        with self._state() as state:
            return float(state["spent_usd"])
