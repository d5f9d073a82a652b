"""The baseline: the unmodified template run once as `run_0`, before any LLM call.

Its result is reused from a cache keyed by the template's content, the preset and the
harness's source when an identical baseline was already computed. A failing baseline stops
the launch: the template is broken, and the LLM must not be asked to fix it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from agent import runs
from agent.context import RunContext
from agent.errors import TemplateError

CACHE_DIR = ".baseline-cache"
_SKIP = {"ideas", "__pycache__", ".git", ".pytest_cache"}
_HEAVY = {".pt", ".pt2", ".pth", ".ckpt", ".safetensors", ".bin", ".npy", ".npz"}


def cache_key(template_root: Path, preset: str | None) -> str:
    """Hash of every template file, the preset, and the trusted harness's source."""
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
    return h.hexdigest()[:20]


def ensure(ctx: RunContext) -> None:
    """Make sure `run_0` exists and is committed, with its notes section."""
    if ctx.find("run.recorded", run=0, status="ok") is None and ctx.find("baseline.cached") is None:
        ctx.console.stage("baseline")
        key = cache_key(ctx.template.root, ctx.preset)
        cached = ctx.config.runs_path / CACHE_DIR / key
        if (cached / "final_info.json").is_file():
            _restore(ctx, cached, key)
        else:
            _run(ctx, cached)
    runs.append_notes(ctx, 0, "the unmodified template (baseline)")


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
    tmp = cached.with_name(cached.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp, ignore=lambda d, names: [n for n in names if Path(n).suffix in _HEAVY])
    if cached.exists():
        shutil.rmtree(cached)
    tmp.rename(cached)
    ctx.console.info(f"baseline: {attempt.describe}")
