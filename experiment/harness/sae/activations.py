"""Residual-stream activations: harvested once per (model, layer, data, tokens, context), cached.

`ActivationSource` is what a template uses: `batches()` for training, `eval_activations()`
and `ce_rows()` for the harness's evaluation, `lm` (loaded lazily) for splicing. The language
model runs only when an entry is missing, so runs 2..N of an experiment read the cache.

Activations are stored raw; the source hands them out multiplied by one scale factor
(`scale`, from the training split) so that E||x||^2 = d_in, which lets one set of SAE
hyperparameters work across models. Evaluation splices `x_hat / scale` back into the model.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from harness import cache
from harness.sae import corpus, models
from harness.sae.presets import DATASET_LABELS, DATASETS, MODEL_LABELS, Preset, resolve
from harness.transfer import Staging, fits_on, indexed, to_device, torch_dtype

log = logging.getLogger(__name__)

FORMAT = 1
"""Bump when the harvesting semantics change, so old cache entries are not reused."""


class _Stop(Exception):
    """Raised by the capture hook: the layers after the one we read need not run."""


def _hidden(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@torch.no_grad()
def residual(lm: models.LanguageModel, rows: torch.Tensor, layer: int) -> torch.Tensor:
    """The residual stream after block `layer` for token rows (B, T) -> (B, T, d_model)."""
    captured: dict[str, torch.Tensor] = {}

    def hook(module: Any, args: Any, output: Any) -> None:
        captured["x"] = _hidden(output)
        raise _Stop

    handle = lm.block(layer).register_forward_hook(hook)
    try:
        lm.model(input_ids=rows.to(lm.device), use_cache=False)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured["x"]


@contextlib.contextmanager
def spliced(lm: models.LanguageModel, layer: int,
            replace: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Within the block, block `layer`'s output (B, T, d) is replaced by `replace(output)`."""
    def hook(module: Any, args: Any, output: Any) -> Any:
        new = replace(_hidden(output))
        return (new, *output[1:]) if isinstance(output, tuple) else new

    handle = lm.block(layer).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def token_mask(rows: torch.Tensor, special_ids: tuple[int, ...]) -> torch.Tensor:
    """(B, T) bool: True where the token is real text (not BOS, separator or padding)."""
    return ~torch.isin(rows, torch.tensor(special_ids, device=rows.device))


LoaderMode = Literal["host", "resident", "stream"]
LOADER_ENV = "HARNESS_TRAIN_ACTS"
"""Forces how `batches()` reads the training split: `host` (the whole split copied into this
process's memory), `resident` (the whole split copied to the device), `stream` (each batch
gathered from the memory-mapped cache through pinned buffers). Default: `host` on the CPU;
on a GPU `resident` when the split fits in `transfer.RESIDENT_FRACTION` of its free memory,
else `stream`."""


