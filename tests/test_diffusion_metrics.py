"""The 2d_diffusion evaluator's distances against closed forms: the kNN KL estimate between
2-D Gaussians, and the energy distance between shifted Gaussians."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ive

from harness.diffusion.metrics import energy_distance, knn_kl

N = 4000


def gaussian_kl(mu0: np.ndarray, cov0: np.ndarray, mu1: np.ndarray, cov1: np.ndarray) -> float:
    """KL(N(mu0, cov0) || N(mu1, cov1)) in nats."""
    inv1 = np.linalg.inv(cov1)
    diff = mu1 - mu0
    return 0.5 * float(np.trace(inv1 @ cov0) + diff @ inv1 @ diff - len(mu0)
                       + math.log(np.linalg.det(cov1) / np.linalg.det(cov0)))


def _sample(rng: np.random.Generator, mu: list[float], cov: list[list[float]], n: int = N) -> np.ndarray:
    return rng.multivariate_normal(np.array(mu), np.array(cov), n)


CASES = [  # (mu0, cov0, mu1, cov1)
    ([0, 0], [[1, 0], [0, 1]], [1, 0], [[1, 0], [0, 1]]),                 # shift: 0.5
    ([0, 0], [[1, 0.5], [0.5, 1]], [0, 0], [[1, 0], [0, 1]]),             # correlation
    ([0, 0], [[0.5, 0], [0, 2]], [0.5, -0.5], [[1, 0.3], [0.3, 1.5]]),     # both differ
    ([0, 0], [[1, 0], [0, 1]], [0, 0], [[4, 0], [0, 4]]),                 # Q wider
]


@pytest.mark.parametrize(("mu0", "cov0", "mu1", "cov1"), CASES)
def test_knn_kl_matches_the_closed_form_for_gaussians(mu0: list[float], cov0: list[list[float]],
                                                      mu1: list[float], cov1: list[list[float]]) -> None:
    rng = np.random.default_rng(0)
    expected = gaussian_kl(np.array(mu0, float), np.array(cov0, float), np.array(mu1, float),
                           np.array(cov1, float))
    estimate = knn_kl(_sample(rng, mu0, cov0), _sample(rng, mu1, cov1))
    assert estimate == pytest.approx(expected, abs=0.05 + 0.1 * expected)


def test_knn_kl_of_a_distribution_with_itself_is_near_zero() -> None:
    rng = np.random.default_rng(1)
    cov = [[1, 0.8], [0.8, 2]]
    assert abs(knn_kl(_sample(rng, [3, -1], cov), _sample(rng, [3, -1], cov))) < 0.03


def test_knn_kl_is_symmetric_where_the_closed_form_is() -> None:
    # equal covariances: KL(P||Q) = KL(Q||P) = |mu|^2 / 2
    rng = np.random.default_rng(2)
    p, q = _sample(rng, [0, 0], [[1, 0], [0, 1]]), _sample(rng, [0.8, 0.6], [[1, 0], [0, 1]])
    forward, backward = knn_kl(p, q), knn_kl(q, p)
    assert forward == pytest.approx(0.5, abs=0.06) and backward == pytest.approx(0.5, abs=0.06)
    assert forward == pytest.approx(backward, abs=0.06)


def test_knn_kl_grows_as_the_mean_shifts() -> None:
    rng = np.random.default_rng(3)
    p = _sample(rng, [0, 0], [[1, 0], [0, 1]])
    q = _sample(rng, [0, 0], [[1, 0], [0, 1]])
    estimates = [knn_kl(p, q + np.array([shift, 0])) for shift in (0.0, 0.5, 1.0, 2.0, 3.0)]
    assert estimates == sorted(estimates), estimates
    # KL = shift^2 / 2; far-apart samples are underestimated at finite n (the q-neighbours of
    # p's points lie in q's tail): within 10% up to KL 2, within 20% at 4.5
    assert estimates[3] == pytest.approx(2.0, rel=0.1)
    assert estimates[4] == pytest.approx(4.5, rel=0.2)


def test_knn_kl_counts_missing_modes_and_survives_duplicate_points() -> None:
    rng = np.random.default_rng(4)
    real = np.concatenate([_sample(rng, [-3, 0], [[0.1, 0], [0, 0.1]], 1000),
                           _sample(rng, [3, 0], [[0.1, 0], [0, 0.1]], 1000)])
    one_mode = _sample(rng, [-3, 0], [[0.1, 0], [0, 0.1]], 2000)
    both = real[rng.permutation(len(real))] + rng.normal(0, 0.01, real.shape)
    assert knn_kl(real, one_mode) > 1.0 > knn_kl(real, both)
    collapsed = np.zeros((2000, 2))  # every sample on one point: finite, large
    assert math.isfinite(knn_kl(real, collapsed)) and knn_kl(real, collapsed) > 5


def _rice_mean(nu: float, sigma: float) -> float:
    """E|Z| for Z ~ N(mu, sigma^2 I_2) with |mu| = nu (the Rice distribution's mean)."""
    a = nu**2 / (4 * sigma**2)  # L_{1/2}(-2a) = (1 + 2a) I0e(a) + 2a I1e(a), exponents folded in
    return sigma * math.sqrt(math.pi / 2) * ((1 + 2 * a) * ive(0, a) + 2 * a * ive(1, a))


@pytest.mark.parametrize("shift", [0.0, 0.5, 1.0, 2.0])
def test_energy_distance_matches_the_closed_form_for_shifted_gaussians(shift: float) -> None:
    # X - Y ~ N(mu, 2I) and X - X' ~ N(0, 2I): ED = 2 E|X - Y| - 2 E|X - X'|
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3000, 2))
    y = rng.normal(size=(3000, 2)) + np.array([shift, 0.0])
    expected = 2 * _rice_mean(shift, math.sqrt(2)) - 2 * _rice_mean(0.0, math.sqrt(2))
    assert energy_distance(x, y) == pytest.approx(expected, abs=0.02 + 0.05 * expected)


def test_energy_distance_of_point_masses_is_twice_their_distance() -> None:
    x, y = np.zeros((10, 2)), np.tile([3.0, 4.0], (10, 1))
    assert energy_distance(x, y) == pytest.approx(10.0)
