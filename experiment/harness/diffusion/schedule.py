"""The noise schedule a run declares, validated and turned into betas by trusted code.

A run declares `{"num_timesteps": T, "beta_schedule": KIND, ...}` in diffusion_meta.json:

    linear     beta_t evenly spaced from beta_start to beta_end (DDPM; the baseline's)
    quadratic  sqrt(beta_t) evenly spaced from sqrt(beta_start) to sqrt(beta_end)
    cosine     alpha_bar(t) = cos^2(((t/T) + s) / (1 + s) * pi/2) (Nichol & Dhariwal 2021),
               betas clipped at max_beta (default 0.999); `s` defaults to 0.008
    custom     `betas`: the list of T values itself

Whatever the kind, every beta must lie in (0, 1) and T in [1, MAX_TIMESTEPS]. The evaluator
samples with these betas; the experiment should train with the same (`betas(schedule)`).
Pure numpy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_TIMESTEPS = 1000
"""Sampling costs one graph call per timestep per dataset: DDPM's own 1000 is the most."""
KINDS = ("linear", "quadratic", "cosine", "custom")


class ScheduleError(ValueError):
    """The declared schedule is not one the evaluator can sample with (said for the author)."""


def _number(schedule: dict[str, Any], key: str, default: float | None = None) -> float:
    value = schedule.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScheduleError(f"the schedule's {key} must be a finite number, not {value!r}")
    return float(value)


def betas(schedule: Any) -> np.ndarray:
    """The declared schedule's betas (T,) float64; raises ScheduleError saying what is wrong."""
    if not isinstance(schedule, dict):
        raise ScheduleError("the run declares no noise schedule: diffusion_meta.json needs "
                            '"schedule": {"num_timesteps": T, "beta_schedule": "linear", ...}')
    T = schedule.get("num_timesteps")
    if isinstance(T, bool) or not isinstance(T, int) or not 1 <= T <= MAX_TIMESTEPS:
        raise ScheduleError(f"num_timesteps must be an integer from 1 to {MAX_TIMESTEPS}, not {T!r}")
    kind = schedule.get("beta_schedule")
    if kind == "linear":
        out = np.linspace(_number(schedule, "beta_start"), _number(schedule, "beta_end"), T)
    elif kind == "quadratic":
        start, end = _number(schedule, "beta_start"), _number(schedule, "beta_end")
        if start < 0 or end < 0:
            raise ScheduleError("quadratic: beta_start and beta_end must be positive")
        out = np.linspace(math.sqrt(start), math.sqrt(end), T) ** 2
    elif kind == "cosine":
        s, max_beta = _number(schedule, "s", 0.008), _number(schedule, "max_beta", 0.999)
        if not 0 <= s < 1 or not 0 < max_beta < 1:
            raise ScheduleError("cosine: s must be in [0, 1) and max_beta in (0, 1)")
        steps = np.arange(T + 1, dtype=np.float64) / T
        alpha_bar = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        out = np.minimum(1 - alpha_bar[1:] / alpha_bar[:-1], max_beta)
    elif kind == "custom":
        raw = schedule.get("betas")
        if not isinstance(raw, list) or len(raw) != T or not all(
                isinstance(b, (int, float)) and not isinstance(b, bool) for b in raw):
            raise ScheduleError(f"custom: betas must be a list of num_timesteps={T} numbers")
        out = np.asarray(raw, dtype=np.float64)
    else:
        raise ScheduleError(f"beta_schedule must be one of {', '.join(KINDS)}, not {kind!r}")
    if not (np.isfinite(out).all() and (out > 0).all() and (out < 1).all()):
        bad = out[~(np.isfinite(out) & (out > 0) & (out < 1))]
        raise ScheduleError(f"every beta must lie strictly between 0 and 1 (a {kind} schedule "
                            f"gives {float(bad[0])!r}): check beta_start and beta_end")
    return out


def describe(schedule: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
    """What a record states about a validated schedule."""
    alpha_bar = np.cumprod(1 - values)
    facts: dict[str, Any] = {"num_timesteps": int(len(values)),
                             "beta_schedule": str(schedule["beta_schedule"]),
                             "beta_first": float(values[0]), "beta_last": float(values[-1]),
                             "alpha_bar_final": float(alpha_bar[-1])}
    for key in ("beta_start", "beta_end", "s", "max_beta"):
        if key in schedule and schedule["beta_schedule"] != "custom":
            facts[key] = float(schedule[key])
    return facts
