"""The sae_variants template's evaluation: activations of a language model, SAE metrics.

Its experiment imports it as `import harness.sae as harness`. Importing it is cheap and
torch-free; the heavy names load on first use:

    cfg.seed = harness.run_seed(cfg.seed)    # EXPERIMENT_SEED, set per seed by the loop
    source = harness.ActivationSource()      # preset from EXPERIMENT_PRESET / preset.json
    for step, x in enumerate(source.batches(batch_size, steps, device=device)): ...
    record = harness.finish(out_dir, sae, source, cfg, trainer, timings=...)
    print(harness.summary(record))

    harness.addmm_skip_zeros(b, f, W)       # torch.addmm(b, f, W), skipping the zeros of f
    harness.addmm_skip_grad_zeros(b, x, W)  # torch.addmm(b, x, W), backward skips zero grads

What the loop relies on (exports, checkpoint, evaluator, cache filling) is in `contract`.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "ActivationSource": ("harness.sae.activations", "ActivationSource"),
    "evaluate": ("harness.sae.evaluate", "evaluate"),
    "finish": ("harness.sae.record", "finish"),
    "summary": ("harness.sae.record", "summary"),
    "collect_config": ("harness.config", "collect"),
    "resolve_preset": ("harness.sae.presets", "resolve"),
    "run_seed": ("harness.seeds", "run_seed"),
    "addmm_skip_zeros": ("harness.sae.sparse", "addmm_skip_zeros"),
    "addmm_skip_grad_zeros": ("harness.sae.sparse", "addmm_skip_grad_zeros"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'harness.sae' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    return getattr(importlib.import_module(module), attr)
