"""Presets of the 2d_diffusion template: how many points, and the training defaults.

Selection (`resolve(None)`): `EXPERIMENT_PRESET`, else `preset.json` in the current directory
(the run directory; the loop writes it), else the default: `gpu` with a CUDA device, else `cpu`.
Every preset runs on a CPU (`gpu` is the reference's own scale: minutes per seed there).

Pure Python, no torch import: the agent imports this to validate ideas and run settings.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

PRESET_ENV = "EXPERIMENT_PRESET"
PRESET_FILE = "preset.json"


@dataclass(frozen=True)
class Preset:
    """One named experiment scale."""

    name: str
    n_train: int
    """Training points per dataset (the split experiment.py gets)."""
    n_eval: int
    """Held-out points per dataset (evaluator only): denoising loss and the distances."""
    n_generate: int
    """Points the evaluator samples from each denoiser."""
    train_steps: int
    """Training steps per dataset unless the experiment's config says otherwise."""
    hidden_size: int
    """Denoiser width unless the experiment's config says otherwise."""
    embedding_dim: int
    """Sinusoidal embedding size unless the experiment's config says otherwise."""
    timeout_s: int
    """Suggested per-run timeout (template.toml repeats it)."""
    description: str


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("tiny", n_train=2_000, n_eval=1_000, n_generate=1_000, train_steps=400, hidden_size=64,
           embedding_dim=32, timeout_s=300,
           description="For tests and CI: 400 steps per dataset, hidden 64; seconds on 2 CPU cores."),
    Preset("cpu", n_train=8_000, n_eval=2_000, n_generate=2_000, train_steps=1_200,
           hidden_size=128, embedding_dim=64, timeout_s=600,
           description="1,200 steps per dataset, hidden 128: under a minute a run (3 seeds) on "
                       "2 CPU cores."),
    Preset("gpu", n_train=8_000, n_eval=10_000, n_generate=10_000, train_steps=10_000,
           hidden_size=256, embedding_dim=128, timeout_s=3600,
           description="The reference's scale: 10,000 steps per dataset, hidden 256, 10,000 "
                       "samples evaluated; minutes on a GPU."),
)}


class PresetUnavailable(RuntimeError):
    """An unknown preset was asked for; the message lists the known ones."""


def cuda_present() -> bool:
    """Whether torch can use a CUDA device (torch is asked only when it is already loaded or
    an NVIDIA driver is present)."""
    import sys

    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if not Path("/proc/driver/nvidia/version").exists():
        return False
    import torch

    return bool(torch.cuda.is_available())


def available() -> dict[str, str | None]:
    """Every preset name -> None: each runs wherever torch does (the larger ones slowly on a CPU)."""
    return dict.fromkeys(PRESETS)


def default_name() -> str:
    return "gpu" if cuda_present() else "cpu"


def requested(cwd: Path | None = None) -> str | None:
    """The preset named by `EXPERIMENT_PRESET` or `./preset.json`, if any."""
    if name := os.environ.get(PRESET_ENV):
        return name
    path = (cwd or Path.cwd()) / PRESET_FILE
    if path.is_file():
        try:
            found = json.loads(path.read_text(encoding="utf-8")).get("preset")
        except (ValueError, AttributeError) as err:
            raise PresetUnavailable(f'{path} is not JSON of the form {{"preset": "tiny"}}') from err
        return str(found) if found else None
    return None


def resolve(name: str | None = None) -> Preset:
    """The preset to run: `name`, else the requested one, else this machine's default."""
    name = name or requested() or default_name()
    if name not in PRESETS:
        raise PresetUnavailable(f"unknown preset '{name}'; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
