"""A denoising diffusion model (DDPM) on 2-D point clouds: the file ideas change.

The trusted harness (`harness.diffusion`, not editable) makes the data (moons, circle, line,
spiral: a training split here, a held-out split only the evaluator sees) and computes every
reported metric: it runs the exported denoisers inside its own DDPM sampler, with the noise
schedule this file declares, and compares the samples with held-out points. This file defines
the denoiser, the schedule it declares and how it is trained: one denoiser per dataset.

Run: python experiment.py --out_dir=run_1
Seeds: EXPERIMENT_SEED=1 python experiment.py --out_dir=run_1/seed_1 (the loop runs each seed so)
"""

import argparse
import math
import time
from dataclasses import dataclass

import torch
import torch.nn as nn

import harness.diffusion as hd


@dataclass
class Config:
    num_timesteps: int = 100          # T of the declared schedule (the evaluator samples T steps)
    beta_schedule: str = "linear"     # "linear", "quadratic", "cosine" or "custom" (hd.betas)
    beta_start: float = 1e-4          # beta_1 of a linear / quadratic schedule
    beta_end: float = 0.02            # beta_T of a linear / quadratic schedule
    train_batch_size: int = 256       # points per step
    num_train_steps: int | None = None  # per dataset; None: the preset's (tiny 400, cpu 1200, gpu 10000)
    learning_rate: float = 1e-3       # AdamW, cosine-annealed to 0 over the steps
    grad_clip: float = 0.5            # max gradient norm
    embedding_dim: int | None = None  # sinusoidal embedding size; None: the preset's (32, 64, 128)
    hidden_size: int | None = None    # MLP width; None: the preset's (64, 128, 256)
    hidden_layers: int = 3            # residual blocks
    input_scale: float = 25.0         # the coordinates' frequency scale in their embedding
    seed: int = 0                     # the loop sets EXPERIMENT_SEED per seed (hd.run_seed)
    log_every: int = 500              # steps between progress lines


class SinusoidalEmbedding(nn.Module):
    """x (N,) -> (N, dim): sin and cos of x * scale at geometric frequencies 1 ... 1/10000."""

    def __init__(self, dim: int, scale: float = 1.0):
        super().__init__()
        self.dim, self.scale = dim, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) / (half - 1) * torch.arange(half, device=x.device))
        angles = (x.float() * self.scale).unsqueeze(-1) * freqs  # (N, half)
        return torch.cat((torch.sin(angles), torch.cos(angles)), dim=-1)


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.ff = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.ff(x))


class MLPDenoiser(nn.Module):
    """eps_hat = MLP([emb(x_1), emb(x_2), emb(t)]): predicts the noise added to x at step t."""

    def __init__(self, embedding_dim: int, hidden_size: int, hidden_layers: int,
                 input_scale: float):
        super().__init__()
        self.embedding_dim, self.hidden_size = embedding_dim, hidden_size
        self.hidden_layers, self.input_scale = hidden_layers, input_scale
        self.time_emb = SinusoidalEmbedding(embedding_dim)
        self.x1_emb = SinusoidalEmbedding(embedding_dim, input_scale)
        self.x2_emb = SinusoidalEmbedding(embedding_dim, input_scale)
        self.network = nn.Sequential(
            nn.Linear(3 * embedding_dim, hidden_size),
            *[ResidualBlock(hidden_size) for _ in range(hidden_layers)],
            nn.ReLU(),
            nn.Linear(hidden_size, 2),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x (N, 2) points, t (N,) int64 timesteps -> (N, 2) predicted noise."""
        emb = torch.cat([self.x1_emb(x[:, 0]), self.x2_emb(x[:, 1]), self.time_emb(t)], dim=-1)
        return self.network(emb)


def train(model: MLPDenoiser, data: torch.Tensor, betas: torch.Tensor, cfg: Config, steps: int,
          gen: torch.Generator, name: str) -> dict[str, float]:
    """Noise-prediction MSE at uniformly drawn timesteps (DDPM's simple loss)."""
    device = data.device
    a_bar = torch.cumprod(1.0 - betas, dim=0).to(device)                  # (T,)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    loss = torch.zeros(())
    for step in range(steps):
        idx = torch.randint(0, len(data), (cfg.train_batch_size,), generator=gen).to(device)
        x0 = data[idx]                                                     # (B, 2)
        noise = torch.randn(x0.shape, generator=gen).to(device)            # (B, 2)
        t = torch.randint(0, len(betas), (len(x0),), generator=gen).to(device)  # (B,)
        ab = a_bar[t].unsqueeze(-1)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        loss = nn.functional.mse_loss(model(x_t, t), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        if step % cfg.log_every == 0 or step == steps - 1:
            print(f"{name:>7} step {step:5d}  loss {loss.item():.4f}")
    return {"final_loss": loss.item()}


def main(out_dir: str) -> None:
    cfg = Config()
    cfg.seed = hd.run_seed(cfg.seed)  # EXPERIMENT_SEED: the loop trains each run with several
    torch.manual_seed(cfg.seed)
    hd.fit_threads()
    preset = hd.resolve_preset()  # EXPERIMENT_PRESET, else ./preset.json, else this machine's
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg.num_train_steps = steps = cfg.num_train_steps or preset.train_steps  # the effective value, recorded
    cfg.embedding_dim = cfg.embedding_dim or preset.embedding_dim
    cfg.hidden_size = cfg.hidden_size or preset.hidden_size
    schedule = {"num_timesteps": cfg.num_timesteps, "beta_schedule": cfg.beta_schedule,
                "beta_start": cfg.beta_start, "beta_end": cfg.beta_end}
    betas = torch.from_numpy(hd.betas(schedule)).float()  # what the evaluator will sample with
    gen = torch.Generator().manual_seed(cfg.seed)
    print(f"preset {preset.name}: {steps} steps per dataset, hidden {cfg.hidden_size}, "
          f"T={cfg.num_timesteps} ({cfg.beta_schedule})")
    start = time.perf_counter()
    denoisers, training = {}, {}
    for name, points in hd.train_data(preset.name).items():
        model = MLPDenoiser(cfg.embedding_dim, cfg.hidden_size, cfg.hidden_layers,
                            cfg.input_scale).to(device)
        began = time.perf_counter()
        facts = train(model, torch.from_numpy(points).to(device), betas, cfg, steps, gen, name)
        seconds = time.perf_counter() - began
        denoisers[name] = model.eval()
        training[name] = {**facts, "steps": steps, "train_s": seconds,
                          "ms_per_step": 1000 * seconds / max(1, steps)}
    train_s = time.perf_counter() - start
    record = hd.finish(out_dir, denoisers, schedule, cfg, timings={"train_s": train_s},
                       training=training)
    print(hd.summary(record))
    print(f"wrote {out_dir}/final_info.json and {out_dir}/denoiser.safetensors "
          f"in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out_dir", type=str, default="run_0")
    main(parser.parse_args().out_dir)
