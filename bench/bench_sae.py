"""Throughput of the SAE pipeline on this machine, for the README and for regressions.

Prints:
1. activation harvesting, tokens/s (the preset's model, a fresh cache entry);
2. SAE training, tokens/s over one whole training schedule of the template's baseline (as
   many steps as a run of the preset takes, so the code is as sparse as it gets in a run), with
   the template's CustomSAE + CustomTrainer on cached activations, and the same with the
   harness's zero-skipping products turned off (HARNESS_DENSE_MATMUL=1);
3. the same against `dictionary-learning`'s StandardTrainer on the same batches and config,
   alternating rounds (skipped with a message when that package is not importable);
4. achieved FLOP/s of the dense training against this machine's measured fp32 matmul rate (a
   large square matmul), and against the step's own matmul shapes run alone;
5. wall time of the template's baseline run 1 (activations harvested) vs run 2 (cache hit).

Run: python bench/bench_sae.py [--preset tiny] [--steps N] [--skip-runs]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

# As the agent's runner starts experiments: OpenMP threads sleep when idle instead of spinning,
# so torch keeps its threads on a shared machine (see harness.sae.activations.fit_threads_to_machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "templates" / "sae_variants"


def template_module() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("sae_template", TEMPLATE / "experiment.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def matmul_rate(n: int = 2048, reps: int = 10) -> float:
    """Best-of fp32 FLOP/s of an n x n matmul on the default device."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def harvest_rate(preset_name: str, tokens: int) -> float:
    """Tokens/s of harvesting a fresh entry (model already loaded, so loading is not counted)."""
    from harness.sae.activations import ActivationSource
    from harness.sae.presets import resolve

    preset = dataclasses.replace(resolve(preset_name), train_tokens=tokens + int(time.time()) % 97)
    source = ActivationSource(preset)
    source.lm  # noqa: B018 - load before timing
    entry = source.entry("train")
    start = time.perf_counter()
    source.train_tokens  # noqa: B018 - harvests
    seconds = time.perf_counter() - start
    shutil.rmtree(entry, ignore_errors=True)
    Path(f"{entry}.lock").unlink(missing_ok=True)
    return preset.train_tokens / seconds


def batches(preset_name: str, batch_size: int, steps: int) -> tuple[list[torch.Tensor], int]:
    from harness.sae.activations import ActivationSource

    source = ActivationSource(preset_name)
    return list(source.batches(batch_size, steps, seed=0)), source.d_in


def tokens_per_second(trainer: Any, xs: list[torch.Tensor], warmup: int) -> float:
    """Training tokens/s of `trainer.update(step, x)` over xs, the first `warmup` untimed."""
    for step, x in enumerate(xs[:warmup]):
        trainer.update(step, x)
    start = time.perf_counter()
    for step, x in enumerate(xs[warmup:], start=warmup):
        trainer.update(step, x)
    return sum(len(x) for x in xs[warmup:]) / (time.perf_counter() - start)


def ours(xs: list[torch.Tensor], d_in: int, warmup: int, dense: bool = False
         ) -> tuple[float, float]:
    """Tokens/s of the template's trainer over xs, and the fraction of its products that
    skipped zeros; `dense` turns the harness's zero-skipping off."""
    from harness.sae import sparse

    mod = template_module()
    cfg = mod.Config()
    torch.manual_seed(0)
    sae = mod.CustomSAE(d_in, cfg.expansion_factor * d_in, cfg.activation, cfg.k)
    trainer = mod.CustomTrainer(sae, len(xs), cfg.lr, cfg.l1_penalty,
                                min(cfg.lr_warmup_steps, len(xs) - 1),
                                cfg.lr_decay_frac, cfg.l1_warmup_frac)
    before, user_setting = dict(sparse.calls), os.environ.get(sparse.DISABLE_ENV)
    os.environ[sparse.DISABLE_ENV] = "1" if dense else "0"
    try:
        rate = tokens_per_second(trainer, xs, warmup)
    finally:  # leave the user's own setting as it was
        if user_setting is None:
            os.environ.pop(sparse.DISABLE_ENV)
        else:
            os.environ[sparse.DISABLE_ENV] = user_setting
    skipped, total = (sparse.calls["sparse"] - before["sparse"],
                      sum(sparse.calls.values()) - sum(before.values()))
    return rate, skipped / max(1, total)


