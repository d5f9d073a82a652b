"""The one place that imports litellm, lazily: `import agent.llm` stays fast."""

from __future__ import annotations

import os
from functools import cache
from types import ModuleType


@cache
def litellm() -> ModuleType:
    # The bundled price map, not a download at import time (it retries for seconds offline).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm as module

    module.suppress_debug_info = True  # it prints "Give Feedback" banners to stdout otherwise
    if hasattr(module, "telemetry"):
        module.telemetry = False
    return module
