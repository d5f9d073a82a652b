"""Matrix products that skip the zeros of a sparse SAE code: same numbers, less arithmetic.

A trained SAE fires a few dozen of its thousands of latents per token, so three of the five
matmuls of a training step multiply mostly zeros: the decoder's forward `f @ W_dec`, its weight
gradient `f^T @ dx_hat`, and the encoder's weight gradient `x^T @ dpre` (the gradient reaching
the pre-activations is zero wherever ReLU or TopK output zero). The two functions here are
drop-in replacements for `torch.addmm` that find those zeros in the actual values (not from any
assumption about the activation) and multiply only the rest, so they are exact for any SAE:

    addmm_skip_zeros(bias, f, w)       == torch.addmm(bias, f, w), skipping the zeros of f
                                          (forward, and w's gradient)
    addmm_skip_grad_zeros(bias, x, w)  == torch.addmm(bias, x, w), its backward skipping the
                                          zeros of the incoming gradient (w's and x's gradients)

The gradient with respect to f is always computed densely, since an activation may pass
gradient where f is zero (a JumpReLU threshold trained by a straight-through estimator does).

When it pays: on the CPU, float32/float64, with a code at most 1/32 non-zero and a product
width of at least 256 (finding the non-zeros costs about one pass over the code, ~1 ns per
element on two cores, while a dense product costs 2 * width FLOPs per element; at width 128 the
search costs more than it saves). Otherwise, and on GPUs, both are plain `torch.addmm`.
The results equal the dense product up to float rounding (the sums run in another order).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch

from harness import DENSE_MATMUL_ENV

MAX_DENSITY = 1 / 32
"""Skip zeros only when at most this fraction of the entries is non-zero."""
MIN_WIDTH = 256
"""...and the product's other dimension (d_in for an SAE) is at least this wide."""
ESTIMATE_ROWS = 64
"""Rows whose density decides whether the whole matrix is searched for its non-zeros."""
DISABLE_ENV = DENSE_MATMUL_ENV
"""Set to 1 to always multiply densely (to compare, or to rule the sparse path out)."""

calls = {"sparse": 0, "dense": 0}
"""How many products took each path in this process (for tests and the benchmark)."""


def as_csr(t: torch.Tensor, width: int) -> torch.Tensor | None:
    """t (n, m) as a CSR matrix when skipping its zeros pays (see the module docstring)."""
    if torch.compiler.is_compiling():
        # While torch.export traces (harness.sae.export), a data-dependent density check cannot be
        # traced: the exported graph multiplies densely (same numbers).
        return None
    if (t.device.type != "cpu" or t.dim() != 2 or t.dtype not in (torch.float32, torch.float64)
            or width < MIN_WIDTH or os.environ.get(DISABLE_ENV) == "1"):
        return None
    sample = t[:ESTIMATE_ROWS]  # a cheap look first: a dense t costs no full search
    if int(torch.count_nonzero(sample)) > sample.numel() * MAX_DENSITY:
        return None
    rows, cols = t.nonzero().unbind(1)  # row-major order, as CSR stores them
    if len(rows) > t.numel() * MAX_DENSITY:
        return None
    crow = torch.zeros(t.shape[0] + 1, dtype=torch.int64)
    torch.cumsum(torch.bincount(rows, minlength=t.shape[0]), 0, out=crow[1:])
    with warnings.catch_warnings():  # torch calls CSR support "beta" once per process
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols, t[rows, cols], t.shape,
                                       check_invariants=False)  # built valid above


def _count(sparse: torch.Tensor | None) -> None:
    calls["dense" if sparse is None else "sparse"] += 1


class _SkipZerosAddmm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, bias: torch.Tensor, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        f_csr = as_csr(f, w.shape[1])
        _count(f_csr)
        ctx.f_csr, ctx.bias_shape = f_csr, bias.shape
        ctx.save_for_backward(f, w)
        return torch.addmm(bias, f, w) if f_csr is None else torch.mm(f_csr, w).add_(bias)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        f, w = ctx.saved_tensors
        need_bias, need_f, need_w = ctx.needs_input_grad
        grad_bias = g.sum_to_size(ctx.bias_shape) if need_bias else None
        grad_f = g @ w.T if need_f else None  # dense: see the module docstring
        grad_w = None
        if need_w:
            grad_w = f.T @ g if ctx.f_csr is None else ctx.f_csr.t() @ g
        ctx.f_csr = None
        return grad_bias, grad_f, grad_w


class _SkipGradZerosAddmm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, bias: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.bias_shape = bias.shape
        ctx.save_for_backward(x, w)
        return torch.addmm(bias, x, w)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, w = ctx.saved_tensors
        need_bias, need_x, need_w = ctx.needs_input_grad
        g_csr = as_csr(g, x.shape[1]) if (need_w or need_x) else None
        _count(g_csr)
        grad_bias = g.sum_to_size(ctx.bias_shape) if need_bias else None
        grad_x = grad_w = None
        if g_csr is None:
            grad_x = g @ w.T if need_x else None
            grad_w = x.T @ g if need_w else None
        else:
            grad_x = g_csr @ w.T if need_x else None
            grad_w = torch.mm(x.T, g_csr) if need_w else None
        return grad_bias, grad_x, grad_w


def addmm_skip_zeros(bias: torch.Tensor, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """bias + f @ w for f (n, k), w (k, m), skipping the zeros of f in the forward product and
    in w's gradient; exact (see the module docstring)."""
    return _SkipZerosAddmm.apply(bias, f, w)


def addmm_skip_grad_zeros(bias: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """bias + x @ w for x (n, m), w (m, k), whose backward skips the zeros of the gradient
    arriving at the output (zero wherever a ReLU or TopK after it outputs zero); exact."""
    return _SkipGradZerosAddmm.apply(bias, x, w)
