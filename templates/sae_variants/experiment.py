"""A sparse autoencoder (SAE) on a language model's residual stream: the file ideas change.

The trusted harness (its SAE package `harness.sae`, not editable) supplies the activations and computes
every reported metric from the trained SAE; this file defines the SAE and how it is trained.
Activations arrive scaled so that E||x||^2 = d_in, whatever the model.

Run: python experiment.py --out_dir=run_1
Seeds: EXPERIMENT_SEED=1 python experiment.py --out_dir=run_1/seed_1 (the loop runs each seed so)
"""

import argparse
import time
from dataclasses import dataclass

import torch
import torch.nn as nn

import harness.sae as harness  # the trusted harness's SAE evaluation


@dataclass
class Config:
    expansion_factor: int = 8      # d_sae = expansion_factor * d_in (the gates need >= 4)
    activation: str = "relu"       # "relu" (sparsity from the L1 penalty) or "topk"
    k: int = 32                    # latents kept per token when activation == "topk"
    l1_penalty: float = 1.5        # weight of sum_i |f_i| against the squared error (relu only)
    lr: float = 1e-3               # Adam learning rate after warmup
    lr_warmup_steps: int = 100     # linear LR warmup from 0
    lr_decay_frac: float = 0.2     # LR decays linearly to 0 over this last fraction of steps
    l1_warmup_frac: float = 0.05   # L1 weight ramps from 0 over this first fraction of steps
    batch_size: int = 1024         # activations (tokens) per step
    epochs: int | None = None      # passes over the cached training activations; None: the
                                   # preset's (tiny: 4 over its small corpus; cpu, gpu: 1)
    seed: int = 0                  # the loop sets EXPERIMENT_SEED per seed (harness.run_seed)
    log_every: int = 200           # steps between progress lines


class CustomSAE(nn.Module):
    """f = act(W_enc^T (x - b_dec) + b_enc);  x_hat = W_dec^T f + b_dec.

    Decoder rows have unit norm (the trainer renormalises them after each step), so the L1
    penalty cannot be dodged by shrinking f and growing W_dec.
    """

    def __init__(self, d_in: int, d_sae: int, activation: str = "relu", k: int = 32):
        super().__init__()
        self.d_in, self.d_sae, self.activation, self.k = d_in, d_sae, activation, k
        w_dec = torch.randn(d_sae, d_in)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)                # (d_sae, d_in)
        self.W_enc = nn.Parameter(w_dec.T.clone())      # (d_in, d_sae), tied at init
        self.b_enc = nn.Parameter(torch.zeros(d_sae))   # (d_sae,)
        self.b_dec = nn.Parameter(torch.zeros(d_in))    # (d_in,)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, d_in) -> f (n, d_sae), non-negative and sparse."""
        # (x - b_dec) @ W_enc + b_enc with b_dec folded into the bias: one fused matmul, and
        # b_dec's gradient through the encoder is a vector product instead of a third matmul.
        # Same as torch.addmm; its backward skips the zeros ReLU/TopK leave in the gradient.
        pre = harness.addmm_skip_grad_zeros(self.b_enc - self.b_dec @ self.W_enc, x, self.W_enc)
        if self.activation == "topk":
            top = pre.topk(self.k, dim=-1)
            return torch.zeros_like(pre).scatter_(-1, top.indices, torch.relu(top.values))
        return torch.relu_(pre)  # in place: autograd keeps only the output

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """f (n, d_sae) -> x_hat (n, d_in)."""
        # f @ W_dec + b_dec: same as torch.addmm(self.b_dec, f, self.W_dec), but the product
        # (and W_dec's gradient) skips the zeros of f. Exact for any f.
        return harness.addmm_skip_zeros(self.b_dec, f, self.W_dec)

    def forward(self, x: torch.Tensor, output_features: bool = False):
        f = self.encode(x)
        x_hat = self.decode(f)
        return (x_hat, f) if output_features else x_hat


