"""The baseline: the unmodified template run as `run_0` (with every seed), before any LLM call.

Its result is reused from a cache keyed by the template's content, the preset, the seeds and
the harness's source when an identical baseline was already computed. A failing baseline stops
the launch: the template is broken, and the LLM must not be asked to fix it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from agent import notes, presets, runner, runs
from agent.context import RunContext
from agent.errors import TemplateError
from agent.executors import Process
from agent.sandbox import Sandbox, hub_cache
from agent.template import Template

CACHE_DIR = ".baseline-cache"
_SKIP = {"ideas", "__pycache__", ".git", ".pytest_cache"}
_HEAVY = {".pt", ".pth", ".ckpt", ".bin", ".npy", ".npz"}
"""Left out of the baseline cache; the evaluated graphs (.pt2) and checkpoint (.safetensors)
are kept, so a reused baseline's provenance can be verified again."""


def cache_key(template_root: Path, preset: str | None, seeds: list[int] | None = None) -> str:
    """Hash of every template file, the preset, the seeds, and the trusted harness's source."""
    import harness

    h = hashlib.sha256()
    roots = [("template", template_root), ("harness", Path(harness.__file__).parent)]
    for tag, root in roots:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and not (set(rel.parts) & _SKIP) and path.suffix not in (".pyc",):
                if tag == "harness" and path.suffix not in (".py", ".toml", ".json"):
                    continue
                h.update(f"{tag}/{rel}\0".encode())
                h.update(path.read_bytes())
    h.update(f"preset={preset}".encode())
    if seeds is not None:
        h.update(f"seeds={seeds}".encode())
    for name, value in sorted(machine_facts().items()):
        h.update(f"{name}={value}\0".encode())
    return h.hexdigest()[:20]


def machine_facts() -> dict[str, str]:
    """What changes a baseline's numbers besides the code: the device kind (a CPU baseline is
    never compared with GPU runs), torch's version and build, and the harness's dense-matmul
    switch. Read without importing torch where possible (`harness.machine.cuda_present`)."""
    from importlib import metadata

    from harness import DENSE_MATMUL_ENV
    from harness.machine import cuda_present

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "absent"
    return {"device": "cuda" if cuda_present() else "cpu", "torch": torch_version,
            DENSE_MATMUL_ENV: os.environ.get(DENSE_MATMUL_ENV, "")}


HUB_TOKENS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
"""Passed to `harness.sae.prepare` only (trusted code): a gated hub preset's download needs one."""


def ensure(ctx: RunContext) -> None:
    """Make sure the harness's caches are filled and `run_0` exists and is committed, with its
    notes section."""
    prepare_caches(ctx)
    if ctx.find("run.recorded", run=0, status="ok") is None and ctx.find("baseline.cached") is None:
        ctx.console.stage("baseline")
        key = cache_key(ctx.template.root, ctx.preset, ctx.seeds)
        cached = ctx.config.runs_path / CACHE_DIR / key
        # One launch at a time computes or reads a given baseline: a second launch of the
        # same template, preset and seeds waits, then reuses it instead of racing to write it.
        with _cache_lock(ctx, cached):
            problem = _cached_problem(ctx, cached)
            if problem is None:
                _restore(ctx, cached, key)
            else:
                if (cached / "final_info.json").is_file():
                    ctx.console.warn(f"baseline: the cached baseline {key} is not reused: {problem}")
                    ctx.record("baseline.cache_refused", key=key, problem=problem)
                _run(ctx, cached)
    notes.append_notes(ctx, 0, "the unmodified template (baseline)")


