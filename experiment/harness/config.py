"""Collecting a run's full effective configuration from the objects that ran it.

An idea adds hyperparameters to the SAE, the trainer or the config dataclass; `collect`
finds them by introspection (dataclass fields, `__init__` parameters stored as attributes,
public scalar attributes, the optimizer's settings), so final_info records every setting
without anyone typing it by hand.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

Scalar = bool | int | float | str | None


def _scalar(value: Any) -> Any:
    """A JSON scalar, a list of scalars, or the sentinel `_SKIP`."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)) and len(value) <= 16 and all(
            isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    if hasattr(value, "item") and getattr(value, "numel", lambda: 2)() == 1:
        return value.item()  # a 0-d tensor or numpy scalar
    return _SKIP


_SKIP = object()


def scalars(obj: Any) -> dict[str, Any]:
    """The settings one object carries, by name."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    else:
        items = {}
        try:
            params = inspect.signature(type(obj).__init__).parameters
        except (TypeError, ValueError):
            params = {}
        for name in params:
            if name != "self" and hasattr(obj, name):
                items[name] = getattr(obj, name)
        for name, value in vars(obj).items():
            if not name.startswith("_") and name != "training":
                items.setdefault(name, value)
    out = {k: v for k, v in ((k, _scalar(v)) for k, v in items.items()) if v is not _SKIP}
    optimizer = getattr(obj, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "param_groups", None):
        out["optimizer"] = type(optimizer).__name__
        for k, v in optimizer.param_groups[0].items():
            # Numbers only (betas, eps, weight_decay, momentum): the flags are implementation
            # switches. The live lr is wherever the schedule left it; the trainer has the setting.
            if k in ("params", "lr", "initial_lr") or isinstance(v, bool) or v is None:
                continue
            if (s := _scalar(v)) is not _SKIP and not isinstance(s, str):
                out[f"optimizer_{k}"] = s
    return out


def collect(*objects: Any) -> dict[str, Any]:
    """Merge the settings of several objects (e.g. config, trainer, sae) into one flat dict.

    The first object to name a setting wins; a later object that disagrees is kept too, under
    `<ClassName>.<name>`, so a mismatch (the config says one thing, the trainer uses another)
    is visible instead of hidden.
    """
    merged: dict[str, Any] = {}
    for obj in objects:
        for key, value in scalars(obj).items():
            if key not in merged:
                merged[key] = value
            elif merged[key] != value:
                merged[f"{type(obj).__name__}.{key}"] = value
    return merged
