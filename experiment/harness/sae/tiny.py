"""The `tiny` preset's language model: a 3-layer GPT-NeoX trained here on the shipped text.

Built once per cache directory (tokenizer + weights, a few tens of seconds on 2 CPU cores) and
reused by every later run and test. Deterministic: fixed seeds, one fixed data order, and
`torch.use_deterministic_algorithms`; the cache key hashes the spec and the shipped text, so
changing either builds a new model instead of silently reusing an old one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import cache
from harness.sae import corpus

log = logging.getLogger(__name__)

BOS = "<|endoftext|>"
"""Begins every row and separates documents (GPT-NeoX convention: BOS == EOS)."""
PAD = "<|padding|>"


@dataclass(frozen=True)
class TinySpec:
    """Everything that determines the tiny model; hashed into its cache key."""

    vocab_size: int = 2048
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    d_mlp: int = 512
    context_len: int = 128
    steps: int = 400
    """Optimizer steps; 400 x 16 x 128 = 0.8M tokens, about 1.3 epochs of the train split."""
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.1
    seed: int = 0
    version: int = 1
    """Bump when the training code changes in a way the fields above do not capture."""


SPEC = TinySpec()
MODEL_NAME = "tiny-neox-shakespeare"


def cache_dir(spec: TinySpec = SPEC) -> Path:
    key = cache.key({"spec": asdict(spec), "text": corpus.shipped_fingerprint()})
    return cache.root() / "models" / f"{MODEL_NAME}-{key}"


def train_tokenizer(spec: TinySpec = SPEC) -> Any:
    """Byte-level BPE on the train split; deterministic for a given tokenizers version."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size, special_tokens=[BOS, PAD], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus.shipped_texts("train"), trainer=trainer)
    return tok


def _train_model(spec: TinySpec, rows: Any, out: Path) -> dict[str, float]:
    """Train GPTNeoXForCausalLM on `rows` (n_rows, context_len) and save it to `out`."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(spec.seed)
    config = GPTNeoXConfig(
        vocab_size=spec.vocab_size, hidden_size=spec.d_model, num_hidden_layers=spec.n_layers,
        num_attention_heads=spec.n_heads, intermediate_size=spec.d_mlp,
        max_position_embeddings=spec.context_len, rotary_pct=0.25, use_parallel_residual=True,
        tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, pad_token_id=1,
        hidden_dropout=0.0, attention_dropout=0.0)
    model = GPTNeoXForCausalLM(config)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=spec.lr, betas=(0.9, 0.95))

    def lr_at(step: int) -> float:  # linear warmup, cosine decay to 10%
        if step < spec.warmup_steps:
            return spec.lr * (step + 1) / spec.warmup_steps
        frac = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
        return spec.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    gen = torch.Generator().manual_seed(spec.seed)
    epochs = math.ceil(spec.steps * spec.batch_size / len(rows))
    order = torch.cat([torch.randperm(len(rows), generator=gen) for _ in range(epochs)])
    model.train()
    start, losses = time.perf_counter(), []
    for step in range(spec.steps):
        batch = rows[order[step * spec.batch_size:(step + 1) * spec.batch_size]]
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 100 == 0:
            log.info("tiny model step %d/%d loss %.3f", step, spec.steps, losses[-1])
    model.eval()
    model.save_pretrained(out)
    tail = losses[-50:]
    return {"train_seconds": time.perf_counter() - start, "final_loss": sum(tail) / len(tail)}


def build(spec: TinySpec = SPEC) -> Path:
    """The directory holding the tiny model (tokenizer.json, config, weights); builds it once."""
    target = cache_dir(spec)
    if (target / "build.json").exists():
        return target
    with cache.locked(target):
        if not (target / "build.json").exists():  # else another process built it meanwhile
            _build_into(spec, target)
    return target


def _build_into(spec: TinySpec, target: Path) -> None:
    import torch

    log.info("building the tiny model in %s (once per cache directory)", target)
    # One thread: the result then does not depend on the core count, and on a busy 2-core
    # machine one thread ran 3x faster than two waiting on each other (measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with cache.staging(target) as tmp:
            start = time.perf_counter()
            tok = train_tokenizer(spec)
            tok.save(str(tmp / "tokenizer.json"))
            tok_seconds = time.perf_counter() - start
            rows = list(corpus.sequences(
                corpus.shipped_texts("train"),
                lambda texts: [e.ids for e in tok.encode_batch(texts)],
                bos_id=tok.token_to_id(BOS), sep_id=tok.token_to_id(BOS),
                context_len=spec.context_len, max_rows=10**9))
            stats = _train_model(spec, torch.tensor(rows), tmp)
            info = {"spec": asdict(spec), "tokenizer_seconds": tok_seconds,
                    "train_rows": len(rows), **stats, "torch": torch.__version__}
            (tmp / "build.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)
    log.info("tiny model built in %.0f s (final train loss %.2f)",
             info["train_seconds"], info["final_loss"])
