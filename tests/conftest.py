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


@pytest.fixture(scope="session")
def tiny_main_job(tmp_path_factory: pytest.TempPathFactory):
    """The README's main job on the tiny preset (`--idea orthogonal_sae --preset tiny`, the
    reference session replayed, real runs and LaTeX): one launch, a few minutes on 2 cores,
    shared by every test that reviews its outputs (main job, replay, report). Tests must not
    change the run directory; one that needs to, works on a `git clone` of it."""
    from tests.e2e_helpers import cli, only_run_dir

    runs = tmp_path_factory.mktemp("runs")
    proc = cli("--idea", "orthogonal_sae", "--preset", "tiny", "--runs-dir", str(runs), "--quiet",
               timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, only_run_dir(runs)
