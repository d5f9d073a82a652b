"""The 2d_diffusion evaluator: the one process that writes its metrics, never running LLM-edited Python.

    python -I -c '<boot>' RUN_I_DIR [--preset NAME] [--manifest template.toml] [--seeds 0,1,2]
    (`harness.provenance.evaluator_command(..., module="harness.diffusion.evaluator")` builds it)

It reads each seed's `denoiser_<dataset>.pt2` and `diffusion_meta.json` once, as bytes, hashes
them, validates the declared noise schedule (`harness.diffusion.schedule`), runs the graphs with
`harness.graph_run` (no pickle, no torch.export.load) inside the DDPM sampler of
`harness.diffusion.evaluate`, and measures against the held-out split it draws itself
(`harness.diffusion.data`). What the training process reports in the meta file (config,
training facts, timings) is recorded as reported. A final_info.json the experiment wrote itself
is ignored and named in the record. `provenance` holds the sha256 of every file evaluated, of
the evaluated weights and of the harness's source; `checkpoint` says whether
`denoiser.safetensors` holds exactly the weights evaluated.

With `--seeds`, every `RUN_I_DIR/seed_<k>/` is evaluated and `RUN_I_DIR/final_info.json` holds
the means over the seeds with their intervals (`harness.seeds.aggregate`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from harness import evaluation
from harness import provenance as prov
from harness.diffusion import contract

MEASURED_CONFIG = ("preset", "datasets", "n_train", "n_eval", "n_generated", "num_timesteps",
                   "beta_schedule")
"""Config keys the evaluator sets itself; every other config key is reported by the run."""
MAX_META_BYTES = 16 << 20


class EvaluationError(RuntimeError):
    """The run directory holds nothing this evaluator can evaluate (said for the author)."""


def _read_meta(run_dir: Path) -> tuple[bytes, dict[str, Any]]:
    path = run_dir / contract.META
    if not path.is_file() or path.stat().st_size > MAX_META_BYTES:
        raise EvaluationError(f"{run_dir.name}/{contract.META} is missing or too large: "
                              f"{contract.EXPORT_HINT}")
    raw = path.read_bytes()
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise EvaluationError(f"{contract.META} is not JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise EvaluationError(f"{contract.META} must be a JSON object")
    return raw, meta




def _loaded(run_dir: Path, device: str) -> dict[str, Any]:
    """One seed's exports as the evaluator runs them, with what its record needs."""
    from harness.diffusion.schedule import betas
    from harness.graph_run import GraphProgram

    archives = {}
    for d in contract.DATASETS:
        path = run_dir / contract.graph_file(d)
        if not path.is_file():
            raise EvaluationError(f"{run_dir.name}/{path.name} is missing: the {d} denoiser was "
                                  f"not exported; {contract.EXPORT_HINT}")
        archives[d] = path.read_bytes()
    meta_raw, meta = _read_meta(run_dir)
    values = betas(meta.get("schedule"))  # ScheduleError (a ValueError) says what is wrong
    return {"dir": run_dir, "archives": archives, "meta_raw": meta_raw, "meta": meta,
            "betas": values, "ignored": evaluation.ignored_final_info(run_dir),
            "programs": {d: GraphProgram(a, device) for d, a in archives.items()}}


def weights_sha256(programs: dict[str, Any]) -> str:
    """sha256 of the evaluated weights (`harness.evaluation.weights_sha256`), dataset by dataset."""
    return evaluation.weights_sha256([(f"{d}:{fqn}", programs[d].weights[fqn])
                                      for d in contract.DATASETS for fqn in sorted(programs[d].weights)])


def checkpoint_check(run_dir: Path, programs: dict[str, Any]) -> dict[str, Any] | None:
    """Whether `denoiser.safetensors` holds exactly the weights of the graphs evaluated."""
    from harness.diffusion.export import WRAPPED

    weights = {f"{d}.{fqn.removeprefix(WRAPPED)}": w
               for d in contract.DATASETS for fqn, w in programs[d].weights.items()}
    return evaluation.checkpoint_check(run_dir / contract.CHECKPOINT, weights)