def dictionary_learning_trainer() -> type | str:
    """dictionary-learning's StandardTrainer class, or why it cannot be had. Its package
    __init__ needs nnsight, so only the trainer modules are loaded (torch and einops)."""
    if "dictionary_learning" not in sys.modules:
        spec = importlib.util.find_spec("dictionary_learning")
        if spec is None or spec.origin is None:
            return ("dictionary-learning is not installed "
                    "(pip install --no-deps dictionary-learning einops)")
        pkg = types.ModuleType("dictionary_learning")
        pkg.__path__ = [str(Path(spec.origin).parent)]
        sys.modules["dictionary_learning"] = pkg
    try:
        from dictionary_learning.trainers.standard import StandardTrainer
    except ImportError as err:
        return f"dictionary-learning is not importable here ({err})"
    return StandardTrainer


def theirs(xs: list[torch.Tensor], d_in: int, warmup: int) -> float | str:
    """Tokens/s of dictionary-learning's StandardTrainer with the template's config."""
    trainer_class = dictionary_learning_trainer()
    if isinstance(trainer_class, str):
        return trainer_class
    cfg = template_module().Config()
    trainer = trainer_class(
        steps=len(xs), activation_dim=d_in, dict_size=cfg.expansion_factor * d_in, layer=1,
        lm_name="bench", lr=cfg.lr, l1_penalty=cfg.l1_penalty,
        warmup_steps=min(cfg.lr_warmup_steps, len(xs) - 1),
        sparsity_warmup_steps=max(1, len(xs) // 20),
        seed=0, device="cpu", wandb_name=None)
    return tokens_per_second(trainer, xs, warmup)


def sae_matmul_rate(n: int, d_in: int, d_sae: int, reps: int = 20) -> float:
    """FLOP/s of the five matmuls of one SAE training step (encode, decode, and the gradients
    of f, W_dec and W_enc) run back to back on their own: the ceiling for these shapes."""
    x, g = torch.randn(n, d_in), torch.randn(n, d_in)
    w_enc, w_dec = torch.randn(d_in, d_sae), torch.randn(d_sae, d_in)
    f = torch.relu(torch.randn(n, d_sae))

    def step() -> None:
        x @ w_enc, f @ w_dec, g @ w_dec.T, f.T @ g, x.T @ f

    step()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return 5 * 2 * n * d_in * d_sae / best


def baseline_runs(preset_name: str) -> list[tuple[float, dict[str, float]]]:
    """Wall seconds and the recorded timings of `python experiment.py` run twice in a fresh run
    dir with an empty activation cache (the language model itself is reused from the main
    cache): run 1 harvests, run 2 reads the cache."""
    from harness import cache

    with tempfile.TemporaryDirectory() as tmp:
        run_dir, cache_dir = Path(tmp) / "run", Path(tmp) / "cache"
        shutil.copytree(TEMPLATE, run_dir, ignore=shutil.ignore_patterns("latex", "ideas"))
        (run_dir / "preset.json").write_text(json.dumps({"preset": preset_name}))
        (cache_dir / "models").mkdir(parents=True)
        for model in (cache.root() / "models").iterdir():
            if model.is_dir():
                (cache_dir / "models" / model.name).symlink_to(model)
        env = {**os.environ, "HARNESS_CACHE_DIR": str(cache_dir)}
        env.pop("EXPERIMENT_PRESET", None)
        runs = []
        for i in (1, 2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "experiment.py", f"--out_dir=run_{i}"], cwd=run_dir,
                           env=env, check=True, capture_output=True)
            wall = time.perf_counter() - start
            info = json.loads((run_dir / f"run_{i}" / "final_info.json").read_text())
            runs.append((wall, info["timings"]))
        return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=None,
                        help="SAE training steps (default: the preset's baseline schedule)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--harvest-tokens", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating timing rounds of ours and dictionary-learning's")
    parser.add_argument("--skip-runs", action="store_true", help="skip the run-1 vs run-2 timing")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}, preset {args.preset}")

    print(f"harvesting: {harvest_rate(args.preset, args.harvest_tokens):,.0f} tokens/s")
    from harness.sae.presets import resolve

    cfg, preset = template_module().Config(), resolve(args.preset)
    steps = args.steps or preset.train_epochs * preset.train_tokens // args.batch_size
    warmup = 3
    xs, d_in = batches(args.preset, args.batch_size, steps)
    d_sae = cfg.expansion_factor * d_in
    rates: dict[str, list[float]] = {"ours": [], "dense": [], "theirs": []}
    skipped = 0.0
    ref: float | str = ""
    for _ in range(args.rounds):  # alternate, so a change in the machine's load hits all three
        rate, skipped = ours(xs, d_in, warmup)
        rates["ours"].append(rate)
        rates["dense"].append(ours(xs, d_in, warmup, dense=True)[0])
        ref = theirs(xs, d_in, warmup)
        if isinstance(ref, float):
            rates["theirs"].append(ref)
    best = {k: max(v) for k, v in rates.items() if v}
    print(f"SAE training over a whole schedule (d_in {d_in}, d_sae {d_sae}, {steps} steps of "
          f"{args.batch_size}, best of {args.rounds}): {best['ours']:,.0f} tokens/s, "
          f"{skipped:.0%} of its products skipping zeros; with dense products only: "
          f"{best['dense']:,.0f} tokens/s")

    def per_round(a: list[float], b: list[float]) -> str:
        return ", ".join(f"{x / y:.2f}x" for x, y in zip(a, b, strict=True))

    if isinstance(ref, str):
        print(f"dictionary-learning comparison skipped: {ref}")
    else:
        print(f"dictionary-learning StandardTrainer, same batches and config: "
              f"{best['theirs']:,.0f} tokens/s -> ours is {best['ours'] / best['theirs']:.2f}x "
              f"(per round: {per_round(rates['ours'], rates['theirs'])}); dense products only: "
              f"{best['dense'] / best['theirs']:.2f}x "
              f"(per round: {per_round(rates['dense'], rates['theirs'])})")
    # Model FLOPs by the usual training convention (6 per parameter per token, the SAE having
    # 2 * d_in * d_sae weights): forward 4 d_in d_sae, backward 8 d_in d_sae per token. The
    # trainer skips the gradient of its input, so it performs 10 of those 12 when its products
    # run dense; skipping zeros performs fewer, so only the dense rate measures efficiency.
    model_flops = 12 * d_in * d_sae * best["dense"]
    peak, shapes = matmul_rate(), sae_matmul_rate(args.batch_size, d_in, d_sae)
    print(f"SAE training, dense products: {model_flops / 1e9:,.1f} GFLOP/s of model FLOPs "
          f"({model_flops * 10 / 12 / 1e9:,.1f} performed); fp32 matmul 2048x2048: "
          f"{peak / 1e9:,.1f} GFLOP/s -> {model_flops / peak:.0%} of it; the step's five "
          f"matmuls alone: {shapes / 1e9:,.1f} GFLOP/s -> {model_flops * 10 / 12 / shapes:.0%} "
          f"of them. Skipping zeros: {12 * d_in * d_sae * best['ours'] / 1e9:,.1f} GFLOP/s "
          f"dense-equivalent")
    if not args.skip_runs:
        (first, t1), (second, t2) = baseline_runs(args.preset)

        def parts(t: dict[str, float]) -> str:
            return ", ".join(f"{k.removesuffix('_s')} {v:.0f}" for k, v in t.items())

        print(f"baseline run 1 (harvests): {first:.1f} s [{parts(t1)}]; run 2 (cache hit): "
              f"{second:.1f} s [{parts(t2)}] -> {first / second:.2f}x")


if __name__ == "__main__":
    main()
