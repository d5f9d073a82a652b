"""The 2d_diffusion trust boundary: exported denoiser graphs, the evaluator's own sampler and
metrics, provenance, the seeds' aggregate, and attacks by an edited experiment.py."""

from __future__ import annotations

import importlib.util
import json
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn as nn

from harness import provenance
from harness.diffusion import contract, evaluator
from harness.diffusion.export import ExportError, export_one
from harness.diffusion.record import finish
from harness.graph_run import GraphProgram
from tests.conftest import REPO

TEMPLATE = REPO / "templates" / "2d_diffusion"
MANIFEST = TEMPLATE / "template.toml"
SCHEDULE = {"num_timesteps": 20, "beta_schedule": "linear", "beta_start": 1e-3, "beta_end": 0.2}
"""Few steps, reaching noise (alpha_bar_T about 0.1): the evaluator's sampler runs fast."""


def _template() -> ModuleType:
    spec = importlib.util.spec_from_file_location("diffusion_template", TEMPLATE / "experiment.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return _template().MLPDenoiser(16, 32, 2, 25.0).eval()


class Zero(nn.Module):
    """Predicts no noise at all (scaled by a parameter, so the graph has a weight)."""

    def __init__(self, value: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(torch.full((2,), value))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x * self.w


class Noise(nn.Module):
    """Returns deterministic pseudo-noise unrelated to the true noise."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[917.0, 311.0], [577.0, 733.0]]))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.sin(x @ self.w + t.float().unsqueeze(-1) * 13.0)


class Atan(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.atan2(x, x + self.w)


_ARCHIVES: dict[str, bytes] = {}


def _seed(seed_dir: Path, kind: str, schedule: dict | None = None) -> None:
    """A seed folder as finish() leaves it under the loop (graphs, meta, checkpoint), with the
    same denoiser for every dataset and each kind exported once per module: exporting is the
    slow part (about a second a graph), and the evaluator is what is under test here."""
    from harness.diffusion.record import save_checkpoint

    make = KINDS[kind]
    if kind not in _ARCHIVES:
        _ARCHIVES[kind] = export_one(make(), 100, kind)
    seed_dir.mkdir(parents=True)
    for d in contract.DATASETS:
        (seed_dir / contract.graph_file(d)).write_bytes(_ARCHIVES[kind])
    meta = {"denoiser_class": type(make()).__name__, "schedule": schedule or SCHEDULE,
            "config": {"lr": 1.0}, "training": {"steps": 0}, "timings": {"train_s": 1.0}}
    (seed_dir / contract.META).write_text(json.dumps(meta))
    save_checkpoint({d: make() for d in contract.DATASETS}, {}, seed_dir / contract.CHECKPOINT)


KINDS = {"mlp0": lambda: _mlp(0), "mlp1": lambda: _mlp(1), "zero": Zero, "noise": Noise,
         "nan": lambda: Zero(float("nan"))}


def _evaluate(run: Path, seeds: str = "0") -> int:
    return evaluator.main([str(run), "--preset", "tiny", "--manifest", str(MANIFEST), "--seeds", seeds])


def _gates(info: dict) -> dict[str, bool | None]:
    return {g["name"]: g["passed"] for g in info["gates"]}


@pytest.mark.parametrize("rows", [2, 5, 1000])
def test_the_exported_graph_equals_the_eager_denoiser(rows: int) -> None:
    model = _mlp()
    graph = GraphProgram(export_one(model, 100))
    x, t = torch.randn(rows, 2) * 3, torch.randint(0, 100, (rows,))
    with torch.no_grad():
        expected = model(x, t)
    got = graph(torch.cat([x, t.float().unsqueeze(1)], dim=1))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_a_learned_time_embedding_exports() -> None:
    class Learned(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.t_emb, self.out = nn.Embedding(100, 8), nn.Linear(10, 2)

        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.out(torch.cat([x, self.t_emb(t)], dim=-1))

    model = Learned().eval()
    z = torch.tensor([[0.5, -1.0, 3.0], [2.0, 0.0, 99.0]])
    with torch.no_grad():
        expected = model(z[:, :2], z[:, 2].long())
    torch.testing.assert_close(GraphProgram(export_one(model, 100))(z), expected)


def test_a_denoiser_using_an_op_outside_the_allowlist_is_refused_at_export() -> None:
    with pytest.raises(ExportError, match="not in the allowlist"):
        export_one(Atan(), 100, "moons")


def test_a_denoiser_returning_the_wrong_shape_is_refused_at_export() -> None:
    class Three(Zero):
        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return torch.cat([x, x[:, :1]], dim=1) * self.w[0]

    with pytest.raises(ExportError, match=r"one \(N, 2\) tensor"):
        export_one(Three(), 100)


def test_the_evaluator_writes_every_metric_with_verifiable_provenance(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run_1"
    monkeypatch.setenv(provenance.MODE_ENV, "orchestrator")
    monkeypatch.setenv("EXPERIMENT_PRESET", "tiny")
    record = finish(run / "seed_0", {d: _mlp(i) for i, d in enumerate(contract.DATASETS)},
                    SCHEDULE, training={"steps": 0})
    assert record["pending"] and not record["metrics"]  # under the loop: exported, not evaluated
    _seed(run / "seed_1", "mlp1")
    assert _evaluate(run, "0,1") == 0
    declared = {m["name"] for m in tomllib.loads(MANIFEST.read_text())["metrics"]}
    for folder in (run / "seed_0", run / "seed_1"):
        info = json.loads((folder / "final_info.json").read_text())
        assert declared <= set(info["metrics"]), declared - set(info["metrics"])
        prov = info["provenance"]
        assert prov["evaluator"] == contract.EVALUATOR
        assert prov["harness_sha256"] == provenance.harness_sha256()
        for key, name in contract.EXPORTS.items():
            assert prov[key] == provenance.sha256_file(folder / name), key
        assert info["checkpoint"]["matches_evaluated"] is True
        assert info["config"]["num_timesteps"] == 20 and info["config"]["preset"] == "tiny"
        assert info["setup"]["sampler"].startswith("DDPM ancestral")
        assert info["setup"]["n_generated"] == 1000 and "kl_<dataset>" in info["evaluation"]["definitions"]
    aggregate = json.loads((run / "final_info.json").read_text())
    assert aggregate["seeds"]["n"] == 2 and aggregate["seeds"]["independent"] is True
    assert aggregate["seeds"]["ci95"]["kl_mean"] is not None
    for seed in (0, 1):
        assert aggregate["provenance"]["aggregate_of"][f"seed_{seed}"]["final_info_sha256"] == \
            provenance.sha256_file(run / f"seed_{seed}" / "final_info.json")


def test_a_final_info_the_experiment_wrote_is_ignored(tmp_path: Path) -> None:
    run = tmp_path / "run_1"
    _seed(run / "seed_0", "zero")
    fake = {"metrics": {"kl_mean": 0.0001, "eval_loss_mean": 0.01, "loss_ratio_max": 0.01}}
    (run / "seed_0" / "final_info.json").write_text(json.dumps(fake))
    assert _evaluate(run) == 0
    info = json.loads((run / "seed_0" / "final_info.json").read_text())
    assert info["metrics"]["kl_mean"] != 0.0001 and info["metrics"]["loss_ratio_max"] > 0.9
    ignored = info["ignored_from_experiment"]["files"]["final_info.json"]
    assert ignored["metric_names"] == sorted(fake["metrics"])


def test_a_zero_or_noise_predictor_fails_the_loss_gate(tmp_path: Path) -> None:
    for name in ("zero", "noise"):
        run = tmp_path / name
        _seed(run / "seed_0", name)
        assert _evaluate(run) == 0
        info = json.loads((run / "seed_0" / "final_info.json").read_text())
        m = info["metrics"]
        assert m["eval_loss_zero"] == pytest.approx(1.0, abs=0.1)
        if name == "zero":
            assert m["loss_ratio_max"] == pytest.approx(1.0, abs=1e-6)
        else:
            assert m["loss_ratio_max"] > 1.2
        assert _gates(info)["denoising_beats_zero_predictor"] is False
        assert _gates(info)["samples_finite"] is True


def test_a_denoiser_outputting_nan_fails_the_finite_gate(tmp_path: Path) -> None:
    run = tmp_path / "run_1"
    _seed(run / "seed_0", "nan")
    assert _evaluate(run) == 0
    info = json.loads((run / "seed_0" / "final_info.json").read_text())
    assert info["metrics"]["nonfinite_frac"] == 1.0 and info["metrics"]["outside_frac"] == 1.0
    assert info["metrics"]["kl_mean"] is None
    gates = _gates(info)
    assert gates["samples_finite"] is False and gates["samples_in_range"] is False
    assert "NaN or infinite" in next(g["message"] for g in info["gates"] if g["name"] == "samples_finite")


@pytest.mark.parametrize(("schedule", "said"), [
    ({"num_timesteps": 20, "beta_schedule": "linear", "beta_start": 0.5, "beta_end": 1.5},
     "strictly between 0 and 1"),
    ({"num_timesteps": 0, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02},
     "integer from 1 to 1000"),
    ({"num_timesteps": 10**7, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02},
     "integer from 1 to 1000"),
])
def test_a_meta_declaring_a_nonsense_schedule_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        schedule: dict, said: str) -> None:
    run = tmp_path / "run_1"
    _seed(run / "seed_0", "zero")
    meta_path = run / "seed_0" / contract.META
    meta = json.loads(meta_path.read_text())
    meta["schedule"] = schedule  # written after finish(), which refuses it itself
    meta_path.write_text(json.dumps(meta))
    assert _evaluate(run) == 2
    err = capsys.readouterr().err
    assert "no seed of this run can be evaluated" in err and said in err
    assert not (run / "seed_0" / "final_info.json").exists()


def test_finish_refuses_a_nonsense_schedule_before_exporting(tmp_path: Path) -> None:
    from harness.diffusion.schedule import ScheduleError

    with pytest.raises(ScheduleError, match="strictly between 0 and 1"):
        finish(tmp_path, {d: Zero() for d in contract.DATASETS},
               {"num_timesteps": 10, "beta_schedule": "linear", "beta_start": 0.0, "beta_end": 0.1})
    assert not list(tmp_path.iterdir())


def test_a_graph_written_around_finish_with_a_foreign_op_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.diffusion.export import Packed

    run = tmp_path / "run_1"
    _seed(run / "seed_0", "zero")
    program = torch.export.export(Packed(Atan()), (torch.randn(4, 3),))
    torch.export.save(program, run / "seed_0" / contract.graph_file("moons"))
    assert _evaluate(run) == 2
    assert "not in the allowlist" in capsys.readouterr().err


def test_a_checkpoint_holding_other_weights_is_named(tmp_path: Path) -> None:
    from harness.diffusion.record import save_checkpoint

    run = tmp_path / "run_1"
    _seed(run / "seed_0", "mlp0")
    save_checkpoint({d: _mlp(seed=7) for d in contract.DATASETS}, {},
                    run / "seed_0" / contract.CHECKPOINT)
    assert _evaluate(run) == 0
    checkpoint = json.loads((run / "seed_0" / "final_info.json").read_text())["checkpoint"]
    assert checkpoint["matches_evaluated"] is False and "network.0.weight" in checkpoint["problem"]


def test_seeds_that_ignore_their_seed_give_no_interval(tmp_path: Path) -> None:
    run = tmp_path / "run_1"
    for seed in (0, 1):
        _seed(run / f"seed_{seed}", "mlp0")  # the same weights twice
    assert _evaluate(run, "0,1") == 0
    section = json.loads((run / "final_info.json").read_text())["seeds"]
    assert section["independent"] is False and section["ci95"]["kl_mean"] is None