def _held_out(preset: Any) -> dict[str, Any]:
    from harness.diffusion.data import points

    return {d: points(d, "eval", preset.n_eval) for d in contract.DATASETS}


def _write(item: dict[str, Any], report: Any, preset: Any, manifest: Path | None,
           seed: int | None = None, started: float | None = None) -> dict[str, Any]:
    """Write one seed's final_info.json (its directory) and return the record."""
    from harness import results
    from harness.diffusion import data as data_mod
    from harness.diffusion import evaluate as ev
    from harness.diffusion.schedule import describe

    meta = item["meta"]
    schedule = describe(meta["schedule"], item["betas"])
    reported_config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    config = {**reported_config, "preset": preset.name, "datasets": list(contract.DATASETS),
              "n_train": preset.n_train, "n_eval": preset.n_eval,
              "n_generated": preset.n_generate, "num_timesteps": schedule["num_timesteps"],
              "beta_schedule": schedule["beta_schedule"]}
    reported_timings = meta.get("timings") if isinstance(meta.get("timings"), dict) else {}
    timings = {**{k: v for k, v in reported_timings.items() if isinstance(v, (int, float))},
               "eval_s": report.seconds}
    if started is not None:  # evaluated alone: the whole process's time
        timings["evaluator_s"] = time.perf_counter() - started
    provenance = {"evaluator": contract.EVALUATOR, "harness_sha256": prov.harness_sha256(),
                  **{key: prov.sha256_bytes(item["archives"][d]) for d in contract.DATASETS
                     for key in [f"denoiser_{d}_sha256"]},
                  "meta_sha256": prov.sha256_bytes(item["meta_raw"]),
                  "weights_sha256": weights_sha256(item["programs"])}
    assert set(contract.EXPORTS) <= set(provenance)
    sampler = "DDPM ancestral (posterior variance), no clipping"
    extra: dict[str, Any] = {
        "preset": preset.name,
        "setup": {"datasets": ", ".join(contract.DATASETS), "n_train": preset.n_train,
                  "n_eval": preset.n_eval, "n_generated": preset.n_generate,
                  "num_timesteps": schedule["num_timesteps"],
                  "beta_schedule": schedule["beta_schedule"], "sampler": sampler,
                  "eval_seed": ev.EVAL_SEED, "knn_k": ev.KNN_K},
        "data": {"generator": "harness.diffusion.data (generated in code, seed "
                              f"{data_mod.DATA_SEED})",
                 "datasets": {d: {"label": data_mod.LABELS[d], "n_train": preset.n_train,
                                  "n_eval": preset.n_eval} for d in contract.DATASETS},
                 "held_out": "an independent draw of each dataset, made by the evaluator"},
        "evaluation": {"sampler": sampler, "schedule": schedule, "n_generated": preset.n_generate,
                       "eval_seed": ev.EVAL_SEED, "knn_k": ev.KNN_K,
                       "range_factor": ev.RANGE_FACTOR, "prediction": "epsilon",
                       "definitions": ev.DEFINITIONS},
        "measurements": report.per_dataset,
        "training": meta.get("training") if isinstance(meta.get("training"), dict) else {},
        "reported": {"source": contract.META, "fields": ["config (all but "
                     + ", ".join(MEASURED_CONFIG) + ")", "training", "timings (all but eval_s)"],
                     "note": "stated by the training process, not measured by the evaluator"},
        "provenance": provenance,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if seed is not None:
        extra["seed"] = seed
    checkpoint = checkpoint_check(item["dir"], item["programs"])
    if checkpoint is not None:
        extra["checkpoint"] = checkpoint
    if item["ignored"]:
        extra["ignored_from_experiment"] = item["ignored"]
    return results.write_final_info(item["dir"], report.metrics, config, timings=timings,
                                    extra=extra, manifest=manifest)


def _device() -> str:
    import torch

    from harness.diffusion.record import fit_threads

    if torch.cuda.is_available():
        return "cuda"
    fit_threads()  # the sampler's small matrices gain nothing from a second, contended thread
    return "cpu"


def evaluate_run(run_dir: Path, preset_name: str | None, manifest: Path | None = None) -> dict[str, Any]:
    """Evaluate `run_dir`'s exported denoisers and write its final_info.json; return the record."""
    from harness.diffusion.evaluate import evaluate
    from harness.diffusion.presets import resolve

    start = time.perf_counter()
    preset, device = resolve(preset_name), _device()
    item = _loaded(run_dir.resolve(), device)
    report = evaluate(item["programs"], item["betas"], _held_out(preset), preset.n_generate, device)
    return _write(item, report, preset, manifest, started=start)


def evaluate_seeds(run_dir: Path, seeds: list[int], preset_name: str | None,
                   manifest: Path | None = None) -> dict[str, Any]:
    """Evaluate every seed of a run (`run_dir/seed_<k>/`) in this one process; write each
    seed's final_info.json and the run's own, whose metrics are the means (`harness.seeds`)."""
    from harness import results
    from harness import seeds as seeds_mod
    from harness.diffusion.evaluate import evaluate
    from harness.diffusion.presets import resolve
    from harness.graph_run import Refused

    start = time.perf_counter()
    run_dir = run_dir.resolve()
    preset, device = resolve(preset_name), _device()
    outcomes = evaluation.seed_outcomes(run_dir / seeds_mod.OUTCOMES)
    held_out = _held_out(preset)
    records, failed = {}, {}
    for seed in seeds:
        if outcomes.get(seed, {}).get("status", "ok") != "ok":
            failed[seed] = str(outcomes[seed].get("describe") or outcomes[seed]["status"])[:500]
            continue
        try:
            item = _loaded(seeds_mod.seed_dir(run_dir, seed), device)
            report = evaluate(item["programs"], item["betas"], held_out, preset.n_generate, device)
        except (EvaluationError, Refused, ValueError) as exc:
            failed[seed] = f"not evaluated: {exc}"[:500]
            continue
        records[seed] = _write(item, report, preset, manifest, seed=seed)
    if not records:
        raise EvaluationError("no seed of this run can be evaluated: " + "; ".join(
            f"seed {s}: {why}" for s, why in failed.items()))
    means, section = seeds_mod.aggregate(records, seeds, failed)
    order = [s for s in seeds if s in records]
    first = records[order[0]]
    timings = {k: math.fsum(records[s]["timings"].get(k, 0.0) for s in order) / len(order)
               for k, v in first["timings"].items() if isinstance(v, (int, float))}
    timings["evaluator_s"] = time.perf_counter() - start
    extra: dict[str, Any] = {
        "seeds": section, "preset": first.get("preset"), "setup": first.get("setup", {}),
        "measurements": {f"seed_{s}": records[s].get("measurements", {}) for s in order},
        "evaluation": first.get("evaluation", {}), "data": first.get("data", {}),
        "training": {f"seed_{s}": records[s].get("training", {}) for s in order},
        "reported": first.get("reported", {}),
        "provenance": {"evaluator": contract.EVALUATOR, "harness_sha256": prov.harness_sha256(),
                       "aggregate_of": {f"seed_{s}": {
                           "final_info_sha256": prov.sha256_file(
                               seeds_mod.seed_dir(run_dir, s) / results.FINAL_INFO)}
                           for s in order}},
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    config = seeds_mod.merged_config(records, order)
    return results.write_final_info(run_dir, means, config, timings=timings, extra=extra,
                                    manifest=manifest)






def main(argv: list[str] | None = None) -> int:
    from harness.diffusion.presets import PresetUnavailable

    return evaluation.cli(argv, prog=contract.EVALUATOR, description=__doc__,
                          evaluate_run=evaluate_run, evaluate_seeds=evaluate_seeds,
                          errors=(EvaluationError, PresetUnavailable))


if __name__ == "__main__":
    sys.exit(main())
