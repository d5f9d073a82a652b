"""The 2-D point clouds: generated in code, deterministic, a training split for the experiment
and a held-out split that only the evaluator draws.

Each (dataset, split) has its own numpy random stream (`SeedSequence([DATA_SEED, dataset,
split])`), so the splits are independent draws of the same distribution (disjoint with
probability one) and the same on every machine. Shapes after the reference template's
(AI-Scientist's 2d_diffusion), with angles drawn at random rather than on a grid:

    moons   two interleaving half circles, Gaussian noise sd 0.03, stretched to about 4 x 3
    circle  a circle of radius 3, each point moved up to 0.09 in a random direction
    line    uniform on the rectangle [-2, 2] x [-4, 4] (the reference's "line")
    spiral  one arm of 1.5 turns out to radius 3, density growing outwards, noise sd 0.08

Pure numpy: the evaluator and the agent import it without torch.
"""

from __future__ import annotations

import math

import numpy as np

from harness.diffusion.contract import DATASETS

DATA_SEED = 20_240_825
SPLITS = {"train": 0, "eval": 1}
LABELS = {
    "moons": "two interleaving half circles (moons)",
    "circle": "a noisy circle",
    "line": "a uniform rectangle (the reference's line)",
    "spiral": "a one-armed spiral",
}
"""How a paper names each dataset."""


def _moons(rng: np.random.Generator, n: int) -> np.ndarray:
    upper = rng.random(n) < 0.5
    theta = rng.uniform(0.0, math.pi, n)
    x = np.where(upper, np.cos(theta), 1.0 - np.cos(theta))
    y = np.where(upper, np.sin(theta), 0.5 - np.sin(theta))
    pts = np.stack([x, y], 1) + rng.normal(0.0, 0.03, (n, 2))
    return np.stack([(pts[:, 0] + 0.3) * 2 - 1, (pts[:, 1] + 0.3) * 3 - 1], 1)


def _circle(rng: np.random.Generator, n: int) -> np.ndarray:
    theta = rng.uniform(0.0, 2 * math.pi, n)
    r, phi = rng.uniform(0.0, 0.03, n), rng.uniform(0.0, 2 * math.pi, n)
    x, y = np.cos(theta) + r * np.cos(phi), np.sin(theta) + r * np.sin(phi)
    return np.stack([x, y], 1) * 3


def _line(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-1.0, 1.0, n)], 1) * 4


def _spiral(rng: np.random.Generator, n: int) -> np.ndarray:
    u = rng.random(n)
    theta = 3 * math.pi * np.sqrt(u)  # density in the plane roughly uniform along the arm
    r = 3 * theta / (3 * math.pi)
    pts = np.stack([r * np.cos(theta), r * np.sin(theta)], 1)
    return pts + rng.normal(0.0, 0.08, (n, 2))


_MAKE = {"moons": _moons, "circle": _circle, "line": _line, "spiral": _spiral}
assert tuple(_MAKE) == DATASETS


def points(dataset: str, split: str, n: int) -> np.ndarray:
    """`n` points (n, 2) float32 of `dataset`'s `split` ("train" or "eval")."""
    if dataset not in _MAKE:
        raise ValueError(f"unknown dataset {dataset!r}; the datasets are {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use 'train' (the evaluator alone draws 'eval')")
    rng = np.random.default_rng(np.random.SeedSequence([DATA_SEED, DATASETS.index(dataset),
                                                        SPLITS[split]]))
    return _MAKE[dataset](rng, int(n)).astype(np.float32)


def train_data(preset: str | None = None) -> dict[str, np.ndarray]:
    """{dataset: training points (n_train, 2) float32} for the preset (default: the resolved
    one: EXPERIMENT_PRESET, ./preset.json, this machine's default)."""
    from harness.diffusion.presets import resolve

    n = resolve(preset).n_train
    return {d: points(d, "train", n) for d in DATASETS}
