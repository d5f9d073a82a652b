"""What the loop relies on from the SAE evaluation (read by `harness.provenance.contract`).

Torch-free constants: the files an SAE experiment exports into each seed folder (hashed into
the evaluator's provenance under these keys), the checkpoint it checks, the evaluator, and the
step that fills the caches (model, activations, zero-ablation sums) before the baseline.
"""

ENCODE = "sae_encode.pt2"
DECODE = "sae_decode.pt2"
META = "sae_meta.json"
CHECKPOINT = "sae.safetensors"
"""The trained SAE's state dict; the evaluator checks it holds the weights it evaluated."""
EVALUATOR = "harness.sae.evaluator"
EXPORTS = {"encode_sha256": ENCODE, "decode_sha256": DECODE, "meta_sha256": META}
EXPORT_HINT = ("call harness.finish(out_dir, sae, source, ...) as the baseline does, which exports "
               "encode and decode as graphs")
PREPARE = "harness.sae.prepare"
