"""Where generated ideas go and how they are written: one JSON file per idea, never over an
existing idea (a clash takes a new name), with its provenance and, beside it, the literature
cache entries its novelty check read (`<name>.literature/`)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from agent import ideas
from agent.prompting import PROMPTS

PROMPT_FILES = ("ideation_system", "ideation_generate", "ideation_reflect", "ideation_fix",
                "ideation_novelty_system", "ideation_novelty")
LITERATURE_SUFFIX = ".literature"


def shown(text: str) -> str:
    """An absolute path (or `replay:PATH`) relative to the repository when it lies inside it,
    so the provenance reads the same on every checkout; anything else as it is."""
    from agent.paths import REPO

    prefix = "replay:" if text.startswith("replay:") else ""
    path = Path(text[len(prefix):])
    if not path.is_absolute() or not path.resolve().is_relative_to(REPO):
        return text
    return prefix + str(path.resolve().relative_to(REPO))


def default_out(templates_dir: Path, template: str) -> Path:
    """`<repo>/ideas/generated/<template>/`, where `--idea NAME` finds them."""
    return ideas.generated_dir(templates_dir) / template


def prompt_hashes() -> dict[str, str]:
    """sha256 of each ideation prompt file, as it is now."""
    return {name: hashlib.sha256((PROMPTS / f"{name}.j2").read_bytes()).hexdigest() for name in PROMPT_FILES}


def taken_names(templates_dir: Path, out_dir: Path) -> set[str]:
    """Every idea name `--idea` could already mean, and every file in the output folder."""
    return set(ideas.idea_files(templates_dir)) | {p.stem for p in out_dir.glob("*.json")}


def unique_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted_2`, `wanted_3`, ... when it is taken."""
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}_{n}" in taken:
        n += 1
    return f"{wanted}_{n}"


def existing_ideas(templates_dir: Path, template: str) -> list[str]:
    """`name: title` of the template's ideas, hand-written and generated (shown to the model)."""
    lines = []
    for name, paths in sorted(ideas.idea_files(templates_dir).items()):
        for path in paths:
            if ideas.template_of_place(path) != template:
                continue
            try:
                title = json.loads(path.read_text(encoding="utf-8")).get("Title", "")
            except (OSError, ValueError, AttributeError):
                title = ""
            lines.append(f"{name}: {title}" if title else name)
    return lines


def copy_literature(files: list[Path], cache_dir: Path, dest: Path) -> list[str]:
    """Copy the cache entries a check used to `dest`, keeping their place in the cache; the
    copied paths relative to `dest`'s parent (the idea's folder)."""
    copied = []
    for src in files:
        try:
            rel = src.resolve().relative_to(cache_dir.resolve())
        except ValueError:
            rel = Path(src.name)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        copied.append(str(target.relative_to(dest.parent)))
    return sorted(set(copied))


def write_idea(out_dir: Path, name: str, record: dict[str, Any]) -> Path:
    """Write `<out_dir>/<name>.json`; refuses to replace a file (the caller chose a free name)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    with open(path, "x", encoding="utf-8") as f:  # "x": never over an existing idea
        f.write(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def replay_miss_type() -> type[BaseException]:
    """`agent.literature.ReplayMiss` (a replayed search that is not in the cache)."""
    try:
        from agent.literature import ReplayMiss
    except ImportError:  # the literature layer is not installed: nothing raises it
        return _NeverRaised
    return ReplayMiss  # type: ignore[no-any-return]


class _NeverRaised(Exception):
    pass
