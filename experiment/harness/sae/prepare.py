"""Filling the harness's caches for a preset, in a process that runs no LLM-edited code.

    python -I -c '<boot>' --preset NAME      (`harness.provenance.prepare_command` builds it)

Under the loop, experiments and the evaluator see the cache read-only: what the evaluator
measures against (held-out activations and token rows, the language model, the zero-ablation
sums) must not be writable by the code it judges. So before the baseline the orchestrator
starts this step, the only one allowed to write the cache (and, for a hub preset, to reach
the network and write the Hugging Face cache). It builds or downloads the model, harvests the
train and eval activations and measures the zero-ablation sums; with everything cached it
returns in seconds. It prints one JSON line saying what it found and built.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def prepare(preset: str | None) -> dict[str, Any]:
    """Everything an experiment and its evaluation read from the cache, made present."""
    from harness.sae.activations import ActivationSource
    from harness.sae.evaluate import downstream

    start = time.perf_counter()
    source = ActivationSource(preset)
    described = source.describe()  # harvests the train and eval splits when missing
    source.ce_rows()
    zero = downstream(None, source)
    return {"preset": source.preset.name, "model": described["model"],
            "layer": described["layer"], "d_in": source.d_in,
            "train_tokens": described["train_tokens_available"],
            "eval_tokens": described["eval_tokens"],
            "activations_cached": described["activation_cache_hit"],
            "zero_ablation_cached": zero["zero_ablation_cached"],
            "seconds": round(time.perf_counter() - start, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.sae.prepare", description=__doc__)
    parser.add_argument("--preset", default=None)
    args = parser.parse_args(argv)
    from harness.sae.presets import PresetUnavailable

    try:
        found = prepare(args.preset)
    except PresetUnavailable as exc:
        print(f"prepare: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
