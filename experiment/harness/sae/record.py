"""Finishing a run: save the SAE, export it for the evaluator, and have it evaluated.

`finish()` takes the trained SAE and the objects that configured it, never metric values. It
saves `run_i/sae.safetensors` (weights, and the config as metadata), exports encode/decode as graphs (`harness.sae.export`), and then, as typed by
hand, starts the evaluator (`harness.sae.evaluator`) in a fresh isolated process that writes
`run_i/final_info.json`. Under the loop (`HARNESS_EVALUATOR=orchestrator`) it stops after the
export: the orchestrator starts the evaluator itself, outside the experiment's process.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import torch

from harness import config as config_mod
from harness import provenance as prov
from harness import results
from harness.sae import contract
from harness.sae.activations import ActivationSource
from harness.sae.export import export_sae

CHECKPOINT = contract.CHECKPOINT
HEADLINE = ("l0", "explained_variance", "ce_loss_score", "kl_div_score", "dead_frac", "cosine")


def finish(out_dir: str | Path, sae: torch.nn.Module, source: ActivationSource,
           *configured: Any, timings: dict[str, float] | None = None,
           training: dict[str, Any] | None = None) -> dict[str, Any]:
    """Save `out_dir/sae.safetensors`, export the SAE, evaluate it in a separate process (which writes
    `out_dir/final_info.json`); return the record. Under the loop, return a pending record.

    `configured`: the config dataclass, the trainer, ... whose settings go into `config`
    (the SAE itself is always included). `training`: free-form training facts (final
    losses, steps) recorded under `training`, never under `metrics`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = source.describe()
    config = config_mod.collect(*configured, sae)
    config.update({
        "d_in": source.d_in, "model": data["model"], "layer": data["layer"],
        "dataset": data["dataset"], "preset": source.preset.name,
        "context_len": data["context_len"], "tokens": source.tokens_served,
        "act_scale": data["act_scale"], "sae_class": type(sae).__name__,
    })
    meta = export_sae(sae, source.d_in, out, meta={
        "config": config, "training": training or {}, "timings": dict(timings or {}),
        "tokens": source.tokens_served})
    config["d_sae"] = meta["d_sae"]
    save_checkpoint(sae, config, out / CHECKPOINT)
    if os.environ.get(prov.MODE_ENV) == "orchestrator":
        return {"metrics": {}, "config": config, "gates": [],
                "pending": "evaluation by the orchestrator (harness.sae.evaluator)"}
    # The evaluator is another process on the same device: leave it the GPU memory the
    # training split held (tens of GB for the gpu presets).
    source.release()
    argv = prov.evaluator_command(out.resolve(), source.preset.name, module=contract.EVALUATOR)
    done = subprocess.run(argv, cwd=Path.cwd(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the evaluator failed (exit {done.returncode}); see its output above")
    return results.read_final_info(out)


def save_checkpoint(sae: torch.nn.Module, config: dict[str, Any], path: Path) -> None:
    """The SAE's state dict as safetensors (a format the evaluator can read without running
    any code), the config as JSON metadata. Load it back with
    `sae.load_state_dict(safetensors.torch.load_file(path))`."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in sae.state_dict().items()
               if isinstance(v, torch.Tensor)}
    save_file(tensors, str(path), metadata={"config": json.dumps(config, default=str)})


def summary(record: dict[str, Any]) -> str:
    """A few human lines: the headline metrics and any failed gates."""
    m, c = record["metrics"], record["config"]
    lines = [f"{c.get('sae_class')} d_in={c.get('d_in')} d_sae={c.get('d_sae')} on "
             f"{c.get('model')} layer {c.get('layer')} ({c.get('preset')}, "
             f"{c.get('tokens')} training tokens)"]
    if record.get("pending"):
        return "\n".join([*lines, f"  metrics: pending ({record['pending']})"])
    parts = [f"{k}={m[k]:.4g}" for k in HEADLINE if isinstance(m.get(k), (int, float))]
    lines.append("  " + "  ".join(parts))
    for gate in record.get("gates", []):
        if gate["passed"] is not True:
            lines.append(f"  gate {gate['name']} ({gate['severity']}): {gate['message']}")
    return "\n".join(lines)
