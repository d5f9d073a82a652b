"""Writing `run_i/final_info.json`: the one record the loop, plots, tables and checks read.

Contract: `{"metrics": {...}, "config": {...}, "code": {"commit", "dirty"}, "gates": [...],
"timings": {...}, "preset": ..., "harness": {...}}`. Metrics are computed by the harness;
the template script only passes them through. Pure Python (no torch import).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import cache
from harness import gates as gates_mod

FINAL_INFO = "final_info.json"
HARNESS_VERSION = "0.1.0"


def code_version(cwd: Path) -> dict[str, Any]:
    """The commit the run directory is at and whether tracked files differ from it."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def load_gates(manifest: Path) -> list[gates_mod.Gate]:
    """The gates declared in a template manifest (empty when there is none)."""
    if not manifest.exists():
        return []
    data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    return [gates_mod.parse_gate(g) for g in data.get("gates", [])]


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become None (strict JSON), tensors/numpy scalars become floats."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_final_info(
    out_dir: Path,
    metrics: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    timings: Mapping[str, float] | None = None,
    extra: Mapping[str, Any] | None = None,
    manifest: Path | None = None,
) -> dict[str, Any]:
    """Evaluate the gates and write `out_dir/final_info.json` atomically; return the record."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if manifest is not None and not manifest.is_file():  # named, so its gates are expected
        raise ValueError(f"the template manifest {manifest} with the gates cannot be read (missing, "
                         "or outside what this process may see): no record is written without its gates")
    manifest = manifest or Path.cwd() / "template.toml"
    gate_results = gates_mod.evaluate(load_gates(manifest), metrics, config)
    record: dict[str, Any] = {
        "metrics": _clean(dict(metrics)),
        "config": _clean(dict(config)),
        "code": code_version(Path.cwd()),
        "gates": [g.to_dict() for g in gate_results],
        "timings": _clean(dict(timings or {})),
        "preset": os.environ.get("EXPERIMENT_PRESET") or _preset_from_file(Path.cwd()),
        "harness": {"version": HARNESS_VERSION},
    }
    record.update(_clean(dict(extra or {})))
    cache.write_atomically(out_dir / FINAL_INFO,
                           json.dumps(record, indent=2, allow_nan=False) + "\n")
    return record


def _preset_from_file(cwd: Path) -> str | None:
    path = cwd / "preset.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8")).get("preset")
    return None


def read_final_info(run_dir: Path) -> dict[str, Any]:
    """Load `run_dir/final_info.json` (raises FileNotFoundError / ValueError)."""
    return json.loads((run_dir / FINAL_INFO).read_text(encoding="utf-8"))
