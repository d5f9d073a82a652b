"""One device per process: the pool, and what each experiment, evaluation and plot child is
given, checked through the real CLI with declared (fake) GPUs on this CPU-only machine."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest

from agent import devices
from agent.errors import UsageError
from agent.journal import read
from tests.e2e_helpers import TOY_TEMPLATES, cli, only_run_dir, write_session

RECORD_ENV = (
    "    import json as _json, time as _time\n"
    "    _start = _time.time()\n"
    "    _time.sleep(0.8)\n"
    "    Path(parser.parse_args().out_dir).mkdir(parents=True, exist_ok=True)\n"
    "    (Path(parser.parse_args().out_dir) / 'env.json').write_text(_json.dumps({\n"
    "        'cuda': os.environ.get('CUDA_VISIBLE_DEVICES'), 'omp': os.environ.get('OMP_NUM_THREADS'),\n"
    "        'start': _start, 'end': _time.time()}))\n"
)


def _recording_templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    shutil.copytree(TOY_TEMPLATES, root)
    script = root / "toy_template" / "experiment.py"
    anchor = "    out_dir = Path(parser.parse_args().out_dir)\n"
    text = script.read_text()
    assert anchor in text
    script.write_text(text.replace(anchor, RECORD_ENV + anchor, 1))
    # The plan stops at once: the baseline's seeds are what these tests look at.
    write_session(root / "toy_template" / "ideas" / "toy_idea.session.jsonl", ["ALL_COMPLETED\n"],
                  ["experiment.plan"])
    return root


def _seed_envs(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run_dir / "run_0").glob("seed_*/env.json"))]


@pytest.mark.slow
def test_each_seed_gets_one_declared_gpu_and_waits_while_both_are_busy(tmp_path):
    templates = _recording_templates(tmp_path)
    proc = cli("--idea", "toy_idea", "--templates-dir", str(templates), "--stages", "experiment",
               "--seeds", "3", "--devices", "0,1", "--runs-dir", str(tmp_path / "runs"), "--quiet",
               env={devices.LOCK_DIR_ENV: str(tmp_path / "locks")})
    assert proc.returncode == 6, proc.stderr  # the plan answers ALL_COMPLETED: the baseline is all
    run_dir = only_run_dir(tmp_path / "runs")
    envs = _seed_envs(run_dir)
    assert len(envs) == 3 and {e["cuda"] for e in envs} <= {"0", "1"}
    for gpu in ("0", "1"):  # a device is never shared by two processes at once
        spans = sorted((e["start"], e["end"]) for e in envs if e["cuda"] == gpu)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    events = read(run_dir / "journal.jsonl").events
    held = [e.data for e in events if e.kind == "device.held"]
    assert {h["device"] for h in held} == {"cuda:0", "cuda:1"}
    assert any(e.kind == "device.waiting" for e in events), "the third seed waited for a GPU"
    started = next(e for e in events if e.kind == "launch.started")
    assert started.data["devices"] == ["0", "1"] and started.data["config"]["devices"] == "0,1"


@pytest.mark.slow
def test_without_gpus_children_see_none_and_split_the_cores(tmp_path):
    templates = _recording_templates(tmp_path)
    proc = cli("--idea", "toy_idea", "--templates-dir", str(templates), "--stages", "experiment",
               "--seeds", "2", "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert proc.returncode == 6, proc.stderr  # the plan answers ALL_COMPLETED: the baseline is all
    envs = _seed_envs(only_run_dir(tmp_path / "runs"))
    assert [e["cuda"] for e in envs] == ["", ""]
    assert {e["omp"] for e in envs} == {str(max(1, (os.cpu_count() or 1) // 2))}


@pytest.mark.slow
def test_a_command_running_several_ideas_gives_each_its_share_of_the_cores(tmp_path):
    templates = _recording_templates(tmp_path)
    proc = cli("--idea", "toy_idea", "--templates-dir", str(templates), "--stages", "experiment",
               "--seeds", "1", "--runs-dir", str(tmp_path / "runs"), "--quiet",
               env={devices.CPU_SHARE_ENV: "1"})
    assert proc.returncode == 6, proc.stderr  # the plan answers ALL_COMPLETED: the baseline is all
    assert [e["omp"] for e in _seed_envs(only_run_dir(tmp_path / "runs"))] == ["1"]


def test_the_pool_hands_out_each_gpu_once_and_makes_the_next_wait(tmp_path):
    pool = devices.DevicePool(("0", "1"), lock_dir=tmp_path)
    got: list[str] = []
    waited: list[str] = []
    release = threading.Event()

    def take() -> None:
        with pool.hold(on_wait=waited.append) as held:
            got.append(held.env["CUDA_VISIBLE_DEVICES"])
            release.wait(10)

    first = [threading.Thread(target=take) for _ in range(2)]
    for t in first:
        t.start()
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    third = threading.Thread(target=take)
    third.start()
    time.sleep(0.3)
    assert sorted(got) == ["0", "1"] and len(waited) == 1 and "busy" in waited[0]
    release.set()
    for t in [*first, third]:
        t.join(10)
    assert len(got) == 3 and got[2] in ("0", "1")


def test_devices_come_from_torch_never_from_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    assert devices.discover() == ()  # this machine's torch is a CPU build


@pytest.mark.parametrize("text", ["", "a,b", "0,0", "1;2"])
def test_a_malformed_devices_list_is_refused_clearly(text):
    with pytest.raises(UsageError, match="--devices takes distinct GPU indices"):
        devices.parse(text)
    assert devices.parse("0, 2,3") == ("0", "2", "3")
