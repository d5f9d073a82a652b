"""Exporting the trained denoisers for the evaluator: one graph per dataset and the meta file.

Each denoiser `model(x, t)` (x (N, 2) float32, t (N,) int64 -> predicted noise (N, 2)) is
wrapped as a function of one tensor, z (N, 3) = [x, y, t], because the graph interpreter
(`harness.graph_run`) runs graphs of one input: the evaluator packs the timestep as a float
column and the wrapper hands the model `t = z[:, 2].round().long()`. The graph is traced at one
batch size, checked against the eager model at another, and loaded the way the evaluator will
load it, so a graph the evaluator would refuse is refused here, with the reason.
"""

from __future__ import annotations

import copy
import io
import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from harness import cache
from harness.diffusion.contract import DATASETS, META, graph_file
from harness.graph_run import GraphProgram, Refused

TRACE_ROWS = 300
CHECK_ROWS = 37  # another batch size than the trace's: a graph specialised to one fails here
WRAPPED = "model."
"""Prefix of the denoiser's parameter names in the graph (the wrapper holds it as `model`)."""


class ExportError(RuntimeError):
    """A denoiser could not be exported as a graph the evaluator runs; says what to change."""


class Packed(torch.nn.Module):
    """The denoiser as a function of one tensor z (N, 3) = [x, y, t] -> eps_hat (N, 2)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z[:, :2], z[:, 2].round().long())


def packed_input(n: int, num_timesteps: int, gen: torch.Generator) -> torch.Tensor:
    """Points spread over the data's range (and beyond), with random timesteps: (n, 3)."""
    x = torch.randn(n, 2, generator=gen) * 3
    t = torch.randint(0, num_timesteps, (n, 1), generator=gen).float()
    return torch.cat([x, t], dim=1)


def _without_metadata_asserts(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """Drop the dtype/device assertions torch.export records for `.long()`, `.float()`, `.to()`
    (`aten._assert_tensor_metadata`): they compute nothing, and the interpreter runs only an
    allowlist of kernels that compute."""
    graph = program.graph_module.graph
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target is torch.ops.aten._assert_tensor_metadata.default \
                and not node.users:
            graph.erase_node(node)
    graph.lint()
    program.graph_module.recompile()
    return program


def _saved(program: torch.export.ExportedProgram) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # "No complete tensor found in the group": CPU weights
        warnings.simplefilter("ignore", UserWarning)
        torch.export.save(program, buffer)
    return buffer.getvalue()


def export_one(model: torch.nn.Module, num_timesteps: int, name: str = "denoiser") -> bytes:
    """The archive of `model`'s graph, verified; raises ExportError saying what to change."""
    wrapped = Packed(copy.deepcopy(model).cpu().float().eval())
    batch = torch.export.Dim("batch", min=2, max=1 << 24)
    gen = torch.Generator().manual_seed(0)
    z, z_check = packed_input(TRACE_ROWS, num_timesteps, gen), packed_input(CHECK_ROWS, num_timesteps, gen)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's own treespec deprecation
            out = wrapped(z)
            # Functional graphs: in-place code becomes its pure kernel, and a write to a buffer
            # or to the input becomes an extra output, which the interpreter refuses.
            program = _without_metadata_asserts(torch.export.export(
                wrapped, (z,), dynamic_shapes=({0: batch},)).run_decompositions({}))
    except Exception as exc:  # torch raises many kinds here; all mean the same to the author
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ExportError(
            f"the {name} denoiser must be exportable with torch.export: no .item(), no Python "
            f"branches on tensor values, no data-dependent shapes ({type(exc).__name__}: {first})"
        ) from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (TRACE_ROWS, 2):
        raise ExportError(f"the {name} denoiser must return the predicted noise as one (N, 2) "
                          f"tensor, not {getattr(out, 'shape', type(out).__name__)}")
    archive = _saved(program)
    try:
        graph = GraphProgram(archive)
    except Refused as exc:
        raise ExportError(f"the exported {name} denoiser uses what the evaluator does not run "
                          f"({exc}): use pure tensor operations on parameters and the input, and "
                          "compute constants inside forward (no tensors created in __init__ "
                          "that are not parameters or persistent buffers)") from exc
    with torch.no_grad():
        same = torch.allclose(graph(z_check), wrapped(z_check), rtol=1e-4, atol=1e-5,
                              equal_nan=True)  # a NaN denoiser is the evaluator's to judge
    if not same:
        raise ExportError(f"the exported {name} denoiser differs from the model on another batch "
                          "size: forward must not depend on the batch size or on Python state "
                          "other than parameters")
    return archive


def export_denoisers(denoisers: dict[str, torch.nn.Module], num_timesteps: int,
                     out_dir: str | Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Write `denoiser_<dataset>.pt2` for every dataset and `diffusion_meta.json`; return the
    meta written."""
    if sorted(denoisers) != sorted(DATASETS):
        raise ExportError(f"finish() needs one denoiser per dataset, {{{', '.join(DATASETS)}}}; "
                          f"got {{{', '.join(map(str, denoisers))}}}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    archives = {d: export_one(denoisers[d], num_timesteps, d) for d in DATASETS}
    meta = {**meta, "timings": {**meta.get("timings", {}), "export_s": time.perf_counter() - start}}
    for dataset, data in archives.items():
        (out / graph_file(dataset)).write_bytes(data)
    first = denoisers[DATASETS[0]]
    record = {"denoiser_class": type(first).__name__, "datasets": list(DATASETS),
              "graph_input": "z (N, 3) float32 = [x, y, t]; output: predicted noise (N, 2)",
              "prediction": "epsilon", **meta}
    cache.write_atomically(out / META, json.dumps(record, indent=2, default=str) + "\n")
    return record
