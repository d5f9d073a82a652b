"""The evaluator trust boundary: exported graphs, the safe graph interpreter, the evaluator
process, and attacks by an edited experiment.py through the real loop on the tiny preset."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch

from harness import provenance, sparse
from harness.export import export_sae
from harness.graph_run import GraphProgram, Refused
from tests.conftest import REPO
from tests.e2e_helpers import block, cli, only_run_dir, write_session

TEMPLATE = REPO / "templates" / "sae_variants"


def _template() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sae_template_for_export", TEMPLATE / "experiment.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sae(act: str, d_in: int, d_sae: int) -> torch.nn.Module:
    torch.manual_seed(0)
    sae = _template().CustomSAE(d_in, d_sae, act, 16)
    with torch.no_grad():  # sparse relu codes: a negative encoder bias
        sae.b_enc.fill_(-2.2 if act == "relu" else 0.0)
        sae.b_dec.normal_(0, 0.1)
    return sae.eval()


@pytest.mark.parametrize("act", ["relu", "topk"])
@pytest.mark.parametrize(("d_in", "path"), [(128, "dense"), (256, "sparse")])
def test_exported_graphs_run_safely_equal_the_eager_sae(tmp_path: Path, act: str, d_in: int,
                                                        path: str) -> None:
    sae = _sae(act, d_in, 8 * d_in)
    meta = export_sae(sae, d_in, tmp_path)
    assert meta["d_sae"] == 8 * d_in and meta["sae_class"] == "CustomSAE"
    enc = GraphProgram((tmp_path / provenance.ENCODE).read_bytes())
    dec = GraphProgram((tmp_path / provenance.DECODE).read_bytes())
    x = torch.randn(777, d_in)  # another batch size than the trace's
    before = dict(sparse.calls)
    with torch.no_grad():
        x_hat, f = sae(x, output_features=True)
    assert sparse.calls[path] > before[path]  # the eager SAE took the path under test
    f_graph = enc(x)
    torch.testing.assert_close(f_graph, f, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dec(f_graph), x_hat, atol=1e-5, rtol=1e-5)


def test_a_persistent_buffer_is_read_as_a_weight(tmp_path: Path) -> None:
    base = type(_sae("relu", 16, 64))

    class Scaled(base):  # type: ignore[misc, valid-type]
        def decode(self, f: torch.Tensor) -> torch.Tensor:
            return super().decode(f) * self.scale

    sae = Scaled(16, 64, "relu", 16)
    sae.register_buffer("scale", torch.full((16,), 2.0))  # a read-only tensor, like group ids
    export_sae(sae, 16, tmp_path)
    f = torch.relu(torch.randn(5, 64))
    out = GraphProgram((tmp_path / provenance.DECODE).read_bytes())(f)
    torch.testing.assert_close(out, sae.decode(f).detach())


def test_an_sae_with_a_python_branch_on_a_tensor_value_is_refused_at_export(tmp_path: Path) -> None:
    sae = _sae("relu", 16, 64)

    def encode(x: torch.Tensor) -> torch.Tensor:
        f = torch.relu(x @ sae.W_enc + sae.b_enc)
        return f * 2 if f.sum().item() > 0 else f

    sae.encode = encode  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="exportable with torch.export"):
        export_sae(sae, 16, tmp_path)


# --- tampered archives: each payload only creates a marker file --------------------------------

class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def _pickled(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _model_edit(fn: Callable[[dict, Path], None]) -> Callable[[dict[str, bytes], str, Path], None]:
    def edit(files: dict[str, bytes], root: str, marker: Path) -> None:
        model = json.loads(files[root + "models/model.json"])
        fn(model, marker)
        files[root + "models/model.json"] = json.dumps(model).encode()
    return edit


def _guards(model: dict, marker: Path) -> None:
    model["guards_code"] = [f"__import__('os').system('touch {marker}') == 0"]


def _target(model: dict, marker: Path) -> None:
    model["graph_module"]["graph"]["nodes"].insert(0, {
        "target": "torch.os.system", "outputs": [], "metadata": {}, "name": "evil",
        "is_hop_single_tensor_return": None,
        "inputs": [{"name": "command", "arg": {"as_string": f"touch {marker}"}, "kind": 1}]})


def _sympy(model: dict, marker: Path) -> None:
    for value in model["graph_module"]["graph"]["tensor_values"].values():
        for size in value["sizes"]:
            if "as_expr" in size and size["as_expr"]:
                size["as_expr"]["expr_str"] = f"__import__('os').system('touch {marker}') + s0"
                return
    raise AssertionError("no symbolic size to tamper with")


def _opaque(files: dict[str, bytes], root: str, marker: Path) -> None:
    files[root + "data/constants/model_constants_config.json"] = json.dumps({"config": {"evil": {
        "path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}}}).encode()
    files[root + "data/constants/opaque_obj_0"] = pickle.dumps(_Payload(marker))


def _weight_pickle(files: dict[str, bytes], root: str, marker: Path) -> None:
    cfg = json.loads(files[root + "data/weights/model_weights_config.json"])
    name = next(iter(cfg["config"]))
    cfg["config"][name]["use_pickle"] = True
    files[root + "data/weights/model_weights_config.json"] = json.dumps(cfg).encode()
    files[root + "data/weights/" + cfg["config"][name]["path_name"]] = _pickled(_Payload(marker))


def _parameter_name(files: dict[str, bytes], root: str, marker: Path) -> None:
    evil = f'sae.W", getattr(__import__("os"), "system")("touch {marker}"), "'
    model = json.loads(files[root + "models/model.json"])
    cfg = json.loads(files[root + "data/weights/model_weights_config.json"])
    for spec in model["graph_module"]["signature"]["input_specs"]:
        if "parameter" in spec and spec["parameter"]["parameter_name"] == "sae.W_dec":
            spec["parameter"]["parameter_name"] = evil
    cfg["config"][evil] = cfg["config"].pop("sae.W_dec")
    files[root + "models/model.json"] = json.dumps(model).encode()
    files[root + "data/weights/model_weights_config.json"] = json.dumps(cfg).encode()


ATTACKS = {"guards_code": _model_edit(_guards), "opaque_object": _opaque,
           "non_aten_target": _model_edit(_target), "pickle_weights": _weight_pickle,
           "parameter_name": _parameter_name, "sympy_expr_str": _model_edit(_sympy)}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_tampered_archives_are_refused_without_running_anything(tmp_path: Path, attack: str) -> None:
    export_sae(_sae("relu", 16, 64), 16, tmp_path)
    source = (tmp_path / provenance.DECODE).read_bytes()
    with zipfile.ZipFile(io.BytesIO(source)) as z:
        files = {i.filename: z.read(i.filename) for i in z.infolist()}
    root = next(iter(files)).split("/", 1)[0] + "/"
    marker = tmp_path / f"pwn_{attack}"
    ATTACKS[attack](files, root, marker)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    with pytest.raises(Refused):
        GraphProgram(buf.getvalue())(torch.zeros(2, 64))
    assert not marker.exists()


# --- the evaluator on the tiny preset -----------------------------------------------------------

@pytest.mark.slow
def test_the_evaluators_metrics_equal_the_in_process_evaluation(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.activations import ActivationSource
    from harness.evaluate import evaluate
    from harness.evaluator import evaluate_run

    monkeypatch.chdir(tmp_path)
    source = ActivationSource("tiny")
    sae = _sae("relu", source.d_in, 8 * source.d_in)
    with torch.no_grad():  # a trained-looking SAE: decoder rows spread, bias at the data mean
        sae.b_dec.copy_(source.eval_activations()[:4096].mean(0))
    reference = evaluate(sae, source).metrics
    export_sae(sae, source.d_in, tmp_path / "run_1", meta={"config": {"lr": 1.0}})
    record = evaluate_run(tmp_path / "run_1", "tiny")
    assert set(record["metrics"]) == set(reference)
    for name, value in reference.items():
        assert record["metrics"][name] == pytest.approx(value, rel=1e-5, abs=1e-5), name
    assert record["config"]["lr"] == 1.0 and record["reported"]["source"] == provenance.META


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.slow
def test_experiment_typed_by_hand_ends_with_a_verifiable_final_info(tmp_path: Path) -> None:
    run_dir = tmp_path / "run_dir"
    shutil.copytree(TEMPLATE, run_dir, ignore=shutil.ignore_patterns("latex", "ideas", "__pycache__"))
    (run_dir / "preset.json").write_text(json.dumps({"preset": "tiny"}))
    _git(run_dir, "init", "-q", "-b", "main")
    env = {k: v for k, v in os.environ.items() if k not in ("EXPERIMENT_PRESET", provenance.MODE_ENV)}
    done = subprocess.run([sys.executable, "experiment.py", "--out_dir=run_1"], cwd=run_dir, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "explained_variance=" in done.stdout
    out = run_dir / "run_1"
    info = json.loads((out / "final_info.json").read_text())
    prov = info["provenance"]
    assert prov["evaluator"] == "harness.evaluator"
    assert prov["encode_sha256"] == provenance.sha256_file(out / provenance.ENCODE)
    assert prov["decode_sha256"] == provenance.sha256_file(out / provenance.DECODE)
    assert prov["meta_sha256"] == provenance.sha256_file(out / provenance.META)
    assert prov["harness_sha256"] == provenance.harness_sha256()
    assert info["config"]["d_sae"] == 8 * info["config"]["d_in"] and info["preset"] == "tiny"
    assert [g for g in info["gates"] if g["passed"] is not True] == []


# --- attacks through the real loop ---------------------------------------------------------------

FINISH = "    record = harness.finish(\n"
FABRICATE_AND_PATCH = """    import atexit
    import json as _json
    import pathlib

    import harness.metrics as _hm

    _real_result = _hm.ReconstructionStats.result
    _hm.ReconstructionStats.result = lambda self: {**_real_result(self), "explained_variance": 0.998}

    def _fabricate():
        p = pathlib.Path(out_dir) / "final_info.json"
        d = _json.loads(p.read_text()) if p.exists() else {"metrics": {}, "config": {}}
        d["metrics"]["explained_variance"] = 0.999
        p.write_text(_json.dumps(d))

    atexit.register(_fabricate)
    try:
        with open(harness.__path__[0] + "/metrics.py", "a") as fh:
            fh.write("# tampered by experiment.py\\n")
        print("HARNESS WRITABLE")
    except OSError as exc:
        print("harness is read-only:", exc)
