"""Idea records: found by name across templates, validated field by field, and refused when
they assume what their template does not provide."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent import ideas
from agent import template as template_mod
from agent.errors import UsageError
from tests.test_template import TEMPLATES, copy_toy

TOY_IDEA = TEMPLATES / "toy_template" / "ideas" / "toy_idea.json"


def _idea_fields() -> dict[str, Any]:
    return json.loads(TOY_IDEA.read_text(encoding="utf-8"))


def _write_idea(tmp_path: Path, name: str, fields: dict[str, Any] | str) -> Path:
    root = tmp_path / "templates" / "toy_template"
    if not root.exists():
        copy_toy(tmp_path)
    path = root / "ideas" / f"{name}.json"
    path.write_text(fields if isinstance(fields, str) else json.dumps(fields), encoding="utf-8")
    return path


# --- finding ---------------------------------------------------------------------------------

def test_idea_is_found_by_name_across_templates() -> None:
    assert ideas.find("toy_idea", TEMPLATES) == TOY_IDEA
    assert ideas.find("toy_idea", TEMPLATES, template="toy_template") == TOY_IDEA


def test_unknown_idea_is_refused_listing_the_known_ideas(tmp_path: Path) -> None:
    _write_idea(tmp_path, "second_idea", _idea_fields())
    with pytest.raises(UsageError) as info:
        ideas.find("no_such_idea", tmp_path / "templates")
    message = str(info.value)
    assert "no_such_idea" in message
    assert "second_idea" in message and "toy_idea" in message


def test_idea_restricted_to_another_template_is_not_found() -> None:
    with pytest.raises(UsageError, match="in template 'sae_variants'"):
        ideas.find("toy_idea", TEMPLATES, template="sae_variants")


def test_same_idea_name_in_two_templates_asks_for_template(tmp_path: Path) -> None:
    copy_toy(tmp_path)
    other = tmp_path / "templates" / "other_template" / "ideas"
    other.mkdir(parents=True)
    (other / "toy_idea.json").write_text("{}")
    with pytest.raises(UsageError, match="--template") as info:
        ideas.find("toy_idea", tmp_path / "templates")
    assert "other_template" in str(info.value) and "toy_template" in str(info.value)
    found = ideas.find("toy_idea", tmp_path / "templates", template="toy_template")
    assert found.parents[1].name == "toy_template"


# --- loading ---------------------------------------------------------------------------------

def test_valid_idea_loads_with_its_binding() -> None:
    idea = ideas.load(TOY_IDEA)
    assert idea.name == "toy_idea"
    assert idea.template == "toy_template"
    assert idea.title == "Momentum on a quadratic bowl"
    assert idea.requires == {"models": ("quadratic",)}
    assert idea.fields == _idea_fields()
    assert idea.reference_session is None


def test_malformed_json_is_refused_naming_the_file_and_position(tmp_path: Path) -> None:
    text = json.dumps(_idea_fields(), indent=2).replace('"Novelty": 1,', '"Novelty": 1,,')
    path = _write_idea(tmp_path, "broken", text)
    with pytest.raises(UsageError) as info:
        ideas.load(path)
    message = str(info.value)
    assert str(path) in message and "malformed JSON" in message and "line" in message


@pytest.mark.parametrize("field", ["Title", "Experiment", "Feasibility", "Overall_Score", "novel", "template"])
def test_missing_field_is_refused_naming_the_file_and_field(tmp_path: Path, field: str) -> None:
    fields = _idea_fields()
    del fields[field]
    path = _write_idea(tmp_path, "incomplete", fields)
    with pytest.raises(UsageError) as info:
        ideas.load(path)
    assert str(path) in str(info.value)
    assert f"'{field}'" in str(info.value)


@pytest.mark.parametrize(("field", "value"), [
    ("Title", ""), ("Experiment", 42), ("Novelty", "high"), ("Feasibility", True), ("novel", "yes"),
    ("requires", ["quadratic"]), ("requires", {"models": "quadratic"}),
])
def test_field_of_the_wrong_type_is_refused_naming_it(tmp_path: Path, field: str, value: object) -> None:
    fields = _idea_fields()
    fields[field] = value
    path = _write_idea(tmp_path, "mistyped", fields)
    with pytest.raises(UsageError) as info:
        ideas.load(path)
    assert str(path) in str(info.value) and f"'{field}" in str(info.value)


def test_idea_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = _write_idea(tmp_path, "listy", "[1, 2]")
    with pytest.raises(UsageError, match="JSON object"):
        ideas.load(path)


def test_idea_naming_another_template_than_its_folder_is_refused(tmp_path: Path) -> None:
    fields = _idea_fields()
    fields["template"] = "sae_variants"
    path = _write_idea(tmp_path, "misplaced", fields)
    with pytest.raises(UsageError, match="'template' is 'sae_variants'"):
        ideas.load(path)


# --- binding to the template -----------------------------------------------------------------

def test_idea_within_what_the_template_provides_is_accepted() -> None:
    ideas.check_binding(ideas.load(TOY_IDEA), template_mod.load(TEMPLATES / "toy_template"))


def test_idea_requiring_a_model_the_template_lacks_is_refused_saying_what_differs(tmp_path: Path) -> None:
    fields = _idea_fields()
    fields["requires"] = {"models": ["quadratic", "gemma-2-2b"], "evaluations": ["final_loss"]}
    path = _write_idea(tmp_path, "greedy", fields)
    with pytest.raises(UsageError) as info:
        ideas.check_binding(ideas.load(path), template_mod.load(path.parents[1]))
    message = str(info.value)
    assert "models ['gemma-2-2b']" in message, "names what the idea wants and the template lacks"
    assert "provides only ['quadratic']" in message, "names what the template has"
    assert "evaluations" not in message, "what does fit is not reported as a difference"


def test_idea_requiring_a_kind_the_template_does_not_declare_is_refused(tmp_path: Path) -> None:
    fields = _idea_fields()
    fields["requires"] = {"datasets": ["openwebtext"]}
    path = _write_idea(tmp_path, "data_hungry", fields)
    with pytest.raises(UsageError, match="datasets") as info:
        ideas.check_binding(ideas.load(path), template_mod.load(path.parents[1]))
    assert "openwebtext" in str(info.value)


def test_idea_changing_what_the_evaluation_fixes_is_refused_with_the_templates_reason(tmp_path: Path) -> None:
    """A template's evaluator may fix part of the method (the sampler a diffusion evaluator runs
    itself): an idea that says it changes it is refused before any LLM call, with the reason."""
    fields = _idea_fields()
    fields["requires"] = {"changes": ["sampler", "loss"]}
    path = _write_idea(tmp_path, "new_sampler", fields)
    manifest = path.parents[1] / "template.toml"
    manifest.write_text(manifest.read_text(encoding="utf-8")
                        + '\n[refused_changes]\nsampler = "the evaluator runs its own sampler"\n',
                        encoding="utf-8")
    template = template_mod.load(path.parents[1])
    with pytest.raises(UsageError) as info:
        ideas.check_binding(ideas.load(path), template)
    message = str(info.value)
    assert "changes the sampler" in message and "the evaluator runs its own sampler" in message
    assert "loss" not in message.split("sampler", 1)[1].split(".")[0], "only what is refused is named"
    fields["requires"] = {}
    ideas.check_binding(ideas.load(_write_idea(tmp_path, "same_sampler", fields)), template)


def test_a_2d_diffusion_idea_that_changes_the_sampler_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """The diffusion evaluator runs its own DDPM sampler: an idea declaring a new sampler (DDIM)
    cannot be evaluated, and says why; the same idea changing only the schedule binds."""
    from tests.conftest import REPO

    root = REPO / "templates" / "2d_diffusion"
    fields = json.loads((root / "ideas" / "cosine_noise_schedule.json").read_text(encoding="utf-8"))
    folder = tmp_path / "2d_diffusion" / "ideas"
    folder.mkdir(parents=True)
    (folder / "ddim.json").write_text(json.dumps({**fields, "Name": "ddim", "requires": {
        **fields.get("requires", {}), "changes": ["noise_schedule", "sampler"]}}), encoding="utf-8")
    template = template_mod.load(root)
    with pytest.raises(UsageError) as info:
        ideas.check_binding(ideas.load(folder / "ddim.json"), template)
    assert "changes the sampler" in str(info.value) and "DDPM ancestral sampling" in str(info.value)
    ideas.check_binding(ideas.load(root / "ideas" / "cosine_noise_schedule.json"), template)
