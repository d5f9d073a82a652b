"""Seeds: a run trained several times, its metrics the means over the seeds, with their spread.

Each seed is an independent process, `python experiment.py --out_dir=run_i/seed_<k>` with
`EXPERIMENT_SEED=<k>` in its environment (the experiment reads it with `harness.run_seed`),
so seeds can run concurrently. The evaluator then evaluates every seed of the run in one
process (`python -m harness.sae.evaluator run_i --seeds 0,1,2`): the model, the held-out
activations and the clean forward pass are shared, each `seed_<k>/final_info.json` is
written, and `aggregate` turns them into `run_i/final_info.json`, whose `metrics` are the
means and whose `seeds` section holds the per-seed values, n, standard deviations and 95%
intervals of the means (Student's t). By hand:

    for s in 0 1 2; do EXPERIMENT_SEED=$s python experiment.py --out_dir=run_1/seed_$s; done
    python -m harness.sae.evaluator run_1 --seeds 0,1,2

(A template without an evaluator, whose experiment writes its own final_info.json, has its
seeds combined by `python -m harness.seeds run_1 --seeds 0,1,2`.)
Seeds that failed are listed with the reason; a run with fewer than 2 successful seeds has
no interval and says so. Seeds whose exported graphs are byte-identical were not independent
(the experiment ignored its seed): the run then has no interval either.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SEED_ENV = "EXPERIMENT_SEED"
OUTCOMES = "seed_outcomes.json"
"""Written by the loop into run_i/ before evaluation: how each seed's process ended."""
LEVEL = 0.95


def run_seed(default: int = 0) -> int:
    """This process's seed: `EXPERIMENT_SEED` when the loop (or a person) set it, else `default`."""
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{SEED_ENV}={raw!r} is not an integer seed") from None


def seed_dir(run_dir: Path, seed: int) -> Path:
    return run_dir / f"seed_{seed}"


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` -> [0, 1, 2] (distinct non-negative integers)."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: give comma-separated integers, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds {text!r}: give distinct non-negative integers, e.g. 0,1,2")
    return seeds


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile: `scipy.stats.t.ppf(p, df)`, which is `scipy.special.stdtrit(df, p)`,
    called directly (importing scipy.special takes a third of the time of scipy.stats)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def interval(values: Sequence[float]) -> tuple[float, float, tuple[float, float] | None]:
    """(mean, sample sd, 95% t interval of the mean or None when n < 2)."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0, None
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + LEVEL / 2, n - 1) * sd / math.sqrt(n)
    return mean, sd, (mean - half, mean + half)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def aggregate(records: Mapping[int, Mapping[str, Any]], requested: Sequence[int],
              failed: Mapping[int, str]) -> tuple[dict[str, float], dict[str, Any]]:
    """Means of every metric all successful seeds report, and the `seeds` section.

    `records`: seed -> its evaluated final_info record; `failed`: seed -> why it has none.
    """
    seeds = [s for s in requested if s in records]
    if not seeds:
        raise ValueError("no seed of this run was evaluated")
    names = [k for k, v in records[seeds[0]]["metrics"].items()
             if _number(v) and all(_number(records[s]["metrics"].get(k)) for s in seeds)]
    same = sorted((a, b) for a in seeds for b in seeds if a < b and _same(records[a], records[b]))
    independent = not same
    means: dict[str, float] = {}
    values: dict[str, list[float]] = {}
    sds: dict[str, float] = {}
    cis: dict[str, list[float] | None] = {}
    for name in names:
        xs = [float(records[s]["metrics"][name]) for s in seeds]
        mean, sd, ci = interval(xs)
        means[name], values[name], sds[name] = mean, xs, sd
        cis[name] = list(ci) if ci is not None and independent else None
    n = len(seeds)
    if not independent:
        note = (f"seeds {', '.join(f'{a} and {b}' for a, b in same)} produced identical results "
                "(the same exported SAE, or the same metrics to the last digit): the experiment "
                "ignored its seed (harness.run_seed / EXPERIMENT_SEED), so these are repeats of "
                "one measurement and no interval is given")
    elif n < 2:
        note = (f"only {n} seed succeeded: the metrics are one measurement, with no interval")
    else:
        note = (f"metrics are means over {n} seeds; ci95 is the 95% Student t interval of each "
                "mean, sd the sample standard deviation")
    section = {"requested": list(requested), "succeeded": seeds,
               "failed": [{"seed": s, "reason": failed.get(s, "not evaluated")}
                          for s in requested if s not in records],
               "n": n, "independent": independent, "level": LEVEL,
               "values": values, "sd": sds, "ci95": cis, "note": note}
    return means, section


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two seeds are the same experiment: the evaluated weights are equal (the
    evaluator's hash of them), or every metric is equal to the last digit."""
    weights = [r.get("provenance", {}).get("weights_sha256") for r in (a, b)]
    if weights[0] and weights[0] == weights[1]:
        return True
    return json.dumps(a.get("metrics"), sort_keys=True) == json.dumps(b.get("metrics"), sort_keys=True)


def merged_config(records: Mapping[int, Mapping[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """The first seed's config, with every key whose value differs between seeds (the seed
    itself) replaced by the list of per-seed values."""
    configs = [records[s].get("config") or {} for s in seeds]
    merged = dict(configs[0])
    for key in sorted({k for c in configs for k in c}):
        found = [c.get(key) for c in configs]
        if any(f != found[0] for f in found):
            merged[key] = found
    return merged


def aggregate_run(run_dir: Path, seeds: Sequence[int], manifest: Path | None = None) -> dict[str, Any]:
    """For a template whose experiment writes its own final_info.json (no evaluator): the
    run's final_info.json from its seeds' (the loop's `seed_outcomes.json` says which failed)."""
    from harness import results

    outcomes = {}
    if (run_dir / OUTCOMES).is_file():
        data = json.loads((run_dir / OUTCOMES).read_text(encoding="utf-8"))
        outcomes = {int(o["seed"]): o for o in data.get("seeds", []) if isinstance(o, dict)}
    records: dict[int, dict[str, Any]] = {}
    failed: dict[int, str] = {}
    for seed in seeds:
        outcome = outcomes.get(seed, {})
        if outcome.get("status", "ok") != "ok":
            failed[seed] = str(outcome.get("describe") or outcome.get("status"))[:500]
            continue
        try:
            record = results.read_final_info(seed_dir(run_dir, seed))
            if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
                raise ValueError("no metrics object")
        except (OSError, ValueError) as exc:
            failed[seed] = f"no readable final_info.json ({exc})"[:500]
            continue
        records[seed] = record
    means, section = aggregate(records, seeds, failed)
    order = [s for s in seeds if s in records]
    first = records[order[0]]
    extra = {k: v for k, v in first.items()
             if k not in ("metrics", "config", "code", "gates", "timings", "harness")}
    extra["seeds"] = section
    timings = {k: math.fsum(records[s].get("timings", {}).get(k, 0.0) for s in order) / len(order)
               for k, v in (first.get("timings") or {}).items() if _number(v)}
    return results.write_final_info(run_dir, means, merged_config(records, order),
                                    timings=timings, extra=extra, manifest=manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.seeds", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--seeds", required=True, metavar="LIST", help="e.g. 0,1,2")
    parser.add_argument("--manifest", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        record = aggregate_run(args.run_dir, parse_seeds(args.seeds), args.manifest)
    except ValueError as exc:
        print(f"harness.seeds: {exc}", file=sys.stderr)
        return 2
    print(f"harness.seeds: wrote {args.run_dir}/final_info.json ({record['seeds']['note']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
