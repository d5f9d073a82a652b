"""The 2d_diffusion template's evaluation contract, read by `harness.provenance.contract`.

Torch-free constants only: the orchestrator reads them to know which files a seed exports, which
weights file it checks, and what to tell a model whose experiment exported nothing.

The experiment trains one denoiser per dataset and exports each as a graph of ONE tensor:
z (N, 3) float32 = [x, y, t] (a 2-D point and its integer timestep t in [0, T) as a float)
-> eps_hat (N, 2), the predicted noise (DDPM's epsilon parameterisation). The evaluator runs the
sampler itself with the noise schedule the run declares in `diffusion_meta.json`.
"""

from __future__ import annotations

EVALUATOR = "harness.diffusion.evaluator"
DATASETS = ("moons", "circle", "line", "spiral")
"""The point clouds, in the order the record lists them (`harness.diffusion.data`)."""
META = "diffusion_meta.json"
CHECKPOINT = "denoiser.safetensors"
"""Every dataset's denoiser state dict, keys `<dataset>.<parameter>`; checked by the evaluator."""


def graph_file(dataset: str) -> str:
    return f"denoiser_{dataset}.pt2"


EXPORTS = {**{f"denoiser_{d}_sha256": graph_file(d) for d in DATASETS}, "meta_sha256": META}
"""Provenance key -> file the experiment exports into each seed folder."""
EXPORT_HINT = ("call harness.diffusion.finish(out_dir, denoisers, schedule, cfg, ...) as the "
               "baseline does: it exports one denoiser graph per dataset and the declared noise "
               "schedule; metrics written by experiment.py itself are ignored")
PREPARE = None
"""No cache to fill: the point clouds are generated in code, in milliseconds."""
