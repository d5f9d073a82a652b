"""The trusted experiment harness: activations, evaluation and result records for templates.

Templates import it as `harness` (not `experiment`, which is the template's own script).
Importing the package is cheap and torch-free; the heavy names load on first use:

    cfg.seed = harness.run_seed(cfg.seed)    # EXPERIMENT_SEED, set per seed by the loop
    source = harness.ActivationSource()      # preset from EXPERIMENT_PRESET / preset.json
    for step, x in enumerate(source.batches(batch_size, steps, device=device)): ...
    record = harness.finish(out_dir, sae, source, cfg, trainer, timings=...)
    print(harness.summary(record))

    harness.addmm_skip_zeros(b, f, W)       # torch.addmm(b, f, W), skipping the zeros of f
    harness.addmm_skip_grad_zeros(b, x, W)  # torch.addmm(b, x, W), backward skips zero grads
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "ActivationSource": ("harness.activations", "ActivationSource"),
    "evaluate": ("harness.evaluate", "evaluate"),
    "finish": ("harness.record", "finish"),
    "summary": ("harness.record", "summary"),
    "collect_config": ("harness.config", "collect"),
    "resolve_preset": ("harness.presets", "resolve"),
    "run_seed": ("harness.seeds", "run_seed"),
    "addmm_skip_zeros": ("harness.sparse", "addmm_skip_zeros"),
    "addmm_skip_grad_zeros": ("harness.sparse", "addmm_skip_grad_zeros"),
}

__all__ = sorted(_LAZY)

DENSE_MATMUL_ENV = "HARNESS_DENSE_MATMUL"
"""Set to 1 to always multiply densely (`harness.sparse`; to compare, or to rule the sparse path
out). Here, not in `harness.sparse`, so that reading it imports no torch."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    return getattr(importlib.import_module(module), attr)
