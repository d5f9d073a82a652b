"""The evaluator: the one process that writes metrics, and never runs LLM-edited Python.

    python -I -c '<boot>' RUN_I_DIR [--preset NAME] [--manifest template.toml] [--seeds 0,1,2]
    (`harness.provenance.evaluator_command` builds that line; `python -m harness.sae.evaluator` works too)

It reads `run_i/sae_encode.pt2` and `sae_decode.pt2` once, as bytes, hashes them, and runs them
with `harness.graph_run` (no pickle, no torch.export.load), forms x_hat = decode(encode(x)) itself
and runs the unchanged `harness.sae.evaluate.evaluate()`. What the training process reports in
`sae_meta.json` (config, training facts, timings) is recorded as reported; groups and levels
from it are validated index lists. A final_info.json the experiment wrote itself is ignored and
named in the record (its values are kept out of it, so no paper can cite them). The record's
`provenance` holds the sha256 of every file evaluated and of the harness's source; `checkpoint`
says whether `sae.safetensors` holds exactly the weights evaluated.

With `--seeds`, every `RUN_I_DIR/seed_<k>/` is evaluated in this one process (model, held-out
activations and clean forward pass shared) and `RUN_I_DIR/final_info.json` holds the means
over the seeds with their intervals (`harness.seeds`).
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
from harness.sae import contract

MEASURED_CONFIG = ("d_in", "d_sae", "model", "layer", "dataset", "preset", "context_len",
                   "act_scale")
"""Config keys the evaluator sets itself; every other config key is reported by the run."""
MAX_META_BYTES = 16 << 20


class EvaluationError(RuntimeError):
    """The run directory holds nothing this evaluator can evaluate (said for the author)."""


def _index_list(value: Any, d_sae: int, what: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                              and 0 <= v < d_sae for v in value):
        raise EvaluationError(f"sae_meta.json: {what} must be a list of latent indices in "
                              f"[0, {d_sae})")
    return value


def validated_groups(meta: dict[str, Any], d_sae: int) -> list[list[int]] | None:
    groups = meta.get("groups")
    if groups is None:
        return None
    if isinstance(groups, list) and len(groups) == d_sae and all(isinstance(g, int) for g in groups):
        ids = _index_list(groups, 1 << 62, "groups (ids)")  # a (d_sae,) tensor of group ids
        return [[i for i, g in enumerate(ids) if g == gid] for gid in sorted(set(ids))]
    if not isinstance(groups, list):
        raise EvaluationError("sae_meta.json: groups must be a list of index lists")
    return [_index_list(g, d_sae, "each group") for g in groups]


def validated_levels(meta: dict[str, Any], d_sae: int) -> dict[str, list[int]] | None:
    levels = meta.get("levels")
    if levels is None:
        return None
    if not isinstance(levels, dict):
        raise EvaluationError("sae_meta.json: levels must be {name: latent indices}")
    return {str(k)[:64]: _index_list(v, d_sae, f"level {str(k)[:64]!r}") for k, v in levels.items()}


def graph_sae(encode: bytes, decode: bytes, meta: dict[str, Any], device: str) -> Any:
    """What evaluate() needs, over the two graphs: sae(x, output_features=True), decode,
    parameters() (for the device), groups()/levels() from the validated meta."""
    import torch

    from harness.graph_run import GraphProgram

    class GraphSAE(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc, self.dec = GraphProgram(encode, device), GraphProgram(decode, device)
            self._anchor = torch.nn.Parameter(torch.zeros(0, device=device), requires_grad=False)
            with torch.no_grad():
                self.d_sae = int(self.enc(torch.zeros(2, int(meta["d_in"]), device=device)).shape[-1])
            groups, levels = validated_groups(meta, self.d_sae), validated_levels(meta, self.d_sae)
            # The decoder's weight matrix, for the decoder-geometry measurements: the decode
            # graph's own weight named W_dec, as the template names it (the weights that graph
            # multiplies by). Without one, measurements probe decode(e_i) - decode(0), which
            # is W_dec only for an affine decoder (group-specific biases make it another one).
            named = [w for fqn, w in self.dec.weights.items() if fqn.split(".")[-1] == "W_dec"]
            if len(named) == 1:
                self.W_dec = named[0]
            # evaluate() looks these up with getattr + callable(): absent unless declared
            if groups is not None:
                self.groups = lambda: groups
            if levels is not None:
                self.levels = lambda: levels

        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return self.enc(x)

        def decode(self, f: torch.Tensor) -> torch.Tensor:
            return self.dec(f)

        def forward(self, x: torch.Tensor, output_features: bool = False) -> Any:
            f = self.enc(x)
            x_hat = self.dec(f)
            return (x_hat, f) if output_features else x_hat

    return GraphSAE()


def checkpoint_check(run_dir: Path, programs: list[Any]) -> dict[str, Any] | None:
    """Whether `run_i/sae.safetensors` holds exactly the weights of the graphs evaluated."""
    # export wraps the SAE as `sae`
    weights = {fqn.removeprefix("sae."): w for program in programs for fqn, w in program.weights.items()}
    return evaluation.checkpoint_check(run_dir / contract.CHECKPOINT, weights)


def weights_sha256(programs: list[Any]) -> str:
    """sha256 of the evaluated weights (`harness.evaluation.weights_sha256`), program by program."""
    return evaluation.weights_sha256([(f"{i}:{fqn}", program.weights[fqn])
                                      for i, program in enumerate(programs)
                                      for fqn in sorted(program.weights)])


def _read_meta(run_dir: Path) -> tuple[bytes, dict[str, Any]]:
    path = run_dir / contract.META
    if not path.is_file() or path.stat().st_size > MAX_META_BYTES:
        raise EvaluationError(f"{run_dir.name}/{contract.META} is missing or too large")
    raw = path.read_bytes()
    meta = json.loads(raw)
    if not isinstance(meta, dict) or not isinstance(meta.get("d_in"), int):
        raise EvaluationError(f"{contract.META} must be a JSON object with an integer d_in")
    return raw, meta




def _loaded(run_dir: Path, device: str) -> dict[str, Any]:
    """The exported SAE of `run_dir` as the evaluator runs it, with what its record needs."""
    for name in (contract.ENCODE, contract.DECODE):
        if not (run_dir / name).is_file():
            raise EvaluationError(
                f"{run_dir.name}/{name} is missing: the SAE was not exported. Train it in "
                "experiment.py and call harness.finish(out_dir, sae, source, ...), which exports "
                "encode/decode; metrics written by experiment.py itself are ignored")
    encode, decode = (run_dir / contract.ENCODE).read_bytes(), (run_dir / contract.DECODE).read_bytes()
    meta_raw, meta = _read_meta(run_dir)
    return {"dir": run_dir, "encode": encode, "decode": decode, "meta_raw": meta_raw,
            "meta": meta, "ignored": evaluation.ignored_final_info(run_dir),
            "sae": graph_sae(encode, decode, meta, device)}


def evaluate_run(run_dir: Path, preset: str | None, manifest: Path | None = None) -> dict[str, Any]:
    """Evaluate `run_dir`'s exported SAE and write its final_info.json; return the record."""
    import torch

    from harness.sae.evaluate import evaluate_many

    start = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded = _loaded(run_dir.resolve(), device)
    source = _source(preset, [loaded])
    (report,) = evaluate_many([loaded["sae"]], source)
    return _write(loaded, report, source, manifest, time.perf_counter() - start)


