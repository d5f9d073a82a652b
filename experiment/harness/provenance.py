"""What an evaluation is traced to: file hashes, the harness's own hash, and how to start it.

Pure Python (no torch import), so the orchestrator can use it cheaply.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path
from types import ModuleType

MODE_ENV = "HARNESS_EVALUATOR"
"""Set to `orchestrator` by the loop: a template's `finish` then exports and leaves evaluation to it."""
EXPERIMENT_FINAL_INFO = "experiment_final_info.json"
"""Where the loop moves a final_info.json the experiment wrote itself (ignored, reported)."""

PACKAGE = Path(__file__).resolve().parent


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def harness_sha256(package: Path = PACKAGE) -> str:
    """sha256 over the harness package's .py files (relative path and content, sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts):
        digest.update(f"{path.relative_to(package).as_posix()}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _isolated(module: str, args: list[str], python: str) -> list[str]:
    """argv running `harness.<module>.main(args)` in an isolated interpreter (`-I`: no PYTHON*
    variables, no user site, neither the working directory nor a script's folder on
    sys.path) that imports `harness` from this package's folder only, never from a run
    directory."""
    boot = (f"import sys; sys.path.insert(0, {str(PACKAGE.parent)!r}); "
            f"from harness.{module} import main; sys.exit(main(sys.argv[1:]))")
    return [python, "-I", "-c", boot, *args]


CONTRACT = ("EVALUATOR", "EXPORTS", "CHECKPOINT", "EXPORT_HINT", "PREPARE")
"""What every `harness.<package>.contract` defines (see `contract`)."""


def contract(evaluator: str) -> ModuleType:
    """The contract of a template's evaluation package, from its evaluator's module name
    (`harness.<package>.evaluator` -> `harness.<package>.contract`, torch-free): `EVALUATOR`
    (its module name), `EXPORTS` ({provenance key: file the experiment exports into each seed
    folder}, e.g. `{"encode_sha256": "sae_encode.pt2"}`), `CHECKPOINT` (the weights file the
    evaluator checks, or None), `EXPORT_HINT` (how an experiment exports, said to the model when
    it did not), `PREPARE` (module filling the caches before the baseline, or None)."""
    parts = evaluator.split(".")
    if len(parts) != 3 or parts[0] != "harness" or parts[2] != "evaluator" \
            or not parts[1].isidentifier() or not (PACKAGE / parts[1] / "contract.py").is_file():
        raise ValueError(f"{evaluator!r} is no evaluator of the harness: expected "
                         f"harness.<package>.evaluator with experiment/harness/<package>/contract.py")
    found = importlib.import_module(f"harness.{parts[1]}.contract")
    missing = [name for name in CONTRACT if not hasattr(found, name)]
    if missing:
        raise ValueError(f"harness.{parts[1]}.contract lacks {', '.join(missing)}")
    if found.EVALUATOR != evaluator:
        raise ValueError(f"harness.{parts[1]}.contract names {found.EVALUATOR!r}, not {evaluator!r}")
    return found


def evaluator_command(run_dir: Path, preset: str | None, manifest: Path | None = None,
                      python: str = sys.executable, seeds: list[int] | None = None, *,
                      module: str) -> list[str]:
    """argv of the evaluator `module` (`harness.<package>.evaluator`, see `_isolated`); with
    `seeds`, of every `run_dir/seed_<k>/` and the run's aggregate."""
    args = [str(run_dir)]
    if preset:
        args += ["--preset", preset]
    if manifest is not None:
        args += ["--manifest", str(manifest)]
    if seeds is not None:
        args += ["--seeds", ",".join(map(str, seeds))]
    return _isolated(module.removeprefix("harness."), args, python)


def seeds_command(run_dir: Path, seeds: list[int], manifest: Path | None = None,
                  python: str = sys.executable) -> list[str]:
    """argv of `harness.seeds`, which combines the seeds of a template without an evaluator."""
    args = [str(run_dir), "--seeds", ",".join(map(str, seeds))]
    if manifest is not None:
        args += ["--manifest", str(manifest)]
    return _isolated("seeds", args, python)


def figures_command(root: Path, manifest: Path | None = None, python: str = sys.executable) -> list[str]:
    """argv of `harness.figures`, which draws the figures `root/figures.json` declares."""
    return _isolated("figures", [str(root), *(["--manifest", str(manifest)] if manifest else [])], python)


def prepare_command(preset: str | None, python: str = sys.executable, *, module: str) -> list[str]:
    """argv of a template's cache-filling `module` (its contract's `PREPARE`, e.g.
    `harness.sae.prepare`), run before any experiment."""
    return _isolated(module.removeprefix("harness."), ["--preset", preset] if preset else [], python)
