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


# --- the suite on several workers (pytest-xdist, `-n auto --dist loadgroup` in pyproject) -----
# Each test goes to whichever worker is free, except the tests that share an expensive
# session-wide resource: they form one group, run by one worker, so the resource is made once.
# The main job's group is collected first, so the longest of them starts at once (see `_order`).
SHARED_RESOURCES = {
    "tiny_main_job": "tiny_main_job",  # the README's main job on the tiny preset (minutes)
    "cluster": "slurm",  # the one-node SLURM cluster: its 2 CPUs are shared by every job
    "deep_job": "deep_job",  # test_main_job's second launch, on the tiny-deep preset
    "diffusion_job": "diffusion_job",  # the 2d_diffusion main job on the tiny preset (minutes)
}


def _group(item: pytest.Item) -> str | None:
    names = getattr(item, "fixturenames", ())
    return next((group for fixture, group in SHARED_RESOURCES.items() if fixture in names), None)


def pytest_itemcollected(item: pytest.Item) -> None:
    # Marked as each test is collected: xdist reads the groups in its own
    # pytest_collection_modifyitems, which may run before any of ours.
    if (group := _group(item)) is not None:
        item.add_marker(pytest.mark.xdist_group(group))
    if "tiny_main_job" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.slow)  # whoever reads the main job waits for it: minutes


# Modules whose tests read the harness's caches for the tiny presets: a fresh machine's first
# launch (the main job's) fills them, and they would wait on its lock for minutes. They run
# after the rest, so the other worker spends that time on tests that need no harvest.
AFTER_THE_HARVEST = {"test_evaluator", "test_sae_template", "test_sae_gates", "test_harness_activations",
                     "test_baseline"}


def _order(item: pytest.Item) -> int:
    """The main jobs first (the longest), then what needs no harvest, then the groups and
    modules that read the harness's caches."""
    group = _group(item)
    if group in ("tiny_main_job", "diffusion_job"):  # the longest, so they start at once
        return 0
    if group is not None:
        return 2
    module = getattr(item, "module", None)
    return 3 if module is not None and module.__name__.rpartition(".")[2] in AFTER_THE_HARVEST else 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_order)


@pytest.hookimpl(trylast=True)  # after xdist's hook, which names each test's group in its id
def pytest_collection_finish(session: pytest.Session) -> None:
    """Refuse to run on a worker whose tests lost their groups: each worker would make the
    shared resources again (the main job once per worker) and nothing would say so."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [item.nodeid for item in session.items if _group(item) and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist's --dist loadgroup ignores the groups with this pytest ({pytest.__version__}; "
            f"{lost[0]} has no group in its id: pytest-dev/pytest-xdist#1386). Install the lock "
            "(requirements/lock.txt), or run with -n 0.")