@contextmanager
def _cache_lock(ctx: RunContext, cached: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    cached.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(cached) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        ctx.console.info(f"baseline: another launch is computing the same baseline ({cached.name}); waiting for it")
        ctx.record("baseline.cache_wait", key=cached.name)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def prepare_sandbox(base: Sandbox | None, template: Template, preset: str | None) -> Sandbox | None:
    """The sandbox of the template's cache-filling step: the harness's cache writable and, for
    a preset that downloads, the network and the Hugging Face cache; nothing of the run
    directory."""
    if base is None:
        return None
    from harness import cache

    hub = presets.needs_network(template, preset)
    return replace(base, writable=(cache.root(), hub_cache()) if hub else (cache.root(),),
                   readonly=(), visible=(), network=hub)


def prepare_timeout(template: Template, preset: str | None, run_timeout_s: float) -> float:
    """Seconds the template's cache-filling step may take: the preset's own bound (its presets
    provider's `prepare_timeout_s`), never less than a run's timeout. Not the per-run timeout:
    a first harvest of a hub preset downloads the model and streams the data, which no run does."""
    bound = presets.prepare_timeout_s(template, preset)
    return max(bound or 0.0, run_timeout_s)


def prepare_caches(ctx: RunContext) -> None:
    """Run the template's cache-filling step, if its evaluation has one (contract's `PREPARE`)."""
    contract = ctx.template.contract
    if contract is not None and contract.PREPARE:
        prepare(ctx, contract.PREPARE)


def prepare(ctx: RunContext, module: str) -> None:
    """Fill the harness's caches (for the SAE: model, activations, zero-ablation sums) in a
    process of the harness's own (the template's contract's `PREPARE`), the only one that may
    write them: experiments and the evaluator see them read-only, so no experiment can change
    what it is measured against. Cheap when everything is cached, so it runs on every launch
    and resume."""
    from harness import cache, provenance

    sandbox = prepare_sandbox(ctx.sandbox, ctx.template, ctx.preset)
    hub = presets.needs_network(ctx.template, ctx.preset)
    ctx.status(f"preparing the harness's caches for preset {ctx.preset or 'default'}")
    with tempfile.TemporaryDirectory(prefix="harness-prepare-") as logs:
        timeout_s = prepare_timeout(ctx.template, ctx.preset,
                                    ctx.template.timeout_for(ctx.preset, ctx.config.timeout_s))
        cwd = cache.root() if sandbox is not None else ctx.ws.root  # the run is not in its view
        cwd.mkdir(parents=True, exist_ok=True)
        process = Process(tuple(provenance.prepare_command(ctx.preset, module=module)), cwd=cwd, log_dir=Path(logs),
                          timeout_s=timeout_s, name="prepare", sandbox=sandbox,
                          pass_env=HUB_TOKENS if hub else ())
        outcome = ctx.execute(process, label=module, on_start=ctx.process_started("prepare"),
                              gpu="all")
        stdout = (Path(logs) / "prepare_stdout.txt").read_text(encoding="utf-8", errors="replace")
    if not outcome.ok:
        bound = ""
        if outcome.status == "timed_out":
            bound = (f" Its bound, {timeout_s:.0f} s, is its own (the preset's prepare_timeout_s "
                     f"in {ctx.template.presets_provider}), not the per-run timeout: a first "
                     "preparation builds or downloads what the preset needs. Run "
                     f"`python -m {module} --preset {ctx.preset or '<name>'}` once by "
                     "hand to fill the cache without a bound, then launch again.")
        raise TemplateError(
            f"the harness could not prepare preset {ctx.preset or 'default'} ({module}): it "
            f"{outcome.describe()}.{bound} Nothing was "
            f"run.\n--- end of its stderr ---\n{outcome.stderr_tail}")
    found = runner.last_json(stdout)
    ctx.record("harness.prepared", network=hub, **{"preset": ctx.preset, **found})


def _cached_problem(ctx: RunContext, cached: Path) -> str | None:
    """Why a cached baseline cannot be reused, or None: it is reused only if its record's
    provenance still verifies against the graphs and checkpoint cached with it (a record
    whose numbers no evaluation of these files produced is never copied into a run)."""
    if not (cached / "final_info.json").is_file():
        return "none cached"
    contract = ctx.template.contract
    if contract is None:
        return None
    return runs.provenance_problem(cached, str(ctx.harness_sha256), contract)


def _restore(ctx: RunContext, cached: Path, key: str) -> None:
    dest = ctx.ws.resolve("run_0")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(cached, dest)
    # The cached record names a commit of another run directory's repository; here the same
    # code (same key) is this repository's current commit, so point at that one instead.
    info_path = dest / "final_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    code = info.get("code") if isinstance(info.get("code"), dict) else {}
    original = code.get("commit")
    info["code"] = {**code, "commit": ctx.ws.head(), "cached_from_commit": original}
    info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (dest / "cached_from.json").write_text(json.dumps({
        "cache_key": key, "source": str(cached), "original_commit": original,
        "why": "identical template files, preset and harness: the baseline was not re-run",
    }, indent=2) + "\n", encoding="utf-8")
    sha = ctx.ws.commit(["run_0"], f"baseline: run_0 from cache {key}")
    ctx.record("baseline.cached", key=key, source=str(cached), sha=sha)
    ctx.console.info(f"baseline: reused an identical earlier baseline ({key})")


def _run(ctx: RunContext, cached: Path) -> None:
    attempt = runs.execute(ctx, 0, 1, stage="baseline")
    if not attempt.ok:
        raise TemplateError(
            f"the baseline (the unmodified template) {attempt.describe}. The template is broken, "
            f"so no LLM is asked to fix it. Fix the template or pick another --preset.\n"
            f"--- end of its stderr ---\n{attempt.stderr_tail}"
        )
    src = ctx.ws.resolve("run_0")
    tmp = cached.with_name(f"{cached.name}.tmp-{os.getpid()}")  # unique: never another's
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp, ignore=lambda d, names: [n for n in names if Path(n).suffix in _HEAVY])
    if cached.exists():
        shutil.rmtree(cached)
    tmp.rename(cached)
    ctx.console.info(f"baseline: {attempt.describe}")
