"""One device per experiment, evaluation and plot process: a pool shared by every launch on the
machine (several ideas of one command, or two commands in two terminals).

A device is held with an flock on a file of its own in a folder every launch on the machine
agrees on, so the kernel frees it when its holder dies, however it dies. The child learns its
device from `CUDA_VISIBLE_DEVICES`, which the runner sets: it always sees its one GPU as
`cuda:0`. The GPUs come from torch's own count (`torch.cuda.device_count()`: a CPU build of
torch beside an NVIDIA driver has none), or from `--devices 0,2,3`. Without GPUs a child gets
`CUDA_VISIBLE_DEVICES=""` and an equal share of the CPU cores for its threads.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UsageError

LOCK_DIR_ENV = "AGENT_DEVICE_LOCKS"
"""Where the pool's lock files live (default: one folder per user in the temp directory)."""
CPU_SHARE_ENV = "AGENT_CPU_SHARE"
"""Cores this launch may use (set by a command running several ideas at once)."""
POLL_S = 0.5


def parse(text: str) -> tuple[str, ...]:
    """`--devices 0,2,3` -> ("0", "2", "3"); a clear error for anything else."""
    ids = tuple(p.strip() for p in text.split(",") if p.strip())
    if not ids or not all(i.isdigit() for i in ids) or len(set(ids)) != len(ids):
        raise UsageError(f"--devices takes distinct GPU indices separated by commas (e.g. 0,2,3), "
                         f"not {text!r}")
    return ids


def discover() -> tuple[str, ...]:
    """The GPUs torch can use here, as CUDA indices. Never the presence of nvidia-smi: a
    CPU-only torch on a GPU box has none. torch is imported only when a CUDA build of it and a
    driver are present (`harness.machine.cuda_present`)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    from harness.machine import cuda_present

    if not cuda_present():
        return ()
    import torch

    count = int(torch.cuda.device_count())
    if visible not in (None, ""):  # already restricted: keep the user's own numbering
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        return tuple(ids[:count])
    return tuple(str(i) for i in range(count))


def cpu_share() -> int:
    """The CPU cores this launch may use: all of them, or its share of a many-idea command."""
    total = os.cpu_count() or 1
    try:
        share = int(os.environ.get(CPU_SHARE_ENV, total))
    except ValueError:
        share = total
    return max(1, min(total, share))


def threads_for(jobs: int) -> int | None:
    """Threads for each of `jobs` processes running at once: this launch's share of the cores
    split between them; None (the library's own default) for a lone process with every core."""
    if jobs <= 1 and CPU_SHARE_ENV not in os.environ:
        return None
    return max(1, cpu_share() // max(1, jobs))


MEMORY_ENV = "TRUSTED_SCIENTIST_CHILD_MEMORY_GB"
"""Overrides the memory each CPU child may allocate (see `memory_for`)."""


def memory_for(jobs: int) -> int | None:
    """Bytes of memory each of `jobs` CPU children running at once may allocate: 90% of this
    launch's share of the machine's memory (its share of the cores, as `cpu_share`) split
    between them, or TRUSTED_SCIENTIST_CHILD_MEMORY_GB; None where the machine does not say."""
    if os.environ.get(MEMORY_ENV):
        try:
            return int(float(os.environ[MEMORY_ENV]) * 2**30)
        except ValueError:
            pass
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
    share = cpu_share() / (os.cpu_count() or 1)
    return max(2**30, int(0.9 * total * share / max(1, jobs)))


@dataclass(frozen=True)
class Held:
    """What one child is given: its environment additions and a description for the journal."""

    env: dict[str, str]
    device: str
    """`cuda:<index>` (the machine's numbering) or `cpu`."""
    waited_s: float


class DevicePool:
    """The GPUs (possibly none) that children take one at a time."""

    def __init__(self, gpus: Sequence[str], lock_dir: Path | None = None) -> None:
        self.gpus = tuple(gpus)
        default = Path(os.environ.get("TMPDIR", "/tmp")) / f"trusted-scientist-devices-{os.getuid()}"
        self.lock_dir = Path(os.environ.get(LOCK_DIR_ENV) or lock_dir or default)

    @property
    def kind(self) -> str:
        return "cuda" if self.gpus else "cpu"

    @contextmanager
    def hold(self, *, threads: int | None = None,
             on_wait: Callable[[str], None] | None = None) -> Iterator[Held]:
        """One device for the duration of a child: a free GPU (waiting while all are busy), or
        the CPU with `threads` threads (default: this launch's share of the cores)."""
        if not self.gpus:
            threads = threads or threads_for(1)
            cores = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}
            yield Held({"CUDA_VISIBLE_DEVICES": "", **cores}, "cpu", 0.0)
            return
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        told = False
        while True:
            for gpu in self.gpus:
                fd = os.open(self.lock_dir / f"gpu{gpu}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                try:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
                    n = str(threads or max(1, cpu_share() // len(self.gpus)))
                    yield Held({"CUDA_VISIBLE_DEVICES": gpu, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n},
                               f"cuda:{gpu}", round(time.monotonic() - start, 3))
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
                return
            if not told and on_wait is not None:
                on_wait(f"all {len(self.gpus)} GPU(s) are busy ({', '.join(self.gpus)}): waiting for one")
                told = True
            time.sleep(POLL_S)
