"""harness.sae.sparse: the products that skip a sparse code's zeros give torch.addmm's numbers and
gradients, take the sparse path only where it pays, and never drop gradient where f is zero."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from harness.sae import sparse

N, D_IN, D_SAE = 64, 256, 2048  # D_IN >= sparse.MIN_WIDTH


def _code(n: int = N, d_sae: int = D_SAE, per_row: int = 12, seed: int = 0) -> torch.Tensor:
    """(n, d_sae) float64, `per_row` positive entries per row (density 12/2048 < 1/32)."""
    g = torch.Generator().manual_seed(seed)
    f = torch.zeros(n, d_sae, dtype=torch.float64)
    idx = torch.stack([torch.randperm(d_sae, generator=g)[:per_row] for _ in range(n)])
    f.scatter_(1, idx, torch.rand(n, per_row, generator=g, dtype=torch.float64) + 0.1)
    return f


def _grads(op: Callable[..., torch.Tensor], bias: torch.Tensor, a: torch.Tensor,
           w: torch.Tensor, weights: torch.Tensor) -> list[torch.Tensor]:
    leaves = [t.detach().clone().requires_grad_() for t in (bias, a, w)]
    out = op(*leaves)
    (out * weights).sum().backward()  # a loss that weighs every output differently
    return [out.detach(), *(t.grad for t in leaves)]  # type: ignore[misc]


def _counts() -> dict[str, int]:
    return dict(sparse.calls)


@pytest.mark.parametrize("bias_shape", [(D_IN,), (N, D_IN), (1, D_IN)])
def test_skip_zeros_equals_addmm_with_every_gradient(bias_shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    f, w = _code(), torch.randn(D_SAE, D_IN, dtype=torch.float64)
    bias, weights = torch.randn(bias_shape, dtype=torch.float64), torch.randn(N, D_IN,
                                                                              dtype=torch.float64)
    before = _counts()
    ours = _grads(sparse.addmm_skip_zeros, bias, f, w, weights)
    assert sparse.calls["sparse"] == before["sparse"] + 1  # the sparse path ran
    reference = _grads(torch.addmm, bias, f, w, weights)
    for name, a, b in zip(("out", "bias", "f", "w"), ours, reference, strict=True):
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, msg=name)


def test_gradient_reaches_f_where_f_is_zero() -> None:
    """An activation may pass gradient where its output is zero (a JumpReLU threshold trained
    by a straight-through estimator): the gradient with respect to f must be the dense one."""
    torch.manual_seed(1)
    f, w = _code(), torch.randn(D_SAE, D_IN, dtype=torch.float64)
    weights = torch.randn(N, D_IN, dtype=torch.float64)
    _, _, grad_f, _ = _grads(sparse.addmm_skip_zeros, torch.zeros(D_IN, dtype=torch.float64),
                             f, w, weights)
    zero = f == 0
    assert grad_f[zero].abs().min() > 0  # every zero entry still gets its gradient
    torch.testing.assert_close(grad_f, weights @ w.T)


def test_skip_grad_zeros_equals_addmm_for_any_sparse_gradient() -> None:
    """The gradient's zeros are found in its values, not assumed from the forward: here they
    follow no activation at all, and x's gradient is asked for too."""
    torch.manual_seed(2)
    x, w = torch.randn(N, D_IN, dtype=torch.float64), torch.randn(D_IN, D_SAE, dtype=torch.float64)
    bias = torch.randn(D_SAE, dtype=torch.float64)
    weights = _code(seed=3) * torch.randn(N, D_SAE, dtype=torch.float64)  # sparse upstream grad
    before = _counts()
    ours = _grads(sparse.addmm_skip_grad_zeros, bias, x, w, weights)
    assert sparse.calls["sparse"] == before["sparse"] + 1
    reference = _grads(torch.addmm, bias, x, w, weights)
    for name, a, b in zip(("out", "bias", "x", "w"), ours, reference, strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_relu_in_place_after_the_encoder_product_keeps_exact_gradients() -> None:
    """The template's encode: relu_ on the product's output, then the code is decoded."""
    torch.manual_seed(4)
    x = torch.randn(N, D_IN, dtype=torch.float64)
    w_enc = (torch.randn(D_IN, D_SAE, dtype=torch.float64) / D_IN**0.5).requires_grad_()
    b_enc = torch.full((D_SAE,), -2.5, dtype=torch.float64, requires_grad=True)
    w_dec = torch.randn(D_SAE, D_IN, dtype=torch.float64, requires_grad=True)
    b_dec = torch.zeros(D_IN, dtype=torch.float64, requires_grad=True)
    params = [w_enc, b_enc, w_dec, b_dec]

    def run(enc: Callable[..., torch.Tensor], dec: Callable[..., torch.Tensor]
            ) -> list[torch.Tensor]:
        f = torch.relu_(enc(b_enc, x, w_enc))
        x_hat = dec(b_dec, f, w_dec)
        loss = (x_hat - x).pow(2).sum() + 0.7 * f.sum()
        return [f.detach(), *torch.autograd.grad(loss, params)]

    before = _counts()
    ours = run(sparse.addmm_skip_grad_zeros, sparse.addmm_skip_zeros)
    assert sparse.calls["sparse"] == before["sparse"] + 2  # decoder forward, encoder backward
    assert 0 < (ours[0] > 0).double().mean() <= sparse.MAX_DENSITY
    for name, a, b in zip(("f", "W_enc", "b_enc", "W_dec", "b_dec"), ours,
                          run(torch.addmm, torch.addmm), strict=True):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize("case", ["dense code", "narrow", "float16", "disabled"])
def test_falls_back_to_the_dense_product_where_skipping_does_not_pay(
        case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(5)
    f, d_in, dtype = _code(), D_IN, torch.float64
    if case == "dense code":
        f = torch.rand(N, D_SAE, dtype=torch.float64)
    elif case == "narrow":
        d_in = sparse.MIN_WIDTH // 2
    elif case == "float16":
        dtype = torch.float16
    else:
        monkeypatch.setenv(sparse.DISABLE_ENV, "1")
    f, w = f.to(dtype), torch.randn(D_SAE, d_in, dtype=dtype)
    bias = torch.randn(d_in, dtype=dtype)
    before = _counts()
    out = sparse.addmm_skip_zeros(bias, f, w)
    assert sparse.calls == {"sparse": before["sparse"], "dense": before["dense"] + 1}
    assert torch.equal(out, torch.addmm(bias, f, w))  # the very same kernel


def test_a_sparse_sample_over_dense_rows_is_not_trusted() -> None:
    """The first rows decide whether to search; the full count decides whether to use it."""
    f = _code(n=4 * sparse.ESTIMATE_ROWS)
    f[sparse.ESTIMATE_ROWS:] = 1.0  # dense after the sampled rows
    assert sparse.as_csr(f, D_IN) is None
    sparse_f = _code(n=4 * sparse.ESTIMATE_ROWS)
    csr = sparse.as_csr(sparse_f, D_IN)
    assert csr is not None and torch.equal(csr.to_dense(), sparse_f)
