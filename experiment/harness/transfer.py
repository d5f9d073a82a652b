"""Getting arrays onto a device: whole (when they fit) or through pinned staging buffers.

`harness.sae.activations` uses these for the training split (`batches()`), `harness.sae.evaluate` for
the held-out activations. On the CPU each is a plain copy or nothing at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

RESIDENT_FRACTION = 0.25
"""Largest share of the GPU's free memory the training split (in its cache dtype) may take to
be kept on the GPU. The loop trains a run's seeds at once (3 by default) on one device, and
processes starting together all see the same free memory: three resident copies plus their
SAEs must still fit. On an H200 (141 GB) the `gpu` preset's split (20 GB) is kept on the GPU
and `gpu-gemma`'s (46 GB) streams."""
STAGING_BYTES = 64 << 20
"""Size of each pinned buffer through which the split is copied to the device in chunks."""


class Staging:
    """A ring of host buffers (pinned when the device is a GPU) through which rows of a
    memory-mapped array reach a device. A buffer is refilled only once the copy that last read
    it has completed (its CUDA event), so the copies run asynchronously without a race.
    On the CPU the buffers are plain memory and each `send` returns a copy of its own."""

    def __init__(self, rows: int, width: int, dtype: torch.dtype,
                 device: str | torch.device, depth: int = 2) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.buffers = [torch.empty((rows, width), dtype=dtype, pin_memory=self.cuda)
                        for _ in range(depth)]
        self.events: list[Any] = [None] * depth
        self.turn = 0

    def send(self, fill: Callable[[np.ndarray], None], n: int,
             out: torch.Tensor | None = None) -> torch.Tensor:
        """What `fill` wrote into a host buffer's first n rows, copied into `out` (n, width) on
        the device, or into a new tensor there."""
        k = self.turn % len(self.buffers)
        self.turn += 1
        if self.events[k] is not None:
            self.events[k].synchronize()
        host = self.buffers[k][:n]
        fill(host.numpy())
        if out is None:
            out = host.to(self.device, non_blocking=self.cuda, copy=True)
        else:
            out.copy_(host, non_blocking=self.cuda)
        if self.cuda:
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(self.device))
            self.events[k] = event
        return out


def indexed(device: str | torch.device) -> torch.device:
    """`cuda` as the device it means (`cuda:<current>`), so that a tensor on it compares equal."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


def to_device(array: np.ndarray, device: str | torch.device,
              chunk_bytes: int = STAGING_BYTES) -> torch.Tensor:
    """A 2-d (memory-mapped) array copied whole to `device`, in chunks through `Staging`: no
    second host copy of it, and the disk reads overlap the copies to the GPU."""
    n, width = array.shape
    rows = max(1, chunk_bytes // max(1, width * array.itemsize))
    out = torch.empty((n, width), dtype=torch_dtype(array.dtype), device=device)
    staging = Staging(min(rows, max(1, n)), width, out.dtype, device)
    for i in range(0, n, rows):
        part = array[i:i + rows]

        def fill(dst: np.ndarray, part: np.ndarray = part) -> None:
            dst[...] = part

        staging.send(fill, len(part), out=out[i:i + len(part)])
    return out


def fits_on(device: torch.device, nbytes: int, fraction: float = RESIDENT_FRACTION) -> bool:
    """Whether `nbytes` fit in `fraction` of the GPU's free memory (False off CUDA)."""
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= fraction * free


def placed(t: torch.Tensor, device: str | torch.device) -> torch.Tensor:
    """A CPU tensor read in batches on `device`: on the GPU when it fits (`fits_on`), else in
    pinned memory (so `.to(device, non_blocking=True)` of its batches is truly asynchronous);
    unchanged for a CPU device."""
    device = indexed(device)
    if device.type != "cuda" or t.device.type != "cpu":
        return t
    if fits_on(device, t.numel() * t.element_size()):
        try:
            return t.to(device)
        except torch.cuda.OutOfMemoryError:  # another process took the memory meanwhile
            log.warning("%.1f GB did not fit on %s after all: kept in pinned host memory",
                        t.numel() * t.element_size() / 1e9, device)
    return t.pin_memory()
