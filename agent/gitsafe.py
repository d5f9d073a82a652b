"""git over trees the model's code wrote: nothing a tree holds makes git run a program.

The orchestrator runs git, outside the sandbox, on directories that experiments and `plot.py`
wrote. git executes what configuration and attributes ask for: hooks, `core.fsmonitor` (also
from a nested repository's own `.git/config`, when git looks into an embedded repository or
a submodule), filters and textconv drivers named by `.gitattributes`; and attributes alone
can make `git add` fail (`working-tree-encoding`), so that a run can never be committed again.
Two defences, each enough for execution:

- every git the orchestrator starts gets `env()`: no system or global configuration, and
  command-line-level settings (which outrank every repository's own, nested ones included,
  and reach the git processes git itself starts) that turn hooks and fsmonitor off and point
  the attributes file nowhere; filter and diff drivers exist only where configuration
  defines them, and no configuration a run can write is read;
- before git looks at the tree, `sweep` deletes every git metadata file the run's code left:
  a nested `.git` (folder or file), `.gitmodules`, `.gitattributes`, and `.gitignore` below the
  top (the top one is the orchestrator's). The caller reports what went, like a stray.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

SAFE_CONFIG = (
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("core.attributesFile", os.devnull),
    ("core.untrackedCache", "false"),
    ("submodule.recurse", "false"),
    ("diff.ignoreSubmodules", "all"),
    ("status.submoduleSummary", "false"),
)
"""Settings given at the command line's level to every git the orchestrator runs."""

METADATA = (".git", ".gitmodules", ".gitattributes", ".gitignore")
"""Names git reads as instructions; a run's code may write none of them (the top-level
`.git` and `.gitignore` are the orchestrator's)."""


def env() -> dict[str, str]:
    """Environment variables for a git process: the settings above, and no configuration
    from the machine or the user (a hook path or filter there is not the run's to use)."""
    out = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_ATTR_NOSYSTEM": "1",
           "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": str(len(SAFE_CONFIG))}
    for i, (key, value) in enumerate(SAFE_CONFIG):
        out[f"GIT_CONFIG_KEY_{i}"] = key
        out[f"GIT_CONFIG_VALUE_{i}"] = value
    return out


def environ() -> dict[str, str]:
    """This process's environment with `env()` over it: for a git subprocess."""
    return {**os.environ, **env()}


def sweep(root: Path, tracked: Iterable[str] = ()) -> list[str]:
    """Delete the git metadata below `root` (its own `.git` and `.gitignore` aside, and the
    `tracked` paths: what the template shipped); return what went, relative to `root`. Links
    are removed as links, never followed."""
    keep = {".git", ".gitignore", *tracked}
    removed: list[str] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        for name in [n for n in (*dirs, *files) if n in METADATA]:
            path = here / name
            rel = str(path.relative_to(root))
            if rel in keep:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(rel)
        dirs[:] = [d for d in dirs if d not in METADATA]
    return sorted(removed)
