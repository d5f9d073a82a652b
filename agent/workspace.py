"""The run directory and its git repository: the only module that touches git.

A run directory is a copy of the template plus `idea.json`, its own repository on branch
`main`, with one commit per applied edit and per finished run. Every path handed in is
resolved inside the directory; anything that would land outside is refused. No secret is
committed: a file holding a credential's value or a key's shape is kept out of the commit
(deleted, or put back as last committed) before git stores it, and reported.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from agent import gitsafe, secret_guard
from agent.errors import StoppedResumable, UsageError
from agent.journal import (
    HISTORY_DIR,
    HISTORY_README,
    JOURNAL_NAME,
    SEGMENT_RE,
    lines_after,
    segment_name,
)
from agent.run_ignore import GITIGNORE
from agent.secret_guard import BlockedFile
from agent.secrets import SecretScanner

AUTHOR_NAME = "trusted-scientist"
AUTHOR_EMAIL = "agent@trusted-scientist.invalid"
_SKIP_FROM_TEMPLATE = {"ideas", "ideation", "__pycache__", ".git", ".pytest_cache"}
STEP_TRAILER = "Agent-Step"
"""Git trailer naming the orchestrator step a commit belongs to, so a step whose journal
event was lost in a crash is found in the history instead of being done twice."""
LOCK_NAME = "agent.lock"
"""In the run's `.git/`: held (flock) by the one orchestrator working on the directory."""
STAGING_PREFIX = ".creating-"


class PathOutsideRunDir(StoppedResumable):
    """A path the orchestrator uses resolves outside the run directory. Its own paths are
    fixed names, so this means something (an experiment, a person) replaced one with a link
    or the like: the launch stops, and `--resume` restores the directory to its last commit."""


