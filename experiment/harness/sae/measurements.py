"""Idea-specific measurements the harness computes from the SAE itself (not from its claims).

- Decoder geometry: pairwise |cos| between decoder directions (mean over distinct pairs, max),
  and condition numbers of groups of decoder directions (unit-normalised rows, so the number
  reflects their angles, not their norms).
- Groups: `sae.groups()` if the SAE defines it (a list of latent-index lists, or a (d_sae,)
  tensor of group ids); otherwise contiguous blocks of d_in // 4 latents.
- Levels (hierarchical SAEs): `sae.levels()` -> {name: latent indices}. For each level the
  evaluation reports L0 over its latents and the explained variance of `decode(f)` with only
  that level's latents kept (others zeroed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from harness.sae.metrics import eval_dtype

GroupSpec = Sequence[Sequence[int]] | torch.Tensor


def identity_rows(start: int, stop: int, d_sae: int,
                  device: str | torch.device = "cpu") -> torch.Tensor:
    """Rows start..stop of the (d_sae, d_sae) identity, (stop - start, d_sae) float32, built
    alone: slicing a full `torch.eye(d_sae)` per chunk would build d_sae^2 floats each time
    (1.4 GB for a Gemma-2-2B-wide SAE of 18,432 latents)."""
    rows = torch.arange(stop - start, device=device)
    e = torch.zeros(stop - start, d_sae, device=device)
    e[rows, rows + start] = 1.0
    return e


def decoder_directions(sae: Any, d_sae: int, d_in: int, chunk: int = 1024) -> torch.Tensor:
    """(d_sae, d_in): `sae.W_dec` if it has that shape (or its transpose), else the decoder's
    response to each unit code, decode(e_i) - decode(0), which is exact for affine decoders."""
    w = getattr(sae, "W_dec", None)
    if isinstance(w, torch.Tensor) and w.dim() == 2:
        if tuple(w.shape) == (d_sae, d_in):
            return w.detach().float()
        if tuple(w.shape) == (d_in, d_sae):
            return w.detach().float().T
    device = next(iter(sae.parameters())).device
    with torch.no_grad():
        zero = sae.decode(torch.zeros(1, d_sae, device=device)).float()
        rows = [sae.decode(identity_rows(i, min(i + chunk, d_sae), d_sae, device)).float() - zero
                for i in range(0, d_sae, chunk)]
    return torch.cat(rows)


def _unit_rows(w: torch.Tensor) -> torch.Tensor:
    return w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def pairwise_cosine(w: torch.Tensor, chunk: int = 4096,
                    dtype: torch.dtype | None = None) -> dict[str, float]:
    """Mean and max |cos| over distinct pairs of decoder rows w (d_sae, d_in), chunked.

    The products run in `dtype`, by default `eval_dtype(w.device)`: float64 on the CPU, float32
    on a GPU; each chunk's per-row sums are added up in float64.
    """
    u = _unit_rows(w.to(dtype or eval_dtype(w.device)))
    n, total, top = len(u), 0.0, 0.0
    for i in range(0, n, chunk):
        c = (u[i:i + chunk] @ u.T).abs()  # (chunk, n)
        idx = torch.arange(i, min(i + chunk, n), device=u.device)
        c[idx - i, idx] = 0.0  # drop self-similarity
        total += float(c.sum(-1).sum(dtype=torch.float64))
        top = max(top, float(c.max()))
    pairs = n * (n - 1)
    return {"decoder_mean_abs_cos": total / pairs if pairs else float("nan"),
            "decoder_max_abs_cos": top}


def _ints(indices: Any) -> list[int]:
    """Latent indices (a list, or a tensor of any integer dtype on any device) as ints."""
    if isinstance(indices, torch.Tensor):
        return [int(v) for v in indices.detach().flatten().cpu().tolist()]
    return [int(v) for v in indices]


def groups_of(sae: Any, d_sae: int, d_in: int) -> tuple[list[list[int]], str]:
    """The SAE's latent groups and where they came from."""
    fn = getattr(sae, "groups", None)
    if callable(fn):
        spec = fn()
        if isinstance(spec, torch.Tensor) and spec.dim() == 1 and len(spec) == d_sae:
            ids = spec.detach().long().cpu()
            # one sort instead of one pass over all latents per group id; a stable sort keeps
            # each group's latents in ascending order, the groups in ascending id order
            order = torch.argsort(ids, stable=True)
            counts = torch.unique_consecutive(ids[order], return_counts=True)[1]
            return [g.tolist() for g in torch.split(order, counts.tolist())], \
                "sae.groups() (group ids)"
        return [_ints(g) for g in spec], "sae.groups()"
    size = max(2, d_in // 4)
    return [list(range(i, min(i + size, d_sae))) for i in range(0, d_sae, size)], \
        f"contiguous blocks of {size} latents (the SAE defines no groups())"


@torch.no_grad()
def condition_numbers(w: torch.Tensor, groups: list[list[int]]) -> list[float]:
    """sigma_max / sigma_min of each group's unit-normalised decoder rows (g, d_in).

    Always in float64 on the CPU: the smallest singular value of a nearly degenerate group is
    lost in float32 rounding, and LAPACK runs small float64 SVDs faster than a GPU does.
    """
    w = w.detach().cpu()  # one copy, then one group at a time
    out = []
    for g in groups:
        if len(g) < 2:
            continue
        s = torch.linalg.svdvals(_unit_rows(w[g].double()))
        out.append(float(s[0] / s[-1]) if s[-1] > 0 else float("inf"))
    return out


def decoder_geometry(sae: Any, d_sae: int, d_in: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Flat metrics (for final_info['metrics']) and details (for final_info['measurements'])."""
    w = decoder_directions(sae, d_sae, d_in)
    metrics = pairwise_cosine(w)
    groups, origin = groups_of(sae, d_sae, d_in)
    conds = condition_numbers(w, groups)
    finite = [c for c in conds if c != float("inf")] or [float("inf")]
    if conds:
        metrics["condition_number_mean"] = sum(finite) / len(finite)
        metrics["condition_number_max"] = max(conds)
    details = {"groups": {"source": origin, "count": len(groups),
                          "sizes": sorted({len(g) for g in groups}),
                          "condition_numbers": conds}}
    return metrics, details


def index_mask(indices: Any, d_sae: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """(d_sae,) bool mask on `device`, True at `indices`: a list, or a tensor of any integer
    dtype on any device (moved to the mask's device and made int64 first: a CUDA index tensor
    cannot index a CPU mask, and a uint8 one would be read as a mask, not as indices)."""
    if isinstance(indices, torch.Tensor):
        idx = indices.detach().flatten().to(device=device, dtype=torch.long)
    else:
        idx = torch.as_tensor(_ints(indices), dtype=torch.long, device=device)
    mask = torch.zeros(d_sae, dtype=torch.bool, device=device)
    mask[idx] = True
    return mask


def levels_of(sae: Any, d_sae: int,
              device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """{level name: (d_sae,) bool mask on `device`} from `sae.levels()`, or {} when it has none."""
    fn = getattr(sae, "levels", None)
    if not callable(fn):
        return {}
    return {str(name): index_mask(idx, d_sae, device) for name, idx in dict(fn()).items()}