""" + FINISH
NO_FINISH = """    import json as _json
    import pathlib

    pathlib.Path(out_dir).mkdir(exist_ok=True)
    fake = {"l0": 10.0, "explained_variance": 0.999, "ce_loss_score": 0.999, "kl_div_score": 0.999,
            "dead_frac": 0.0}
    pathlib.Path(out_dir, "final_info.json").write_text(
        _json.dumps({"metrics": fake, "config": {"d_in": 128, "d_sae": 1024}, "gates": []}))
    raise SystemExit(0)
""" + FINISH


def _sandboxed() -> bool:
    from agent.sandbox import check

    return check().available


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("attack_runs")  # shared: the baseline is computed once


def _launch(runs: Path, tmp: Path, reply: str, exit_code: int = 0) -> Path:
    session = write_session(tmp / "session.jsonl", [f"Run 1: attack\n\n{block('experiment.py', FINISH, reply)}"],
                            ["experiment.plan"])
    target = runs / tmp.name
    target.mkdir()
    proc = cli("--idea", "orthogonal_sae", "--preset", "tiny", "--runs-dir", str(target), "--quiet",
               "--model", f"replay:{session}", "--max-runs", "1", "--max-attempts", "1",
               "--stages", "experiment", timeout=900)
    assert proc.returncode == exit_code, proc.stdout[-3000:] + proc.stderr[-3000:]
    return only_run_dir(target)


@pytest.mark.slow
def test_fabricated_and_monkeypatched_metrics_never_reach_the_record(runs_dir: Path, tmp_path: Path) -> None:
    harness_before = provenance.harness_sha256()
    run = _launch(runs_dir, tmp_path, FABRICATE_AND_PATCH)
    assert provenance.harness_sha256() == harness_before  # the experiment could not edit it
    info = json.loads((run / "run_1" / "final_info.json").read_text())
    ev = info["metrics"]["explained_variance"]
    assert ev not in (0.999, 0.998) and 0 < ev < 0.99
    assert info["provenance"]["harness_sha256"] == harness_before
    assert "experiment_final_info.json" in info["ignored_from_experiment"]["files"]
    assert json.loads((run / "run_1" / "experiment_final_info.json").read_text())["metrics"] \
        == {"explained_variance": 0.999}
    notes = (run / "notes.txt").read_text()
    assert not [line for line in notes.splitlines() if "0.999" in line or "0.998" in line]
    stdout = (run / "run_1" / "stdout.txt").read_text()
    if _sandboxed():
        assert "harness is read-only" in stdout and "HARNESS WRITABLE" not in stdout


@pytest.mark.slow
def test_metrics_written_without_finish_are_not_recorded(runs_dir: Path, tmp_path: Path) -> None:
    run = _launch(runs_dir, tmp_path, NO_FINISH, exit_code=6)  # no result beyond the baseline
    assert not (run / "run_1" / "final_info.json").exists()
    assert (run / "logs" / "run_1_attempt1" / "experiment_final_info.json").is_file()
    events = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["kind"] == "run.finished" and e["data"]["run"] == 1]
    assert finished and all(e["data"]["status"] != "ok" for e in finished)
    assert "exported no SAE graphs" in finished[-1]["data"]["describe"]
    assert finished[-1]["data"]["ignored_final_info"] == "experiment_final_info.json"
    assert "0.999" not in (run / "notes.txt").read_text()


def test_decoder_geometry_uses_the_decode_graphs_own_w_dec_for_a_non_affine_decoder(tmp_path: Path) -> None:
    """Group-specific biases in proportion to the code's mass per group (the orthogonal idea)
    make decode(e_i) - decode(0) differ from W_dec; the evaluator measures the W_dec weight
    its decode graph multiplies by, as the in-process harness did."""
    from harness.evaluator import graph_sae
    from harness.measurements import decoder_directions

    base = type(_sae("relu", 16, 64))

    class GroupBiased(base):  # type: ignore[misc, valid-type]
        def decode(self, f: torch.Tensor) -> torch.Tensor:
            share = f[:, :32].sum(1, keepdim=True) / f.sum(1, keepdim=True).clamp_min(1e-6)
            return super().decode(f) + share * self.group_bias

    torch.manual_seed(1)
    sae = GroupBiased(16, 64, "relu", 16)
    sae.group_bias = torch.nn.Parameter(torch.randn(16))
    meta = export_sae(sae.eval(), 16, tmp_path)
    graph = graph_sae((tmp_path / provenance.ENCODE).read_bytes(),
                      (tmp_path / provenance.DECODE).read_bytes(), meta, "cpu")
    measured = decoder_directions(graph, 64, 16)
    torch.testing.assert_close(measured, sae.W_dec.detach())
    probe = graph.decode(torch.eye(64)) - graph.decode(torch.zeros(1, 64))
    assert (probe - sae.W_dec.detach()).abs().max() > 0.1, "the probe would have measured another thing"
