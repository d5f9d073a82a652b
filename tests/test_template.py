"""The template manifest: what a good one gives the loop, and a clear refusal (naming the file
and the field) for every way one can be wrong."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from agent import presets
from agent import template as template_mod
from agent.errors import UsageError

TEMPLATES = Path(__file__).parent / "fixtures" / "templates"
TOY = TEMPLATES / "toy_template"


# --- helpers (also used by test_ideas and test_cli) ------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML here")


def dump_toml(data: dict[str, Any]) -> str:
    """Enough TOML for a manifest: scalars, lists, tables of scalars or of tables, arrays of tables."""
    head, tables, arrays = [], [], []
    for key, value in data.items():
        if isinstance(value, dict):
            scalars = {k: v for k, v in value.items() if not isinstance(v, dict)}
            tables.append(f"\n[{key}]")
            tables += [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
            for sub, inner in value.items():
                if isinstance(inner, dict):
                    tables.append(f"\n[{key}.{sub}]")
                    tables += [f"{k} = {_toml_value(v)}" for k, v in inner.items()]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                arrays.append(f"\n[[{key}]]")
                arrays += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
        else:
            head.append(f"{key} = {_toml_value(value)}")
    return "\n".join(head + tables + arrays) + "\n"


def toy_manifest() -> dict[str, Any]:
    return tomllib.loads((TOY / "template.toml").read_text(encoding="utf-8"))


def copy_toy(tmp_path: Path, manifest: dict[str, Any] | None = None) -> Path:
    """A templates dir holding a copy of the toy template (optionally with another manifest)."""
    root = tmp_path / "templates" / "toy_template"
    shutil.copytree(TOY, root)
    if manifest is not None:
        (root / "template.toml").write_text(dump_toml(manifest), encoding="utf-8")
    return root


def _refusal(tmp_path: Path, manifest: dict[str, Any]) -> str:
    root = copy_toy(tmp_path, manifest)
    with pytest.raises(UsageError) as info:
        template_mod.load(root)
    message = str(info.value)
    assert str(root / "template.toml") in message, "the message names the manifest"
    return message


# --- a good manifest -------------------------------------------------------------------------

def test_dumped_manifest_round_trips() -> None:
    assert tomllib.loads(dump_toml(toy_manifest())) == toy_manifest()


def test_toy_template_loads_with_metrics_gates_and_provides() -> None:
    t = template_mod.load(TOY)
    assert t.name == "toy_template"
    assert t.editable == ("experiment.py", "plot.py", "notes.txt", "latex/template.tex")
    assert t.command_for("run_3") == ["python", "experiment.py", "--out_dir=run_3"]
    assert t.timeout_s == 60.0
    assert [(m.name, m.direction, m.headline) for m in t.metrics] == [
        ("final_loss", "lower", True), ("steps_to_tol", "lower", True)]
    assert [g.name for g in t.gates] == ["converged"]
    assert t.provides == {"models": ("quadratic",), "evaluations": ("final_loss",)}
    assert t.figures == ("loss.png",)


def test_integer_metric_format_loads_and_prints_floats_read_from_json() -> None:
    steps = template_mod.load(TOY).metric("steps_to_tol")
    assert steps is not None and steps.format == "d"
    assert steps.fmt(23) == "23"
    assert steps.fmt(23.0) == "23", "JSON may give a count back as a float"
    assert steps.fmt(None) == "n/a"


def test_timeout_precedence_override_then_preset_then_template(tmp_path: Path) -> None:
    m = toy_manifest()
    m["presets"] = {"tiny": {"description": "seconds", "timeout_s": 5}, "gpu": {"description": "big"}}
    t = template_mod.load(copy_toy(tmp_path, m))
    assert t.timeout_for("tiny") == 5.0
    assert t.timeout_for("gpu") == 60.0
    assert t.timeout_for(None) == 60.0
    assert t.timeout_for("tiny", override=2.5) == 2.5


def test_default_editable_list_when_the_manifest_has_none(tmp_path: Path) -> None:
    m = toy_manifest()
    del m["editable"]
    t = template_mod.load(copy_toy(tmp_path, m))
    assert t.editable == template_mod.DEFAULT_EDITABLE


# --- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["name", "description", "run_command", "timeout_s", "metrics"])
def test_missing_required_field_is_refused_naming_the_field(tmp_path: Path, field: str) -> None:
    m = toy_manifest()
    del m[field]
    assert f"'{field}'" in _refusal(tmp_path, m)


def test_bad_metric_direction_is_refused(tmp_path: Path) -> None:
    m = toy_manifest()
    m["metrics"][1]["direction"] = "up"
    message = _refusal(tmp_path, m)
    assert "metrics[1]" in message and "direction" in message and "'higher' or 'lower'" in message


def test_metric_without_a_name_is_refused(tmp_path: Path) -> None:
    m = toy_manifest()
    del m["metrics"][0]["name"]
    assert "metrics[0] field 'name'" in _refusal(tmp_path, m)


def test_manifest_without_a_headline_metric_is_refused(tmp_path: Path) -> None:
    m = toy_manifest()
    for metric in m["metrics"]:
        metric["headline"] = False
    assert "headline" in _refusal(tmp_path, m)


@pytest.mark.parametrize("rel", ["/etc/passwd", "../escape.py", "latex/../../escape.py", ".git/config",
                                 "./.git/hooks/pre-commit", "sub/.git/config", "~/.bashrc", "."])
def test_unsafe_editable_path_is_refused(tmp_path: Path, rel: str) -> None:
    m = toy_manifest()
    m["editable"] = ["experiment.py", rel]
    message = _refusal(tmp_path, m)
    assert "editable" in message and "unsafe" in message


@pytest.mark.parametrize("check", [
    "__import__('os').system('touch pwned')",
    "open('final_info.json').read() != ''",
    "final_loss.real < 25",
    "[x for x in (1, 2)]",
    "final_loss <",  # not even an expression
    "lambda: 1",
])
def test_bad_gate_expression_is_refused(tmp_path: Path, check: str) -> None:
    m = toy_manifest()
    m["gates"][0]["check"] = check
    message = _refusal(tmp_path, m)
    assert "gates" in message
    assert not (tmp_path / "templates" / "toy_template" / "pwned").exists()


def test_gate_without_a_message_is_refused(tmp_path: Path) -> None:
    m = toy_manifest()
    del m["gates"][0]["message"]
    assert "message" in _refusal(tmp_path, m)


def test_run_command_without_out_dir_is_refused(tmp_path: Path) -> None:
    m = toy_manifest()
    m["run_command"] = ["python", "experiment.py"]
    assert "{out_dir}" in _refusal(tmp_path, m)


@pytest.mark.parametrize("timeout", [0, -5, True])
def test_non_positive_timeout_is_refused(tmp_path: Path, timeout: object) -> None:
    m = toy_manifest()
    m["timeout_s"] = timeout
    assert "timeout_s" in _refusal(tmp_path, m)


@pytest.mark.parametrize(("key", "value"), [
    ("provides", ["quadratic"]),
    ("presets", ["tiny", "gpu"]),
    ("gates", ["final_loss < 25"]),
])
def test_wrongly_shaped_section_is_refused_not_a_crash(tmp_path: Path, key: str, value: object) -> None:
    m = toy_manifest()
    m[key] = value
    assert f"'{key}'" in _refusal(tmp_path, m)


def test_preset_with_a_text_timeout_is_refused(tmp_path: Path) -> None:
    m = toy_manifest()
    m["presets"] = {"tiny": {"description": "small", "timeout_s": "ten"}}
    assert "presets.tiny.timeout_s" in _refusal(tmp_path, m)


def test_unsafe_figure_path_is_refused(tmp_path: Path) -> None:
    m = toy_manifest()
    m["figures"] = ["../../loss.png"]
    assert "figures" in _refusal(tmp_path, m)


def test_name_that_differs_from_the_folder_is_refused(tmp_path: Path) -> None:
    m = toy_manifest()
    m["name"] = "other_template"
    assert "'name'" in _refusal(tmp_path, m)


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    root = copy_toy(tmp_path)
    (root / "template.toml").write_text('name = "toy_template"\nmetrics = [\n', encoding="utf-8")
    with pytest.raises(UsageError, match="not valid TOML"):
        template_mod.load(root)


def test_template_without_experiment_py_is_refused(tmp_path: Path) -> None:
    root = copy_toy(tmp_path)
    (root / "experiment.py").unlink()
    with pytest.raises(UsageError, match="experiment.py"):
        template_mod.load(root)


def test_missing_manifest_is_refused(tmp_path: Path) -> None:
    root = copy_toy(tmp_path)
    (root / "template.toml").unlink()
    with pytest.raises(UsageError, match="manifest not found"):
        template_mod.load(root)
    assert template_mod.discover(tmp_path / "templates") == []


# --- presets ---------------------------------------------------------------------------------

def _with_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, available: dict[str, str | None],
                  default: str | None = None) -> template_mod.Template:
    """The toy template with presets tiny/cpu/gpu and a provider module reporting `available`."""
    module = f"toy_presets_{abs(hash((tmp_path, default))) % 10**8}"
    lines = [f"def available():\n    return {available!r}\n"]
    if default is not None:
        lines.append(f"def default_name():\n    return {default!r}\n")
    (tmp_path / f"{module}.py").write_text("\n".join(lines), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    m = toy_manifest()
    m["presets_provider"] = module
    m["presets"] = {n: {"description": n} for n in ("tiny", "cpu", "gpu")}
    return template_mod.load(copy_toy(tmp_path, m))


def test_requested_preset_that_cannot_run_here_is_refused_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = _with_presets(tmp_path, monkeypatch, {"tiny": None, "cpu": None, "gpu": "no CUDA device"})
    assert presets.choose(t, "cpu") == "cpu"
    with pytest.raises(UsageError) as info:
        presets.choose(t, "gpu")
    assert "no CUDA device" in str(info.value) and "Usable here: tiny, cpu" in str(info.value)
    with pytest.raises(UsageError, match="choose from tiny, cpu, gpu"):
        presets.choose(t, "huge")


def test_default_preset_is_the_providers_choice_when_it_can_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = _with_presets(tmp_path, monkeypatch, {"tiny": None, "cpu": None, "gpu": None}, default="cpu")
    assert presets.choose(t, None) == "cpu"


def test_default_preset_that_cannot_run_falls_back_to_a_usable_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = _with_presets(tmp_path, monkeypatch, {"tiny": None, "cpu": "model not downloaded", "gpu": "no CUDA"},
                      default="gpu")
    assert presets.choose(t, None) == "tiny"


def test_no_usable_preset_is_refused_listing_every_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = _with_presets(tmp_path, monkeypatch, {"tiny": "corpus missing", "cpu": "no model", "gpu": "no CUDA"})
    with pytest.raises(UsageError) as info:
        presets.choose(t, None)
    assert "tiny: corpus missing" in str(info.value) and "cpu: no model" in str(info.value)


def test_preset_flag_on_a_template_without_presets_is_refused() -> None:
    t = template_mod.load(TOY)
    assert presets.choose(t, None) is None
    with pytest.raises(UsageError, match="has no presets"):
        presets.choose(t, "tiny")
