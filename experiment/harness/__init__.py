"""The trusted experiment harness: the shared core, and one package per template's evaluation.

Templates import it as `harness` (not `experiment`, which is the template's own script).
Importing it is cheap and torch-free. The core is template-neutral:

    cache        $HARNESS_CACHE_DIR, content keys, locks, atomic staging
    provenance   file and harness hashes; the isolated command lines of every trusted process;
                 `contract(evaluator)`, what a template's evaluation package promises
    seeds        a run's seeds: `run_seed()`, their means and 95% intervals
    graph_run    running a torch.export archive without pickle, kernel by kernel, allowlisted
    results      writing final_info.json (metrics, config, gates); `gates` the gate expressions
    config       the full effective configuration of a run, by introspection
    figures      drawing the figures a plot.py declares, from the results (`figure_spec` checks)
    machine      whether torch can use a GPU here (without importing torch)
    transfer     arrays onto a device

A template's evaluation lives in `harness.<package>` (`harness.sae`, `harness.diffusion`):
its data, what its experiment calls to export what it trained (`finish`), and its evaluator,
the only writer of metrics, described by `harness.<package>.contract`.

    cfg.seed = harness.run_seed(cfg.seed)    # EXPERIMENT_SEED, set per seed by the loop
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "collect_config": ("harness.config", "collect"),
    "run_seed": ("harness.seeds", "run_seed"),
}

__all__ = sorted(_LAZY)

DENSE_MATMUL_ENV = "HARNESS_DENSE_MATMUL"
"""Set to 1 to always multiply densely (`harness.sae.sparse`; to compare, or to rule the sparse
path out). Here, where reading it imports no torch: the loop keys cached baselines by it."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    return getattr(importlib.import_module(module), attr)
