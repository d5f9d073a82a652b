"""Test-wide settings: nothing may reach the network, and caches stay inside the test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"

# Set at import time so that modules imported by tests (litellm, transformers) see them.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Idle OpenMP threads must not spin: tests share two cores with subprocess experiments.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The harness caches (tiny model, activations) live in one folder per test session unless the
# caller points them elsewhere (CI may reuse one across steps).
os.environ.setdefault("HARNESS_CACHE_DIR", str(REPO / ".cache" / "test-harness"))


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see real credentials, so nothing can call a hosted model by accident."""
    for name in list(os.environ):
        if name.endswith("_API_KEY") or name in ("AGENT_MODEL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name, raising=False)
