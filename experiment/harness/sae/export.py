"""Exporting a trained SAE for the evaluator: `run_i/sae_encode.pt2`, `sae_decode.pt2`, `sae_meta.json`.

The evaluator (`harness.sae.evaluator`) runs in a process of its own that never imports the
template's Python: it runs these two `torch.export` graphs (x -> f, f -> x_hat) with
`harness.graph_run` and forms the reconstruction as decode(encode(x)) itself. The meta file
carries what the training process reports (config, training facts, timings, groups and
levels); the evaluator records it as reported, never as a metric.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from harness import cache
from harness.graph_run import GraphProgram, Refused
from harness.sae.contract import DECODE, ENCODE, META

TRACE_ROWS = 300
CHECK_ROWS = 37  # another batch size than the trace's: a graph specialised to one fails here


class ExportError(RuntimeError):
    """The SAE's encode/decode could not be exported as graphs."""


class _Method(torch.nn.Module):
    """One method of the SAE (`encode` or `decode`) as a module's forward, for export."""

    def __init__(self, sae: torch.nn.Module, name: str):
        super().__init__()
        self.sae, self.name = sae, name

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return getattr(self.sae, self.name)(t)


def _saved(program: torch.export.ExportedProgram) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # "No complete tensor found in the group": CPU weights
        warnings.simplefilter("ignore", UserWarning)
        torch.export.save(program, buffer)
    return buffer.getvalue()


def _index_lists(spec: Any) -> Any:
    """groups()/levels() as JSON: tensors become lists of ints."""
    if isinstance(spec, torch.Tensor):
        return [int(v) for v in spec.flatten().tolist()]
    if isinstance(spec, dict):
        return {str(k): _index_lists(v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_index_lists(v) for v in spec]
    return int(spec)


def export_sae(sae: torch.nn.Module, d_in: int, out_dir: str | Path,
               meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the encode and decode graphs (CPU, eval mode, any batch size) and the meta file;
    return the meta written. Raises ExportError saying what to change."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(sae).cpu().float().eval()
    batch = torch.export.Dim("batch", min=2, max=1 << 24)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(TRACE_ROWS, d_in, generator=gen)
    x_check = torch.randn(CHECK_ROWS, d_in, generator=gen)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # torch's own treespec deprecation, raised inside run_decompositions
            warnings.simplefilter("ignore", FutureWarning)
            f = model.encode(x)
            # Functional graphs (run_decompositions with no decomposition): in-place code
            # becomes its pure kernel, and a write to a buffer or to the input becomes an
            # extra output, which the evaluator refuses.
            encode = torch.export.export(_Method(model, "encode"), (x,),
                                         dynamic_shapes=({0: batch},)).run_decompositions({})
            decode = torch.export.export(_Method(model, "decode"), (f,),
                                         dynamic_shapes=({0: batch},)).run_decompositions({})
    except Exception as exc:  # torch raises many kinds here; all mean the same to the author
        raise ExportError(
            "encode/decode must be exportable with torch.export: no .item(), no Python branches "
            f"on tensor values, no data-dependent shapes ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''})") from exc
    archives = {ENCODE: _saved(encode), DECODE: _saved(decode)}
    # What the evaluator will run, run the way it will run it: refused here, with the reason,
    # rather than after the run; and equal to the SAE's own encode/decode on another batch size.
    try:
        enc, dec = (GraphProgram(archives[name]) for name in (ENCODE, DECODE))
    except Refused as exc:
        raise ExportError(f"the exported encode/decode use what the evaluator does not run "
                          f"({exc}): use pure tensor operations on parameters and the input; "
                          "encode/decode must not modify buffers or their input") from exc
    with torch.no_grad():
        f_check = model.encode(x_check)
        same = torch.allclose(enc(x_check), f_check, rtol=1e-4, atol=1e-5) and \
            torch.allclose(dec(f_check), model.decode(f_check), rtol=1e-4, atol=1e-5)
    if not same:
        raise ExportError("the exported encode/decode differ from the SAE's own on another batch "
                          "size: encode/decode must not depend on the batch size or on Python "
                          "state other than parameters")
    for name, data in archives.items():
        (out / name).write_bytes(data)
    record: dict[str, Any] = {"sae_class": type(sae).__name__, "d_in": int(d_in),
                              "d_sae": int(f.shape[-1]), **(meta or {})}
    for name in ("groups", "levels"):
        fn = getattr(sae, name, None)
        if callable(fn):
            record[name] = _index_lists(fn())
    cache.write_atomically(out / META, json.dumps(record, indent=2, default=str) + "\n")
    return record
