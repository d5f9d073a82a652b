"""What every template's evaluator shares: its command line, and reading what the loop and the
experiment left in a run folder (the seeds' outcomes, the preset, a final_info.json the
experiment wrote itself). Torch-free.

    python -I -c '<boot>' RUN_I_DIR [--preset NAME] [--manifest template.toml] [--seeds 0,1,2]

A template's evaluator (`harness.<package>.evaluator`) calls `cli` from its `main` with its own
`evaluate_run` and `evaluate_seeds`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import provenance as prov


def ignored_final_info(run_dir: Path) -> dict[str, Any] | None:
    """Final-info files the experiment wrote itself: named, hashed, their metrics listed by
    name only (the values stay out of the evaluator's record, so nothing can cite them)."""
    found = {}
    for name in (prov.EXPERIMENT_FINAL_INFO, "final_info.json"):
        path = run_dir / name
        if not path.is_file():
            continue
        entry: dict[str, Any] = {"sha256": prov.sha256_file(path)}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            metrics = data.get("metrics") if isinstance(data, dict) else None
            entry["metric_names"] = sorted(str(k) for k in metrics)[:200] \
                if isinstance(metrics, dict) else []
        except (ValueError, UnicodeDecodeError):
            entry["metric_names"] = []
        found[name] = entry
    if not found:
        return None
    return {"files": found, "note": "written by experiment.py, not by the evaluator: ignored"}


def seed_outcomes(path: Path) -> dict[int, dict[str, Any]]:
    """How each seed's process ended, as the loop recorded it (absent when run by hand)."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {int(o["seed"]): o for o in data.get("seeds", []) if isinstance(o, dict)}


def requested_preset(named: str | None, run_dir: Path) -> str | None:
    """`--preset`, else `EXPERIMENT_PRESET`, else the run directory's preset.json (run_i/ or
    run_i/seed_k/ evaluated by hand), else None (the preset module's default)."""
    if named:
        return named
    if os.environ.get("EXPERIMENT_PRESET"):
        return os.environ["EXPERIMENT_PRESET"]
    for folder in run_dir.resolve().parents[:2]:
        path = folder / "preset.json"
        if path.is_file():
            found = json.loads(path.read_text(encoding="utf-8")).get("preset")
            return str(found) if found else None
    return None


def cli(argv: list[str] | None, *, prog: str, description: str | None,
        evaluate_run: Callable[[Path, str | None, Path | None], dict[str, Any]],
        evaluate_seeds: Callable[[Path, list[int], str | None, Path | None], dict[str, Any]],
        errors: tuple[type[BaseException], ...]) -> int:
    """An evaluator's command line: evaluate one folder, or every seed of a run and their
    aggregate; `errors` (what the evaluator refuses with) exit 2 with the reason."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--manifest", type=Path, default=None,
                        help="template.toml with the gates (default: ./template.toml)")
    parser.add_argument("--seeds", default=None, metavar="LIST",
                        help="evaluate run_dir/seed_<k>/ for each seed (e.g. 0,1,2) and write the "
                             "run's final_info.json with the means and their intervals")
    args = parser.parse_args(argv)
    from harness import seeds
    from harness.graph_run import Refused

    try:
        preset = requested_preset(args.preset, args.run_dir)
        if args.seeds is not None:
            record = evaluate_seeds(args.run_dir, seeds.parse_seeds(args.seeds), preset, args.manifest)
        else:
            record = evaluate_run(args.run_dir, preset, args.manifest)
    except (*errors, Refused, ValueError) as exc:
        print(f"evaluator: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(f"evaluator: wrote {args.run_dir}/final_info.json in "
          f"{record['timings']['evaluator_s']:.1f} s")
    return 0


def weights_sha256(weights: list[tuple[str, Any]]) -> str:
    """sha256 of the evaluated weights, given as (label, tensor) in a fixed order: labels,
    shapes, dtypes and bytes. Equal for two runs with the same parameters, whatever their
    archives' other bytes (an archive also records where and when it was written)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for label, tensor in weights:
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{label}:{tuple(tensor.shape)}:{flat.dtype}\0".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def checkpoint_check(path: Path, weights: dict[str, Any]) -> dict[str, Any] | None:
    """Whether the safetensors file at `path` holds exactly `weights` ({name in the checkpoint:
    the tensor the graphs evaluated}), read as a header and raw bytes (no code). None when
    there is no checkpoint."""
    import torch
    from safetensors.torch import load

    if not path.is_file():
        return None
    raw = path.read_bytes()
    entry: dict[str, Any] = {"path": path.name, "sha256": prov.sha256_bytes(raw)}
    try:
        saved = load(raw)
    except Exception as exc:  # safetensors raises its own error type for a malformed file
        return {**entry, "matches_evaluated": False,
                "problem": f"not a readable safetensors file ({type(exc).__name__})"}
    differs = [name for name, weight in weights.items()
               if (found := saved.get(name)) is None or found.shape != weight.shape
               or not torch.equal(found.to(weight.device, weight.dtype), weight)]
    entry["matches_evaluated"] = not differs
    if differs:
        entry["problem"] = (f"{', '.join(sorted(set(differs))[:6])} differ from the weights of "
                            "the graphs evaluated")
    return entry