class RunDirBusy(UsageError):
    """Another live orchestrator holds the run directory."""


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

    def __init__(self, root: Path, env: Mapping[str, str] | None = None) -> None:
        """`env`: whose credentials must never be committed (default: this process's)."""
        import git  # gitpython; imported here so `--help` stays fast

        self.root = root.resolve()
        self.repo = git.Repo(self.root)
        # Commits are the agent's, also in a clone on a machine with no git identity of its own;
        # and git runs nothing the tree asks for (gitsafe).
        self.repo.git.update_environment(
            GIT_AUTHOR_NAME=AUTHOR_NAME, GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
            GIT_COMMITTER_NAME=AUTHOR_NAME, GIT_COMMITTER_EMAIL=AUTHOR_EMAIL, **gitsafe.env())
        self.scanner = SecretScanner.from_env(os.environ if env is None else env)
        self.blocked: list[BlockedFile] = []
        """Files kept out of commits and not reported yet (see `report_blocked_to`)."""
        self._report: Callable[[BlockedFile], None] | None = None
        self.refused: list[str] = []
        """git metadata the run's code wrote, deleted and not reported yet (`report_refused_to`)."""
        self._report_refused: Callable[[list[str]], None] | None = None

    # --- creation -----------------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: Path, idea_name: str, template_root: Path, idea_fields: dict,
               extra_files: dict[str, str] | None = None, latex_skeleton: Path | None = None,
               before_publish: Callable[[Path], None] | None = None,
               env: Mapping[str, str] | None = None) -> Workspace:
        """Make `runs_dir/<YYYYmmdd_HHMMSS>_<idea>/` from the template and commit it.

        The directory is built under a hidden staging name and renamed into place when it is
        complete (`before_publish(staging_root)` runs just before: the journal's first event),
        so a crash never leaves a half-made run directory where runs are listed. Template
        files holding a secret are left out of it, and wait in `blocked` to be reported.
        """
        runs_dir.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_staging(runs_dir)
        stamp = time.strftime("%Y%m%d_%H%M%S")
        staging = runs_dir / f"{STAGING_PREFIX}{stamp}_{idea_name}-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        try:
            blocked = cls._build(staging, idea_name, template_root, idea_fields, extra_files, latex_skeleton, env)
            if before_publish is not None:
                before_publish(staging)
            root = runs_dir / f"{stamp}_{idea_name}"
            n = 1
            while True:  # two launches in one second get distinct folders
                try:
                    os.rename(staging, root)  # atomic; fails if another launch took the name
                    break
                except OSError:
                    if not root.exists():
                        raise
                    n += 1
                    root = runs_dir / f"{stamp}_{idea_name}_{n}"
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        ws = cls(root, env)
        ws.blocked = blocked
        return ws

    @classmethod
    def _build(cls, root: Path, idea_name: str, template_root: Path, idea_fields: dict,
               extra_files: dict[str, str] | None, latex_skeleton: Path | None,
               env: Mapping[str, str] | None) -> list[BlockedFile]:
        import git

        shutil.copytree(template_root, root, ignore=lambda d, names: [x for x in names if x in _SKIP_FROM_TEMPLATE])
        if latex_skeleton is not None and latex_skeleton.is_dir():
            dest = root / "latex"
            dest.mkdir(exist_ok=True)
            for f in latex_skeleton.iterdir():
                if f.is_file() and f.suffix in (".sty", ".cls", ".bst") and not (dest / f.name).exists():
                    shutil.copy2(f, dest / f.name)
        (root / "idea.json").write_text(json.dumps(idea_fields, indent=2) + "\n", encoding="utf-8")
        (root / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
        (root / HISTORY_DIR).mkdir()
        (root / HISTORY_DIR / "README.md").write_text(HISTORY_README, encoding="utf-8")
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
        ws = cls(root, env)
        ws.commit(["."], f"setup: template '{template_root.name}' and idea '{idea_name}'")
        return ws.blocked

    # --- one orchestrator at a time ----------------------------------------------------------
    def lock(self) -> None:
        """Hold the run directory for this process until it exits, or RunDirBusy naming the
        live process that holds it. The lock is an flock, so the kernel drops it when its
        holder dies, however it dies: a dead holder's lock is simply taken over."""
        path = self.root / ".git" / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunDirBusy(
                f"{self.root} is being worked on by {holder}: only one launch or --resume may "
                f"run in a run directory at a time. Wait for it to end, or stop it (kill the "
                f"pid) and then --resume.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} (since {time.strftime('%Y-%m-%d %H:%M:%S')})\n".encode(), 0)
        self._lock_fd = fd  # kept open (and so held) for the life of this process

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
    def commit(self, paths: list[str], message: str, step: str | None = None) -> str | None:
        """Stage `paths` (additions, changes, deletions) and commit; None if nothing changed.

        `step` names the orchestrator step in a trailer, for `step_commit`. A file holding a
        secret is kept out (see `_keep_secrets_out`) and reported; the rest is committed."""
        rels = [str(self.resolve(p).relative_to(self.root)) if p != "." else "." for p in paths]
        self.sweep()
        if rels:
            self._keep_secrets_out(rels, step or message.partition("\n")[0])
        # A path that neither exists nor was ever committed has nothing to record (git would
        # refuse the whole call with "pathspec did not match").
        rels = [r for r in rels if os.path.lexists(self.root / r) or self.repo.git.ls_files("--", r)]
        if not rels:
            return None
        self.repo.git.add("-A", "--", *rels)
        if self.repo.head.is_valid() and not self.repo.index.diff("HEAD"):
            return None
        segment = self._journal_segment(step or message.partition("\n")[0])
        if segment is not None:
            self.repo.git.add("--", segment)
        if step is not None:
            message = f"{message}\n\n{STEP_TRAILER}: {step}"
        self.repo.git.commit("-m", message, "--no-verify", f"--author={AUTHOR_NAME} <{AUTHOR_EMAIL}>")
        return self.head()

    def commit_journal(self, message: str) -> str | None:
        """Commit the journal's events since the last commit, alone (the end of a launch, a
        stop, a verification); None when there are none. Whatever else is uncommitted stays
        as it is (a stopped edit is for `--resume` to restore)."""
        segment = self._journal_segment(message)
        if segment is None:
            return None
        self.repo.git.add("--", segment)
        self.repo.git.commit("-m", message, "--no-verify", f"--author={AUTHOR_NAME} <{AUTHOR_EMAIL}>",
                             "--only", "--", segment)
        return self.head()

    def _journal_segment(self, step: str) -> str | None:
        """Write `journal/<first>-<last>.jsonl`: the journal's lines after the last segment
        HEAD holds. The live journal stays the one written as things happen (fsynced, ignored
        by git): what a crash leaves uncommitted, or `reset_to` drops, the next one carries."""
        found = lines_after(self.root / JOURNAL_NAME, self._journaled_upto())
        if found is None:
            return None
        first, last, data = found
        rel = f"{HISTORY_DIR}/{segment_name(first, last)}"
        path = self.resolve(rel)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        self._keep_secrets_out([rel], step)
        return rel if path.is_file() else None

    def _journaled_upto(self) -> int:
        """The seq of the last event HEAD's journal segments hold (-1: none)."""
        if not self.repo.head.is_valid():
            return -1
        names = str(self.repo.git.ls_tree("--name-only", "HEAD", f"{HISTORY_DIR}/")).splitlines()
        ends = [int(m.group(2)) for n in names if (m := SEGMENT_RE.fullmatch(n.rpartition("/")[2]))]
        return max(ends, default=-1)

    def sweep(self) -> None:
        """Delete the git metadata the run's code left (`gitsafe.sweep`) before git reads the tree."""
        tracked = str(self.repo.git.ls_files("-z", "--", *(f"*{n}" for n in gitsafe.METADATA))).split("\0")
        self.refused += gitsafe.sweep(self.root, [t for t in tracked if t])
        if self.refused and self._report_refused is not None:
            self.report_refused_to(self._report_refused)

    def report_refused_to(self, report: Callable[[list[str]], None]) -> None:
        """Hand what `sweep` deleted to `report`, what it deleted before this call first."""
        self._report_refused = report
        if self.refused:
            waiting, self.refused = self.refused, []
            report(waiting)

    def report_blocked_to(self, report: Callable[[BlockedFile], None]) -> None:
        """Hand every file kept out of a commit to `report`, those waiting in `blocked` first."""
        self._report = report
        while self.blocked:
            report(self.blocked.pop(0))

    def _keep_secrets_out(self, rels: list[str], step: str) -> None:
        """Scan what `git add -A -- rels` would store (new and changed files; git-ignored ones
        are never stored), before git writes any of it to its object database; each file that
        holds a secret is redacted or kept out (`agent.secret_guard`) and reported."""
        out = str(self.repo.git.status("--porcelain", "-z", "--no-renames", "--untracked-files=all", "--", *rels))
        changed = [entry[3:] for entry in out.split("\0") if len(entry) > 3]
        for rel in changed:
            path = self.root / rel
            if not (path.is_symlink() or path.is_file()):
                continue  # deleted, or a nested repository git would store as a link
            size = path.lstat().st_size
            if size > secret_guard.max_file_bytes() and not rel.startswith(secret_guard.SEGMENTS_DIR):
                self._exclude(rel)
                self._hand_over(BlockedFile(rel, (), step, restored=False, size=size))
                continue
            found, keep_out = secret_guard.guard(self.scanner, self.root, rel, step)
            if found is None:
                continue
            if keep_out:
                found = replace(found, restored=self._drop(rel))
            self._hand_over(found)

    def _hand_over(self, blocked: BlockedFile) -> None:
        if self._report is not None:
            self._report(blocked)
        else:
            self.blocked.append(blocked)

    def _exclude(self, rel: str) -> None:
        secret_guard.exclude(self.root, rel)
        self.repo.git.rm("--cached", "-q", "--ignore-unmatch", "--", rel)

    def _drop(self, rel: str) -> bool:
        """Put `rel` back as HEAD has it (True), or remove it if HEAD has none (False)."""
        import git

        if self.repo.head.is_valid():
            try:
                self.repo.git.checkout("HEAD", "--", rel)
                return True
            except git.GitCommandError:  # not in HEAD: a new file
                pass
        self.repo.git.rm("--cached", "-q", "--ignore-unmatch", "--", rel)
        (self.root / rel).unlink()
        return False

    def step_commit(self, step: str) -> str | None:
        """The commit of `step` on the current branch, if that step was committed."""
        out = str(self.repo.git.log("--format=%H%x1f%(trailers:key=" + STEP_TRAILER + ",valueonly)%x1e"))
        for record in out.split("\x1e"):
            sha, _, steps = record.strip().partition("\x1f")
            if step in (line.strip() for line in steps.splitlines()):
                return sha
        return None

    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def is_dirty(self) -> bool:
        """Tracked changes or untracked (not ignored) files."""
        self.sweep()
        return self.repo.is_dirty(untracked_files=True)

    def restore_clean(self, keep: Iterable[str] = ()) -> list[str]:
        """Throw away uncommitted changes and untracked files (ignored ones stay); return what went.

        Paths in `keep` (outputs of a finished step that a crash left uncommitted) survive as
        they are, to be committed by the resumed step instead of being made again."""
        self.sweep()
        kept = [rel for rel in dict.fromkeys(keep) if os.path.lexists(self.resolve(rel))]
        held = self.root / ".git" / "agent-kept"
        if held.exists():
            shutil.rmtree(held)
        for i, rel in enumerate(kept):
            (held / str(i)).parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.resolve(rel), held / str(i))
        lost = [str(item.a_path or item.b_path) for item in self.repo.index.diff(None)]
        lost += list(self.repo.untracked_files)
        self.repo.git.reset("--hard", "HEAD")
        self.repo.git.clean("-fd")
        for i, rel in enumerate(kept):
            dest = self.root / rel
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif os.path.lexists(dest):
                dest.unlink()
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(held / str(i), dest)
        shutil.rmtree(held, ignore_errors=True)
        return [p for p in lost if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in kept)]

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
        """Paths that differ between two commits (the journal's segments left out)."""
        out = str(self.repo.git.diff("--name-only", a, b, "--", ".", f":(exclude){HISTORY_DIR}"))
        return [line for line in out.splitlines() if line]

    def reset_to(self, sha: str) -> None:
        """Move `main` back to `sha` (an unfinished edit session is redone from there)."""
        self.repo.git.reset("--hard", sha)
        self.repo.git.clean("-fd")


def _remove_abandoned_staging(runs_dir: Path) -> None:
    """Staging folders of launches that died while creating their run directory."""
    for path in runs_dir.glob(f"{STAGING_PREFIX}*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)
