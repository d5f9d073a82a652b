"""Running an exported SAE graph (`run_i/sae_encode.pt2`) without `torch.export.load`.

The archives are written by code the LLM edits, so they are untrusted input. `torch.export.load`
is not safe on them: it falls back to pickle for weights, constants and sample inputs, evaluates
symbolic sizes with sympy, executes `guards_code`, and pastes parameter names into generated
Python. This module reads only the archive's JSON (`json.loads`) and the weights as raw
little-endian bytes, and interprets the graph node by node, calling only the aten kernels of an
explicit allowlist. A graph has parameters and persistent buffers (read, never written), one
user input and one output; no constants, no opaque objects. Anything else is refused (`Refused`) before a kernel runs.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import torch
from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE as DTYPES
from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_LAYOUT as LAYOUTS
from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_MEMORY_FORMAT as MEMORY_FORMATS

MAX_BYTES = 1 << 33
"""Largest archive (uncompressed), 8 GiB: a Gemma-2-2B-wide SAE is well below."""

ALLOWED_ATEN = frozenset({
    "addmm.default", "mm.default", "matmul.default", "linear.default", "t.default",
    "transpose.int", "permute.default", "view.default", "reshape.default", "unsqueeze.default",
    "squeeze.dim", "squeeze.dims", "expand.default", "clone.default", "contiguous.default",
    "slice.Tensor", "select.int", "add.Tensor", "sub.Tensor", "mul.Tensor", "div.Tensor",
    "neg.default", "exp.default", "log.default", "abs.default", "sign.default", "sqrt.default",
    "pow.Tensor_Scalar", "clamp.default", "clamp_min.default", "relu.default", "sigmoid.default",
    "tanh.default", "gt.Tensor", "gt.Scalar", "ge.Tensor", "ge.Scalar", "lt.Tensor", "lt.Scalar",
    "le.Scalar", "where.self", "topk.default", "scatter.src", "scatter.value", "gather.default",
    "zeros_like.default", "zeros.default", "full_like.default", "ones_like.default",
    "sum.dim_IntList", "mean.dim", "amax.default", "norm.ScalarOpt_dim", "_to_copy.default",
    "to.dtype", "cat.default", "stack.default", "split.Tensor", "chunk.default",
    "_softmax.default", "softmax.int", "masked_fill.Scalar", "index_select.default", "bmm.default",
    "einsum.default", "sym_size.int", "detach.default", "alias.default", "new_zeros.default",
    "new_ones.default", "new_full.default", "full.default", "ones.default", "arange.default",
    "arange.start", "arange.start_step", "index_add.default", "scatter_add.default",
    "index.Tensor", "index_put.default", "max.dim", "min.dim", "amin.default", "max.default",
    "min.default", "sort.default", "argsort.default", "cumsum.default", "prod.dim_int",
    "sum.default", "mean.default", "square.default", "rsqrt.default", "reciprocal.default",
    "maximum.default", "minimum.default", "eq.Tensor", "eq.Scalar", "ne.Tensor", "ne.Scalar",
    "le.Tensor", "logical_and.default", "logical_or.default", "logical_not.default",
    "bitwise_not.default", "rsub.Scalar", "div.Scalar", "mul.Scalar", "add.Scalar", "sub.Scalar",
    "clamp_max.default", "gelu.default", "silu.default", "softplus.default", "flatten.using_ints",
    "unflatten.int", "repeat.default", "expand_as.default", "view_as.default", "type_as.default",
    "masked_fill.Tensor", "copy.default", "fill.Scalar",
    "layer_norm.default", "native_layer_norm.default", "heaviside.default", "floor.default",
    "round.default", "_unsafe_view.default", "narrow.default", "diagonal.default", "outer.default",
    "sin.default", "cos.default", "embedding.default",
})
"""Pure tensor kernels an exported graph (an SAE's encode/decode, a denoiser) may use
(`torch.ops.aten.<name>`). No in-place kernel: one could write into the input x the evaluator compares against, or into a weight to
carry state from one batch to the next; no uninitialized memory (`empty_like`), which could
hold what an earlier tensor left there. The exporters (`harness.sae.export`,
`harness.diffusion.export`) functionalize the graphs, so an honest model's in-place code
(`h.relu_()`) arrives here as its pure kernel. sin/cos (sinusoidal time embeddings) and
embedding (a learned one: a bounds-checked row lookup) serve the 2d_diffusion denoisers."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")  # net.0.weight: nn.Sequential
_SYMBOL = re.compile(r"Symbol\('s\d+', positive=True, integer=True\)")
_EXPR = re.compile(r"[0-9s*+\- ()]+")  # symbolic sizes: s77, 2*s77 (never evaluated here)
_FILES = re.compile(r"(archive_format|archive_version|byteorder|\.data/version|"
                    r"\.data/serialization_id|models/model\.json|data/weights/"
                    r"model_weights_config\.json|data/weights/weight_\d+|"
                    r"data/constants/model_constants_config\.json|data/sample_inputs/model\.pt)")


