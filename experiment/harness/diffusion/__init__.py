"""The 2d_diffusion template's trusted harness: its data, its export and its evaluator.

The template imports it as `import harness.diffusion as hd`. Importing is cheap and torch-free;
the names load on first use:

    seed = hd.run_seed(cfg.seed)                   # EXPERIMENT_SEED, set per seed by the loop
    preset = hd.resolve_preset()                   # EXPERIMENT_PRESET / preset.json / default
    data = hd.train_data()                         # {dataset: (n_train, 2) float32 array}
    betas = hd.betas(schedule)                     # the declared schedule's betas (validated)
    record = hd.finish(out_dir, denoisers, schedule, cfg, timings=..., training=...)
    print(hd.summary(record))

Each denoiser is called as `model(x, t)`: x (N, 2) float32 points, t (N,) int64 timesteps in
[0, T); it returns the predicted noise (N, 2). The evaluator (`harness.diffusion.evaluator`)
runs the exported graphs and the DDPM sampler itself; nothing here writes a metric.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "DATASETS": ("harness.diffusion.contract", "DATASETS"),
    "run_seed": ("harness.seeds", "run_seed"),
    "resolve_preset": ("harness.diffusion.presets", "resolve"),
    "train_data": ("harness.diffusion.data", "train_data"),
    "betas": ("harness.diffusion.schedule", "betas"),
    "collect_config": ("harness.config", "collect"),
    "finish": ("harness.diffusion.record", "finish"),
    "summary": ("harness.diffusion.record", "summary"),
    "fit_threads": ("harness.diffusion.record", "fit_threads"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'harness.diffusion' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    return getattr(importlib.import_module(module), attr)
