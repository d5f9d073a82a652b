"""The run directory and its git repository: the only module that touches git.

A run directory is a copy of the template plus `idea.json`, its own repository on branch
`main`, with one commit per applied edit and per finished run. Every path handed in is
resolved inside the directory; anything that would land outside is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UsageError

AUTHOR_NAME = "trusted-scientist"
AUTHOR_EMAIL = "agent@trusted-scientist.invalid"
GITIGNORE = """\
# Written by the agent: large or volatile artifacts stay out of the run's history.
journal.jsonl
*.pt
*.pth
*.ckpt
*.safetensors
*.bin
*.npy
*.npz
cache/
.cache/
__pycache__/
*.pyc
latex/*.aux
latex/*.log
latex/*.out
latex/*.bbl
latex/*.blg
latex/*.fls
latex/*.fdb_latexmk
latex/*.toc
latex/*.pdf
latex/compile_logs/
"""
_SKIP_FROM_TEMPLATE = {"ideas", "__pycache__", ".git", ".pytest_cache"}


class PathOutsideRunDir(UsageError):
    """A path resolves outside the run directory."""


@dataclass(frozen=True)
class CommitInfo:
    """One commit of the run's history."""

    sha: str
    message: str
    timestamp: float
    """Unix time of the commit."""
    files: tuple[str, ...]
    """Paths it touched."""


class Workspace:
    """A run directory with its own git repository."""

    def __init__(self, root: Path) -> None:
        import git  # gitpython; imported here so `--help` stays fast

        self.root = root.resolve()
        self.repo = git.Repo(self.root)

    # --- creation -----------------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: Path, idea_name: str, template_root: Path, idea_fields: dict,
               extra_files: dict[str, str] | None = None, latex_skeleton: Path | None = None) -> Workspace:
        """Make `runs_dir/<YYYYmmdd_HHMMSS>_<idea>/` from the template and commit it."""
        import git

        runs_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d_%H%M%S")
        root = runs_dir / f"{stamp}_{idea_name}"
        n = 1
        while root.exists():  # two launches in one second get distinct folders
            n += 1
            root = runs_dir / f"{stamp}_{idea_name}_{n}"
        shutil.copytree(template_root, root, ignore=lambda d, names: [x for x in names if x in _SKIP_FROM_TEMPLATE])
        if latex_skeleton is not None and latex_skeleton.is_dir():
            dest = root / "latex"
            dest.mkdir(exist_ok=True)
            for f in latex_skeleton.iterdir():
                if f.is_file() and f.suffix in (".sty", ".cls", ".bst") and not (dest / f.name).exists():
                    shutil.copy2(f, dest / f.name)
        (root / "idea.json").write_text(json.dumps(idea_fields, indent=2) + "\n", encoding="utf-8")
        (root / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
        if not (root / "notes.txt").exists():
            title = idea_fields.get("Title", idea_name)
            (root / "notes.txt").write_text(f"# Notes: {title}\n\n", encoding="utf-8")
        for rel, text in (extra_files or {}).items():
            (root / rel).write_text(text, encoding="utf-8")
        repo = git.Repo.init(root, initial_branch="main")
        with repo.config_writer() as cfg:  # works on a machine with no global identity
            cfg.set_value("user", "name", AUTHOR_NAME)
            cfg.set_value("user", "email", AUTHOR_EMAIL)
            cfg.set_value("commit", "gpgsign", "false")
        ws = cls(root)
        ws.commit(["."], f"setup: template '{template_root.name}' and idea '{idea_name}'")
        return ws

    # --- paths ----------------------------------------------------------------------------
    def resolve(self, rel: str | Path) -> Path:
        """`rel` inside the run directory, or PathOutsideRunDir (absolute, `..`, symlinks out)."""
        rel_path = Path(rel)
        if rel_path.is_absolute():
            raise PathOutsideRunDir(f"absolute path '{rel}' refused: paths are relative to the run directory")
        if ".." in rel_path.parts:
            raise PathOutsideRunDir(f"path '{rel}' refused: '..' is not allowed in run-directory paths")
        full = (self.root / rel_path).resolve()
        if full != self.root and self.root not in full.parents:
            raise PathOutsideRunDir(f"path '{rel}' resolves outside the run directory {self.root}")
        return full

    # --- git ------------------------------------------------------------------------------
    def commit(self, paths: list[str], message: str) -> str | None:
        """Stage `paths` (additions, changes, deletions) and commit; None if nothing changed."""
        rels = [str(self.resolve(p).relative_to(self.root)) if p != "." else "." for p in paths]
        # A path that neither exists nor was ever committed has nothing to record (git would
        # refuse the whole call with "pathspec did not match").
        rels = [r for r in rels if os.path.lexists(self.root / r) or self.repo.git.ls_files("--", r)]
        if not rels:
            return None
        self.repo.git.add("-A", "--", *rels)
        if self.repo.head.is_valid() and not self.repo.index.diff("HEAD"):
            return None
        self.repo.git.commit("-m", message, "--no-verify", f"--author={AUTHOR_NAME} <{AUTHOR_EMAIL}>")
        return self.head()

    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def is_dirty(self) -> bool:
        """Tracked changes or untracked (not ignored) files."""
        return self.repo.is_dirty(untracked_files=True)

    def restore_clean(self) -> list[str]:
        """Throw away uncommitted changes and untracked files (ignored ones stay); return what went."""
        lost = [str(item.a_path or item.b_path) for item in self.repo.index.diff(None)]
        lost += list(self.repo.untracked_files)
        self.repo.git.reset("--hard", "HEAD")
        self.repo.git.clean("-fd")
        return lost

    def diff(self, sha: str) -> str:
        """The patch a commit introduced."""
        return str(self.repo.git.show(sha, "--format=", "--patch"))

    def history(self) -> list[CommitInfo]:
        """Commits from the first to HEAD, oldest first."""
        commits = list(self.repo.iter_commits("HEAD"))[::-1]
        return [CommitInfo(c.hexsha, str(c.message).strip(), float(c.committed_date),
                           tuple(str(f) for f in c.stats.files)) for c in commits]

    def is_linear(self) -> bool:
        return all(len(c.parents) <= 1 for c in self.repo.iter_commits("HEAD"))

    def file_at(self, sha: str, rel: str) -> str:
        return str(self.repo.git.show(f"{sha}:{rel}"))

    def changed_files(self, a: str, b: str) -> list[str]:
        """Paths that differ between two commits."""
        out = str(self.repo.git.diff("--name-only", a, b))
        return [line for line in out.splitlines() if line]

    def reset_to(self, sha: str) -> None:
        """Move `main` back to `sha` (an unfinished edit session is redone from there)."""
        self.repo.git.reset("--hard", sha)
        self.repo.git.clean("-fd")
