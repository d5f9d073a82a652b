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

GroupSpec = Sequence[Sequence[int]] | torch.Tensor


def decoder_directions(sae: Any, d_sae: int, d_in: int) -> torch.Tensor:
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
        rows = [sae.decode(torch.eye(d_sae, device=device)[i:i + 1024]).float() - zero
                for i in range(0, d_sae, 1024)]
    return torch.cat(rows)


def _unit_rows(w: torch.Tensor) -> torch.Tensor:
    return w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def pairwise_cosine(w: torch.Tensor, chunk: int = 4096) -> dict[str, float]:
    """Mean and max |cos| over distinct pairs of decoder rows w (d_sae, d_in), chunked."""
    u = _unit_rows(w.double())
    n, total, top = len(u), 0.0, 0.0
    for i in range(0, n, chunk):
        c = (u[i:i + chunk] @ u.T).abs()  # (chunk, n)
        idx = torch.arange(i, min(i + chunk, n), device=u.device)
        c[idx - i, idx] = 0.0  # drop self-similarity
        total += float(c.sum())
        top = max(top, float(c.max()))
    pairs = n * (n - 1)
    return {"decoder_mean_abs_cos": total / pairs if pairs else float("nan"),
            "decoder_max_abs_cos": top}


def groups_of(sae: Any, d_sae: int, d_in: int) -> tuple[list[list[int]], str]:
    """The SAE's latent groups and where they came from."""
    fn = getattr(sae, "groups", None)
    if callable(fn):
        spec = fn()
        if isinstance(spec, torch.Tensor) and spec.dim() == 1 and len(spec) == d_sae:
            ids = spec.long().cpu()
            return [torch.nonzero(ids == g).flatten().tolist() for g in ids.unique()], \
                "sae.groups() (group ids)"
        return [list(map(int, g)) for g in spec], "sae.groups()"
    size = max(2, d_in // 4)
    return [list(range(i, min(i + size, d_sae))) for i in range(0, d_sae, size)], \
        f"contiguous blocks of {size} latents (the SAE defines no groups())"


@torch.no_grad()
def condition_numbers(w: torch.Tensor, groups: list[list[int]]) -> list[float]:
    """sigma_max / sigma_min of each group's unit-normalised decoder rows (g, d_in)."""
    u = _unit_rows(w.double())
    out = []
    for g in groups:
        if len(g) < 2:
            continue
        s = torch.linalg.svdvals(u[g])
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


def levels_of(sae: Any, d_sae: int) -> dict[str, torch.Tensor]:
    """{level name: (d_sae,) bool mask} from `sae.levels()`, or {} when it has none."""
    fn = getattr(sae, "levels", None)
    if not callable(fn):
        return {}
    masks = {}
    for name, idx in dict(fn()).items():
        mask = torch.zeros(d_sae, dtype=torch.bool)
        mask[torch.as_tensor(list(idx) if not isinstance(idx, torch.Tensor) else idx).long()] = True
        masks[str(name)] = mask
    return masks