class Refused(ValueError):
    """The archive holds something this interpreter does not run."""


def _walk(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k), v
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def _ints(sizes: list[dict[str, Any]]) -> list[int]:
    out = []
    for s in sizes:
        if not isinstance(s, dict) or not isinstance(s.get("as_int"), int):
            raise Refused("weights must have static integer sizes")
        out.append(s["as_int"])
    return out


class GraphProgram:
    """One exported function of one tensor: `program(x) -> y`, from the archive's bytes."""

    def __init__(self, archive: bytes, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            infos = z.infolist()
            if sum(i.file_size for i in infos) > MAX_BYTES:
                raise Refused("archive too large")
            roots = {i.filename.split("/", 1)[0] for i in infos}
            if len(roots) != 1:
                raise Refused("one archive root folder expected")
            root = roots.pop() + "/"
            for i in infos:
                rel = i.filename[len(root):]
                if not i.is_dir() and not _FILES.fullmatch(rel):
                    raise Refused(f"unexpected file in the archive: {rel!r}")
            model = json.loads(z.read(root + "models/model.json"))
            weights_cfg = json.loads(z.read(root + "data/weights/model_weights_config.json"))
            names = set(z.namelist())
            const_path = root + "data/constants/model_constants_config.json"
            constants = json.loads(z.read(const_path)) if const_path in names else {}
            if model.get("guards_code"):
                raise Refused("guards_code is not accepted")
            if constants.get("config"):
                raise Refused("constants (tensors or opaque objects) are not accepted")
            for key, value in _walk(model):
                if key == "expr_str" and not (isinstance(value, str)
                                              and _EXPR.fullmatch(_SYMBOL.sub("s0", value))):
                    raise Refused(f"symbolic size {str(value)[:60]!r} is not a plain size")
            self.weights = {fqn: self._weight(z, root, fqn, meta)
                            for fqn, meta in dict(weights_cfg.get("config", {})).items()}
        self._program(model["graph_module"])

    def _weight(self, z: zipfile.ZipFile, root: str, fqn: str, meta: dict[str, Any]) -> torch.Tensor:
        if not _NAME.fullmatch(str(fqn)):
            raise Refused(f"parameter name {str(fqn)[:60]!r} is not an identifier path")
        if meta.get("use_pickle") is not False or \
                not re.fullmatch(r"weight_\d+", str(meta.get("path_name"))):
            raise Refused(f"weight {fqn!r}: plain tensors only (no pickle)")
        tm = meta["tensor_meta"]
        dtype = DTYPES.get(tm.get("dtype"))
        if dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16,
                         torch.int64, torch.int32, torch.uint8, torch.int8, torch.bool):
            raise Refused(f"weight {fqn!r} has dtype {dtype}")
        raw = bytearray(z.read(root + "data/weights/" + meta["path_name"]))
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.zeros(0, dtype=dtype)
        offset = tm["storage_offset"]["as_int"]
        if not isinstance(offset, int):
            raise Refused(f"weight {fqn!r}: bad storage offset")
        # as_strided checks the view against the storage's size
        view = torch.as_strided(flat, _ints(tm["sizes"]), _ints(tm["strides"]), offset)
        return view.to(self.device)

    def _program(self, module: dict[str, Any]) -> None:
        graph, sig = module["graph"], module["signature"]
        self.inputs: list[tuple[str, torch.Tensor | None]] = []
        users = 0
        if len(sig["input_specs"]) != len(graph["inputs"]):
            raise Refused("signature and graph inputs differ")
        for spec, placeholder in zip(sig["input_specs"], graph["inputs"], strict=True):
            ((kind, body),) = spec.items()
            name = placeholder["as_tensor"]["name"]
            if kind == "parameter" and body["parameter_name"] in self.weights:
                self.inputs.append((name, self.weights[body["parameter_name"]]))
            elif kind == "buffer" and body.get("persistent") and body["buffer_name"] in self.weights:
                self.inputs.append((name, self.weights[body["buffer_name"]]))  # e.g. group ids
            elif kind == "user_input" and users == 0:
                users += 1
                self.inputs.append((name, None))
            else:  # non-persistent buffers, constants, tokens, a second input
                raise Refused(f"input kind {kind!r} is not accepted")
        if users != 1:
            raise Refused("exactly one user input expected")
        outs = sig["output_specs"]
        if len(outs) != 1 or "user_output" not in outs[0]:
            raise Refused("exactly one user output expected (no buffer mutations)")
        self.output = outs[0]["user_output"]["arg"]["as_tensor"]["name"]
        self.nodes = []
        for n in graph["nodes"]:
            target = n["target"]
            op_name = target.removeprefix("torch.ops.aten.")
            if not target.startswith("torch.ops.aten.") or op_name not in ALLOWED_ATEN:
                raise Refused(f"op {str(target)[:80]!r} is not in the allowlist")
            packet, overload = op_name.split(".")
            self.nodes.append((getattr(getattr(torch.ops.aten, packet), overload),
                               n["inputs"], n["outputs"]))

    def _arg(self, a: dict[str, Any], env: dict[str, Any]) -> Any:
        ((kind, v),) = ((k, v) for k, v in a.items() if v is not None)
        if kind == "as_tensor":
            return env[v["name"]]
        if kind == "as_tensors":
            return [env[x["name"]] for x in v]
        if kind in ("as_int", "as_float", "as_bool", "as_ints", "as_floats", "as_bools"):
            return v
        if kind == "as_none":
            return None
        if kind == "as_string" and isinstance(v, str) and len(v) < 64:
            return v
        if kind == "as_scalar_type":
            return DTYPES[v]
        if kind == "as_layout":
            return LAYOUTS[v]
        if kind == "as_memory_format":
            return MEMORY_FORMATS[v]
        if kind == "as_device":
            return self.device
        if kind == "as_sym_int" and "as_name" in v:
            return env[v["as_name"]]
        if kind == "as_sym_ints":
            return [env[s["as_name"]] if "as_name" in s else s["as_int"] for s in v]
        raise Refused(f"argument kind {kind!r} is not accepted")

    @staticmethod
    def _bind(out: dict[str, Any], value: Any, env: dict[str, Any]) -> None:
        if out.get("as_tensor") is not None:
            env[out["as_tensor"]["name"]] = value
        elif out.get("as_tensors") is not None:
            for o, v in zip(out["as_tensors"], value, strict=True):
                env[o["name"]] = v
        elif out.get("as_sym_int") is not None and "as_name" in out["as_sym_int"]:
            env[out["as_sym_int"]["as_name"]] = value

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # The graph was traced on the CPU (harness.sae.export); its weights and every device
        # argument of its nodes are on self.device, so the input goes there too.
        x = x.to(self.device)
        env: dict[str, Any] = {name: (x if t is None else t) for name, t in self.inputs}
        for op, ins, outs in self.nodes:
            args, kwargs = [], {}
            for i in ins:
                value = self._arg(i["arg"], env)
                if i["kind"] == 1:
                    args.append(value)
                else:
                    kwargs[i["name"]] = value
            result = op(*args, **kwargs)
            if len(outs) == 1:
                self._bind(outs[0], result, env)
            else:
                for o, r in zip(outs, result, strict=True):
                    self._bind(o, r, env)
        out = env[self.output]
        if not isinstance(out, torch.Tensor):
            raise Refused("the output is not a tensor")
        return out