def _epochs(n: int, seed: int) -> Iterator[torch.Tensor]:
    """Fresh permutations of range(n) from `seed` (on the CPU, so every device sees the same
    batches for a seed)."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield torch.randperm(n, generator=gen)


def fit_threads_to_machine() -> int:
    """Use one CPU thread when the machine is already busy; return the thread count.

    With OpenMP's default spin-waiting, two torch threads on a 2-core machine that other
    processes also load ran SAE training 13x slower than one thread (measured: 4.5k vs 61k
    tokens/s). OMP_WAIT_POLICY=PASSIVE avoids that (41k tokens/s), but only if set before
    torch loads, so when it is not set and the load average exceeds the cores, drop to one.
    """
    if torch.cuda.is_available() or "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
        return torch.get_num_threads()
    cores = os.cpu_count() or 1
    if torch.get_num_threads() > 1 and os.getloadavg()[0] > cores - 0.5:
        log.warning("load average %.1f on %d cores: using 1 torch thread (set "
                    "OMP_WAIT_POLICY=PASSIVE to keep %d)", os.getloadavg()[0], cores,
                    torch.get_num_threads())
        torch.set_num_threads(1)
    return torch.get_num_threads()


def keep_freed_memory() -> bool:
    """Have glibc keep freed multi-megabyte blocks for reuse; True when it was set here.

    A training step allocates and frees activation-sized tensors (a 1024 x 8192 float32 code is
    32 MB). glibc serves blocks that large with mmap and unmaps them when freed, so each step
    page-faults and zero-fills them afresh; with mmap reserved for blocks over 32 MB and no
    trimming, the same SAE step ran in 7.9 instead of 10.2 ms (tiny preset, 2 cores). Skipped
    off glibc and where the user set MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_.
    """
    if not sys.platform.startswith("linux") or any(
            k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, or not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def _check_range(chunk: np.ndarray, dtype: np.dtype, preset: str) -> None:
    """Refuse activations the cache dtype cannot hold: a bfloat16 model's residual stream can
    exceed float16's range (65504), and an inf in the cache would make the scale 0 and every
    SAE trained on it NaN."""
    if np.issubdtype(dtype, np.floating) and chunk.size:
        top = float(np.abs(chunk).max())
        if not top <= float(np.finfo(dtype).max):
            raise ValueError(f"preset {preset}: an activation of magnitude {top:.3g} does not fit "
                             f"the cache dtype {np.dtype(dtype).name}; use cache_dtype='float32'")


class ActivationSource:
    """A preset's activations at its layer: cached train/eval splits and the model itself."""

    def __init__(self, preset: Preset | str | None = None) -> None:
        self.preset = preset if isinstance(preset, Preset) else resolve(preset)
        self.threads = fit_threads_to_machine()
        self.allocator_tuned = keep_freed_memory()
        self._lm: models.LanguageModel | None = None
        self._splits: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
        self._train: torch.Tensor | None = None
        """The training split in host memory (`host` mode)."""
        self._resident: torch.Tensor | None = None
        """The training split on the GPU (`resident` mode)."""
        self.loader: str | None = None
        """How the last `batches()` read the training split (LoaderMode, with the device)."""
        self.tokens_served = 0
        """Training activations handed out by `batches()` so far (the run's token count)."""

    # -- the language model (loaded only when needed) ------------------------------------
    @property
    def lm(self) -> models.LanguageModel:
        if self._lm is None:
            start = time.perf_counter()
            self._lm = models.load(self.preset)
            self._lm.info["load_seconds"] = time.perf_counter() - start
        return self._lm

    @property
    def lm_info(self) -> dict[str, Any]:
        """Load facts (seconds) if the model was loaded in this process, else {}."""
        return self._lm.info if self._lm is not None else {}

    # -- the cache ------------------------------------------------------------------------
    def entry(self, split: corpus.Split) -> Path:
        p = self.preset
        n_tokens = p.train_tokens if split == "train" else p.eval_tokens
        data = corpus.shipped_fingerprint() if DATASETS[p.dataset] is None else DATASETS[p.dataset]
        fields = {"model": p.model, "weights": models.fingerprint(p), "layer": p.layer,
                  "dataset": p.dataset, "data": data, "split": split, "tokens": n_tokens,
                  "context_len": p.context_len, "dtype": p.cache_dtype, "format": FORMAT}
        return cache.root() / "activations" / f"{p.model}-L{p.layer}-{split}-{cache.key(fields)}"

    def _split(self, split: corpus.Split) -> tuple[np.ndarray, dict[str, Any]]:
        if split not in self._splits:
            entry = self.entry(split)
            hit = (entry / "meta.json").exists()
            if not hit:
                with cache.locked(entry):
                    if not (entry / "meta.json").exists():
                        self._harvest(split, entry)
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
            meta["cache_hit"] = hit
            acts = np.load(entry / "acts.npy", mmap_mode="r")  # (n_tokens, d_in)
            self._splits[split] = (acts, meta)
        return self._splits[split]

    def _rows(self, split: corpus.Split, max_rows: int) -> Iterator[list[int]]:
        dataset_id, lm = DATASETS[self.preset.dataset], self.lm
        texts = corpus.shipped_texts(split) if dataset_id is None else \
            corpus.hub_texts(dataset_id, split)
        rows = corpus.sequences(texts, lm.encode, bos_id=lm.bos_id, sep_id=lm.sep_id,
                                context_len=self.preset.context_len,
                                max_rows=max_rows if dataset_id else 10**9)
        if dataset_id is not None:  # a stream: already in no particular order
            return rows
        # Shipped text comes work by work; shuffle rows (fixed seed) so a token budget
        # smaller than the split still samples every work.
        shipped = list(rows)
        order = torch.randperm(len(shipped), generator=torch.Generator().manual_seed(0))
        return iter([shipped[i] for i in order[:max_rows].tolist()])

    def _harvest(self, split: corpus.Split, entry: Path) -> None:
        p, lm = self.preset, self.lm
        want = p.train_tokens if split == "train" else p.eval_tokens
        # Separators make a row hold slightly fewer than context_len - 1 usable tokens.
        max_rows = math.ceil(want / (p.context_len - 1) * 1.1) + 1
        start = time.perf_counter()
        log.info("harvesting %d %s activations from %s layer %d", want, split, p.model, p.layer)
        with cache.staging(entry) as tmp:
            acts = np.lib.format.open_memmap(tmp / "acts.npy", mode="w+",
                                             dtype=np.dtype(p.cache_dtype),
                                             shape=(want, lm.d_model))
            kept_rows: list[list[int]] = []
            filled, rows_iter = 0, self._rows(split, max_rows)
            while filled < want:
                batch = [r for _, r in zip(range(p.llm_batch_size), rows_iter, strict=False)]
                if not batch:
                    break
                rows = torch.tensor(batch)
                x = residual(lm, rows, p.layer)  # (B, T, d_model)
                x = x[token_mask(rows, lm.special_ids).to(x.device)]  # (n, d_model), row-major
                take = min(len(x), want - filled)
                chunk = x[:take].float().cpu().numpy()
                _check_range(chunk, acts.dtype, p.name)
                acts[filled:filled + take] = chunk
                filled += take
                if split == "eval":
                    kept_rows.extend(batch)
            if filled < want:
                log.warning("%s split has only %d tokens (asked for %d)", split, filled, want)
            sq = np.zeros((), np.float64)
            for i in range(0, filled, 65536):
                sq += np.square(acts[i:i + 65536].astype(np.float64)).sum()
            acts.flush()
            del acts
            if filled < want:  # rewrite at the true length
                full = np.load(tmp / "acts.npy", mmap_mode="r")[:filled].copy()
                np.save(tmp / "acts.npy", full)
            if kept_rows:
                np.save(tmp / "rows.npy", np.asarray(kept_rows, dtype=np.int64))
            meta = {"n_tokens": filled, "d_in": lm.d_model, "mean_sq_norm": float(sq) / filled,
                    "harvest_seconds": time.perf_counter() - start, "model": p.model,
                    "weights": lm.fingerprint, "layer": p.layer, "dataset": p.dataset,
                    "split": split, "context_len": p.context_len,
                    "special_ids": list(lm.special_ids)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    # -- what templates use ---------------------------------------------------------------
    @property
    def d_in(self) -> int:
        return int(self._split("train")[1]["d_in"])

    @property
    def scale(self) -> float:
        """Multiplier applied to raw activations so that E||x||^2 = d_in on the train split."""
        return math.sqrt(self.d_in / self._split("train")[1]["mean_sq_norm"])

    @property
    def train_tokens(self) -> int:
        return int(self._split("train")[1]["n_tokens"])

    def loader_mode(self, device: str | torch.device) -> LoaderMode:
        """How `batches()` reads the training split for `device` (see `LOADER_ENV`)."""
        forced = os.environ.get(LOADER_ENV, "").strip().lower()
        if forced:
            if forced not in ("host", "resident", "stream"):
                raise ValueError(f"{LOADER_ENV}={forced!r}: use host, resident or stream")
            return forced  # type: ignore[return-value]
        device = indexed(device)
        if device.type != "cuda":
            return "host"
        if self._resident is not None and self._resident.device == device:
            return "resident"
        return "resident" if fits_on(device, self._split("train")[0].nbytes) else "stream"

    def batches(self, batch_size: int, steps: int, *, seed: int = 0,
                device: str | torch.device = "cpu") -> Iterator[torch.Tensor]:
        """`steps` shuffled training batches (batch_size, d_in), float32, scaled, on `device`.

        Epochs are fresh permutations from `seed`, so a run is reproducible, and the batches
        are the same on every device and in every `loader_mode`: the whole split in this
        process's memory (CPU), on the GPU when it fits there, or else each batch gathered
        from the memory-mapped cache (shared by every process through the page cache) into a
        pinned buffer and copied while the GPU works on the previous step.
        """
        device = indexed(device)  # "cuda" -> "cuda:0": the resident split's device compares equal
        mode = self.loader_mode(device)
        mm = self._split("train")[0]  # (n_tokens, d_in), raw, cache dtype, memory-mapped
        scale, n = self.scale, len(mm)
        epochs = _epochs(n, seed)
        order, pos = next(epochs), 0
        if mode == "host":
            if self._train is None:  # read the whole split into memory once
                self._train = torch.from_numpy(np.array(mm))
            acts = self._train
        elif mode == "resident":
            if self._resident is None or self._resident.device != device:
                self._resident = None
                try:
                    self._resident = to_device(mm, device)
                except torch.cuda.OutOfMemoryError:  # e.g. other seeds took the memory first
                    log.warning("the training split (%.1f GB) did not fit on %s: streaming it",
                                mm.nbytes / 1e9, device)
                    mode = "stream"
                    torch.cuda.empty_cache()
            if self._resident is not None:
                acts = self._resident
                order = order.to(device)  # one copy per epoch, not one per step
        if mode == "stream":
            staging = Staging(batch_size, mm.shape[1], torch_dtype(mm.dtype), device)
        self.loader = f"{mode} ({device})"
        for _ in range(steps):
            if pos + batch_size > len(order):
                order, pos = next(epochs), 0
                if mode == "resident":
                    order = order.to(device)
            idx = order[pos:pos + batch_size]
            pos += batch_size
            self.tokens_served += len(idx)
            if mode == "stream":
                rows = idx.numpy()
                ascending = np.argsort(rows, kind="stable")  # read the file forwards

                def fill(dst: np.ndarray, rows: np.ndarray = rows,
                         ascending: np.ndarray = ascending) -> None:
                    dst[ascending] = mm[rows[ascending]]

                raw = staging.send(fill, len(idx))
            else:
                raw = acts[idx]
            yield raw.to(device=device, dtype=torch.float32) * scale

    def release(self) -> None:
        """Drop the training split held in memory or on the GPU (the cache is untouched)."""
        self._train = self._resident = None
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()

    def eval_activations(self) -> torch.Tensor:
        """Held-out activations (eval_tokens, d_in), float32, scaled like the training ones."""
        acts = torch.from_numpy(np.array(self._split("eval")[0], dtype=np.float32))
        return acts.mul_(self.scale)  # in place: one host copy of the split, not two

    def ce_rows(self) -> torch.Tensor:
        """Held-out token rows (n_rows, context_len) covering about `ce_tokens` tokens."""
        self._split("eval")
        rows = torch.from_numpy(np.load(self.entry("eval") / "rows.npy"))
        n = max(1, math.ceil(self.preset.ce_tokens / (self.preset.context_len - 1)))
        return rows[:n]

    def describe(self) -> dict[str, Any]:
        """What the run used, for final_info (config and the harness section)."""
        train, evl = self._split("train")[1], self._split("eval")[1]
        p = self.preset
        return {"model": p.model, "model_label": MODEL_LABELS.get(p.model, p.model),
                "layer": p.layer, "dataset": p.dataset,
                "dataset_label": DATASET_LABELS.get(p.dataset, p.dataset),
                "context_len": p.context_len,
                "train_tokens_available": train["n_tokens"], "eval_tokens": evl["n_tokens"],
                "act_scale": self.scale, "activation_cache_hit": bool(train["cache_hit"]),
                "harvest_seconds": 0.0 if train["cache_hit"] else train["harvest_seconds"],
                "torch_threads": self.threads, "malloc_keeps_freed_memory": self.allocator_tuned}
