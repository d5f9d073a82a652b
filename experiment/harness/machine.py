"""What this machine offers the harness, asked without importing torch where possible.

Pure Python: the agent imports it to choose devices and to key cached baselines.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path


def cuda_present() -> bool:
    """Whether torch can use a CUDA device here. torch's answer, never the driver's: a CPU
    build of torch beside an NVIDIA driver cannot use the GPU. A CPU build (or no torch) is
    recognised from torch's `version.py` without importing torch; only a CUDA build is asked."""
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if not _torch_is_a_cuda_build():
        return False
    if not (Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi")):
        return False  # no driver: no need to import torch to know
    import torch

    return bool(torch.cuda.is_available())


def _torch_is_a_cuda_build() -> bool:
    """From torch's own `version.py` (`cuda = None` in a CPU build), without importing it."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return False
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return True  # cannot tell: let torch answer
    match = re.search(r"^cuda\b[^=]*=\s*(.+)$", text, re.M)
    return match is None or match.group(1).strip() not in ("None", "''", '""')