def evaluate_seeds(run_dir: Path, seeds: list[int], preset: str | None,
                   manifest: Path | None = None) -> dict[str, Any]:
    """Evaluate every seed of a run (`run_dir/seed_<k>/`) in this one process, sharing the
    model, the held-out activations and the clean forward pass; write each seed's
    final_info.json and the run's own, whose metrics are the means (`harness.seeds`)."""
    import torch

    from harness import results
    from harness import seeds as seeds_mod
    from harness.graph_run import Refused
    from harness.sae.evaluate import evaluate_many

    start = time.perf_counter()
    run_dir = run_dir.resolve()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    outcomes = evaluation.seed_outcomes(run_dir / seeds_mod.OUTCOMES)
    loaded, failed = [], {}
    for seed in seeds:
        if outcomes.get(seed, {}).get("status", "ok") != "ok":
            failed[seed] = str(outcomes[seed].get("describe") or outcomes[seed]["status"])[:500]
            continue
        try:
            loaded.append({**_loaded(seeds_mod.seed_dir(run_dir, seed), device), "seed": seed})
        except (EvaluationError, Refused, ValueError) as exc:
            failed[seed] = f"not evaluated: {exc}"[:500]
    if not loaded:
        raise EvaluationError("no seed of this run can be evaluated: " + "; ".join(
            f"seed {s}: {why}" for s, why in failed.items()))
    source = _source(preset, loaded)
    reports = evaluate_many([item["sae"] for item in loaded], source)
    records = {}
    for item, report in zip(loaded, reports, strict=True):
        records[item["seed"]] = _write(item, report, source, manifest, report.seconds,
                                       seed=item["seed"])
    means, section = seeds_mod.aggregate(records, seeds, failed)
    order = [s for s in seeds if s in records]
    first = records[order[0]]
    timings = {k: math.fsum(records[s]["timings"].get(k, 0.0) for s in order) / len(order)
               for k, v in first["timings"].items() if isinstance(v, (int, float))}
    timings["evaluator_s"] = time.perf_counter() - start
    extra: dict[str, Any] = {
        "seeds": section,
        "preset": first.get("preset"),
        "measurements": {f"seed_{s}": records[s].get("measurements", {}) for s in order},
        "evaluation": first.get("evaluation", {}),
        "data": first.get("data", {}),
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




def _source(preset: str | None, loaded: list[dict[str, Any]]) -> Any:
    from harness.sae.activations import ActivationSource

    source = ActivationSource(preset)
    for item in loaded:
        if source.d_in != item["meta"]["d_in"]:
            raise EvaluationError(f"the SAE was exported for d_in={item['meta']['d_in']}, the "
                                  f"preset {source.preset.name} has d_in={source.d_in}")
    return source


def _write(item: dict[str, Any], report: Any, source: Any, manifest: Path | None,
           seconds: float, seed: int | None = None) -> dict[str, Any]:
    """Write one evaluated SAE's final_info.json (its directory) and return the record."""
    from harness import results

    run_dir, meta, sae = item["dir"], item["meta"], item["sae"]
    data = source.describe()
    reported_config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    config = {**reported_config, "d_in": report.d_in, "d_sae": report.d_sae,
              "model": data["model"], "layer": data["layer"], "dataset": data["dataset"],
              "preset": source.preset.name, "context_len": data["context_len"],
              "act_scale": data["act_scale"], "sae_class": str(meta.get("sae_class"))[:100],
              "tokens": meta.get("tokens")}
    reported_timings = meta.get("timings") if isinstance(meta.get("timings"), dict) else {}
    timings = {**{k: v for k, v in reported_timings.items() if isinstance(v, (int, float))},
               "harvest_s": data["harvest_seconds"],
               "model_load_s": source.lm_info.get("load_seconds", 0.0), "eval_s": report.seconds,
               "evaluator_s": seconds}
    extra: dict[str, Any] = {
        "preset": source.preset.name,
        "measurements": report.measurements,
        "evaluation": {**report.windows, "held_out": f"{data['dataset']} eval split"},
        "data": data,
        "training": meta.get("training") if isinstance(meta.get("training"), dict) else {},
        "reported": {"source": contract.META, "fields": ["config (all but "
                     + ", ".join(MEASURED_CONFIG) + ")", "training", "timings (all but "
                     "harvest_s, model_load_s, eval_s, evaluator_s)", "tokens", "sae_class"],
                     "note": "stated by the training process, not measured by the evaluator"},
        "provenance": {"evaluator": contract.EVALUATOR,
                       "encode_sha256": prov.sha256_bytes(item["encode"]),
                       "decode_sha256": prov.sha256_bytes(item["decode"]),
                       "meta_sha256": prov.sha256_bytes(item["meta_raw"]),
                       "weights_sha256": weights_sha256([sae.enc, sae.dec]),
                       "harness_sha256": prov.harness_sha256()},
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if seed is not None:
        extra["seed"] = seed
    checkpoint = checkpoint_check(run_dir, [sae.enc, sae.dec])
    if checkpoint is not None:
        extra["checkpoint"] = checkpoint
    if item["ignored"]:
        extra["ignored_from_experiment"] = item["ignored"]
    return results.write_final_info(run_dir, report.metrics, config, timings=timings, extra=extra,
                                    manifest=manifest)




def main(argv: list[str] | None = None) -> int:
    return evaluation.cli(argv, prog=contract.EVALUATOR, description=__doc__,
                          evaluate_run=evaluate_run, evaluate_seeds=evaluate_seeds,
                          errors=(EvaluationError,))


if __name__ == "__main__":
    sys.exit(main())
