"""Finishing a run: save the denoisers, export them for the evaluator, and have them evaluated.

`finish()` takes the trained denoisers, the noise schedule the run declares and the objects that
configured it, never metric values. It validates the schedule (as the evaluator will), exports
one graph per dataset (`harness.diffusion.export`), saves `denoiser.safetensors`, and then, as
typed by hand, starts the evaluator (`harness.diffusion.evaluator`) in a fresh isolated process
that writes `out_dir/final_info.json`. Under the loop (`HARNESS_EVALUATOR=orchestrator`) it
stops after the export: the orchestrator starts the evaluator itself.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import torch

from harness import config as config_mod
from harness import provenance as prov
from harness import results
from harness.diffusion import contract, presets
from harness.diffusion import schedule as schedule_mod
from harness.diffusion.export import export_denoisers

log = logging.getLogger(__name__)
HEADLINE = ("kl_mean", "energy_mean", "eval_loss_mean")


def fit_threads() -> int:
    """One torch thread when the machine is busy (and nobody chose: OMP_NUM_THREADS unset);
    return the thread count. Small MLPs gain little from a second thread, and two spinning
    OpenMP threads on 2 loaded cores run many times slower than one."""
    if torch.cuda.is_available() or "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    cores = os.cpu_count() or 1
    if torch.get_num_threads() > 1 and os.getloadavg()[0] > cores - 0.5:
        torch.set_num_threads(1)
    return torch.get_num_threads()


def finish(out_dir: str | Path, denoisers: dict[str, torch.nn.Module], schedule: dict[str, Any],
           *configured: Any, timings: dict[str, float] | None = None,
           training: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export and save every dataset's denoiser with the declared `schedule`, evaluate them in
    a separate process (which writes `out_dir/final_info.json`); return the record. Under the
    loop, return a pending record.

    `schedule`: {"num_timesteps": T, "beta_schedule": "linear" | "quadratic" | "cosine" |
    "custom", ...} (`harness.diffusion.schedule`). `configured`: the config dataclass and
    other objects whose settings go into `config`. `training`: free-form facts (final losses,
    steps), recorded under `training`, never under `metrics`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    schedule_mod.betas(schedule)  # refused here as the evaluator would refuse it
    preset = presets.resolve()
    first = next(iter(denoisers.values()), None)
    config = config_mod.collect(*configured, *([first] if first is not None else []))
    config.update({"preset": preset.name, "n_train": preset.n_train,
                   "datasets": list(contract.DATASETS),
                   "num_timesteps": schedule["num_timesteps"],
                   "beta_schedule": schedule["beta_schedule"],
                   "denoiser_class": type(first).__name__})
    export_denoisers(denoisers, int(schedule["num_timesteps"]), out, meta={
        "schedule": schedule, "config": config, "training": training or {},
        "timings": dict(timings or {})})
    save_checkpoint(denoisers, config, out / contract.CHECKPOINT)
    if os.environ.get(prov.MODE_ENV) == "orchestrator":
        return {"metrics": {}, "config": config, "gates": [],
                "pending": f"evaluation by the orchestrator ({contract.EVALUATOR})"}
    argv = prov.evaluator_command(out.resolve(), preset.name, module=contract.EVALUATOR)
    done = subprocess.run(argv, cwd=Path.cwd(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the evaluator failed (exit {done.returncode}); see its output above")
    return results.read_final_info(out)


def save_checkpoint(denoisers: dict[str, torch.nn.Module], config: dict[str, Any],
                    path: Path) -> None:
    """Every denoiser's state dict in one safetensors file (keys `<dataset>.<name>`; a format
    the evaluator reads without running code), the config as JSON metadata."""
    from safetensors.torch import save_file

    tensors = {f"{d}.{k}": v.detach().cpu().contiguous().clone()
               for d, model in denoisers.items() for k, v in model.state_dict().items()
               if isinstance(v, torch.Tensor)}
    save_file(tensors, str(path), metadata={"config": json.dumps(config, default=str)})


def summary(record: dict[str, Any]) -> str:
    """A few human lines: the headline metrics and any failed gates."""
    c, m = record["config"], record["metrics"]
    lines = [f"{c.get('denoiser_class')} on {', '.join(c.get('datasets') or [])} "
             f"({c.get('preset')}, T={c.get('num_timesteps')} {c.get('beta_schedule')})"]
    if record.get("pending"):
        return "\n".join([*lines, f"  metrics: pending ({record['pending']})"])
    lines.append("  " + "  ".join(f"{k}={m[k]:.4g}" for k in HEADLINE
                                  if isinstance(m.get(k), (int, float))))
    for gate in record.get("gates", []):
        if gate["passed"] is not True:
            lines.append(f"  gate {gate['name']} ({gate['severity']}): {gate['message']}")
    return "\n".join(lines)
