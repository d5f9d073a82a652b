"""Finishing a run: evaluate the SAE, save it, and write `run_i/final_info.json`.

`finish()` takes the trained SAE and the objects that configured it, never metric values:
the numbers in final_info come from `harness.evaluate`, and `d_in`/`d_sae` are measured.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import torch

from harness import config as config_mod
from harness import results
from harness.activations import ActivationSource
from harness.evaluate import Report, evaluate

CHECKPOINT = "sae.pt"
HEADLINE = ("l0", "explained_variance", "ce_loss_score", "kl_div_score", "dead_frac", "cosine")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def finish(out_dir: str | Path, sae: torch.nn.Module, source: ActivationSource,
           *configured: Any, timings: dict[str, float] | None = None,
           training: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate `sae`, save `out_dir/sae.pt`, write `out_dir/final_info.json`; return the record.

    `configured`: the config dataclass, the trainer, ... whose settings go into `config`
    (the SAE itself is always included). `training`: free-form training facts (final
    losses, steps) recorded under `training`, never under `metrics`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: Report = evaluate(sae, source)
    data = source.describe()
    config = config_mod.collect(*configured, sae)
    config.update({
        "d_in": report.d_in, "d_sae": report.d_sae, "model": data["model"],
        "layer": data["layer"], "dataset": data["dataset"], "preset": source.preset.name,
        "context_len": data["context_len"], "tokens": source.tokens_served,
        "act_scale": data["act_scale"], "sae_class": type(sae).__name__,
    })
    ckpt = out / CHECKPOINT
    torch.save({"state_dict": sae.state_dict(), "config": config}, ckpt)
    lm_info = source.lm_info
    all_timings = {**(timings or {}), "harvest_s": data["harvest_seconds"],
                   "model_load_s": lm_info.get("load_seconds", 0.0), "eval_s": report.seconds}
    extra = {
        "preset": source.preset.name,  # the one that ran, however it was chosen
        "measurements": report.measurements,
        "evaluation": {**report.windows, "held_out": f"{data['dataset']} eval split"},
        "data": data,
        "checkpoint": {"path": CHECKPOINT, "sha256": _sha256(ckpt)},
        "training": training or {},
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return results.write_final_info(out, report.metrics, config, timings=all_timings,
                                    extra=extra)


def summary(record: dict[str, Any]) -> str:
    """A few human lines: the headline metrics and any failed gates."""
    m, c = record["metrics"], record["config"]
    parts = [f"{k}={m[k]:.4g}" for k in HEADLINE if isinstance(m.get(k), (int, float))]
    lines = [f"{c.get('sae_class')} d_in={c.get('d_in')} d_sae={c.get('d_sae')} on "
             f"{c.get('model')} layer {c.get('layer')} ({c.get('preset')}, "
             f"{c.get('tokens')} training tokens)", "  " + "  ".join(parts)]
    for gate in record.get("gates", []):
        if gate["passed"] is not True:
            lines.append(f"  gate {gate['name']} ({gate['severity']}): {gate['message']}")
    return "\n".join(lines)