class CustomTrainer:
    """Adam on squared error + L1 (relu), with LR warmup/decay and an L1 warmup."""

    def __init__(self, sae: CustomSAE, total_steps: int, lr: float, l1_penalty: float,
                 lr_warmup_steps: int, lr_decay_frac: float, l1_warmup_frac: float):
        self.sae, self.total_steps = sae, total_steps
        self.lr, self.l1_penalty = lr, l1_penalty
        self.lr_warmup_steps, self.lr_decay_frac = lr_warmup_steps, lr_decay_frac
        self.l1_warmup_frac = l1_warmup_frac
        self.optimizer = torch.optim.Adam(sae.parameters(), lr=lr, betas=(0.9, 0.999),
                                          fused=True)  # one kernel for all parameters

    def lr_factor(self, step: int) -> float:
        warm = min(1.0, (step + 1) / max(1, self.lr_warmup_steps))
        decay_start = self.total_steps * (1 - self.lr_decay_frac)
        decay = min(1.0, (self.total_steps - step) / max(1.0, self.total_steps - decay_start))
        return warm * decay

    def l1_factor(self, step: int) -> float:
        return min(1.0, step / max(1.0, self.l1_warmup_frac * self.total_steps))

    def loss(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x_hat, f = self.sae(x, output_features=True)
        recon = (x - x_hat).pow(2).sum(dim=-1).mean()   # squared error per token
        l1 = f.sum(dim=-1).mean()                       # L1 of the code per token (f >= 0)
        loss = recon
        if self.sae.activation == "relu":
            loss = loss + self.l1_penalty * self.l1_factor(step) * l1
        l0 = f.detach().sign().sum(dim=-1).mean()       # latents firing per token (f >= 0)
        return loss, {"loss": loss, "recon": recon, "l1": l1, "l0": l0}

    def update(self, step: int, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * self.lr_factor(step)
        loss, parts = self.loss(x, step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():  # keep decoder rows on the unit sphere
            self.sae.W_dec /= self.sae.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)
        return parts


def main(out_dir: str) -> None:
    cfg = Config()
    cfg.seed = harness.run_seed(cfg.seed)  # EXPERIMENT_SEED: the loop trains each run with several
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    source = harness.ActivationSource()  # preset: EXPERIMENT_PRESET, else ./preset.json
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sae = CustomSAE(source.d_in, cfg.expansion_factor * source.d_in, cfg.activation, cfg.k)
    sae.to(device)
    with torch.no_grad():  # start b_dec at the data mean, so latents code deviations from it
        sae.b_dec.copy_(next(source.batches(8192, 1, seed=cfg.seed + 1, device=device)).mean(0))
    epochs = cfg.epochs or source.preset.train_epochs
    steps = epochs * source.train_tokens // cfg.batch_size
    trainer = CustomTrainer(sae, steps, cfg.lr, cfg.l1_penalty, cfg.lr_warmup_steps,
                            cfg.lr_decay_frac, cfg.l1_warmup_frac)
    print(f"preset {source.preset.name}: {source.preset.model} layer {source.preset.layer}, "
          f"d_in={source.d_in} d_sae={sae.d_sae}, {steps} steps of {cfg.batch_size} tokens")
    setup_s = time.perf_counter() - start
    parts: dict[str, torch.Tensor] = {}
    for step, x in enumerate(source.batches(cfg.batch_size, steps, seed=cfg.seed, device=device)):
        parts = trainer.update(step, x)
        if step % cfg.log_every == 0 or step == steps - 1:
            print(f"step {step:5d}  " + "  ".join(f"{k} {v.item():.4g}" for k, v in parts.items()))
    train_s = time.perf_counter() - start - setup_s
    record = harness.finish(
        out_dir, sae, source, cfg, trainer,
        timings={"setup_s": setup_s, "train_s": train_s},
        training={"steps": steps, "epochs": epochs, **{f"final_{k}": v.item() for k, v in parts.items()}})
    print(harness.summary(record))
    print(f"wrote {out_dir}/final_info.json and {out_dir}/sae.safetensors "
          f"in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out_dir", type=str, default="run_0")
    main(parser.parse_args().out_dir)
