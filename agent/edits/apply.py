"""Apply parsed blocks to files of a run directory, safely and in order.

Each block is first checked against the policy (inside the root, not under `.git/`, not a
link, not protected, on the editable list, SEARCH short enough); then matched against the
file's content as left by the blocks before it. Blocks that match are kept even when others
fail. Files are written once, atomically, at the end, and only when their content changed.
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from agent.edits.match import MatchKind, NoMatch, substitute
from agent.edits.parse import EditBlock


@dataclass(frozen=True)
class EditPolicy:
    """Where edits may land."""

    root: Path
    """The run directory; nothing outside it is ever written."""
    editable: frozenset[str]
    """Relative paths (POSIX form) the model may edit or create."""
    protected: tuple[str, ...] = ()
    """fnmatch patterns never edited even if listed as editable (the trusted harness)."""
    max_search_chars: int = 6000
    """Longer SEARCH sections are refused: they are pasted files, and they corrupt edits."""
    kept: tuple[tuple[str, str, str], ...] = ()
    """(path, text, whose) of passages an edit may not change or remove: the orchestrator's
    record of each run in notes.txt. A block that would is refused, and told why."""


@dataclass(frozen=True)
class Applied:
    """A block that matched and was applied."""

    block: EditBlock
    """The block as the model wrote it."""
    path: str
    """The file it edited, relative to the root."""
    kind: MatchKind
    """How tolerant the match had to be."""
    line: int
    """1-based line of the file where the matched lines began."""
    changed: bool
    """False when REPLACE was identical to what it replaced."""


@dataclass(frozen=True)
class Failed:
    """A block allowed by the policy whose SEARCH lines could not be placed."""

    block: EditBlock
    """The block as the model wrote it."""
    path: str
    """The file it was meant for, relative to the root."""
    reason: str
    """Why it did not match, for the model."""
    did_you_mean: str
    """The closest real lines of the file, numbered; empty when nothing is close."""


@dataclass(frozen=True)
class Refused:
    """A block the policy does not allow; it was not even matched."""

    block: EditBlock
    """The block as the model wrote it."""
    reason: str
    """Why it is refused, and which files may be edited."""


@dataclass(frozen=True)
class EditReport:
    """What became of each block of one reply."""

    applied: list[Applied] = field(default_factory=list)
    """Blocks that matched, in order."""
    failed: list[Failed] = field(default_factory=list)
    """Blocks whose SEARCH lines were not found (or found more than once)."""
    refused: list[Refused] = field(default_factory=list)
    """Blocks the policy refused."""
    changed_files: list[str] = field(default_factory=list)
    """Sorted relative paths whose content actually changed on disk."""

    @property
    def clean(self) -> bool:
        """True when every block was applied."""
        return not self.failed and not self.refused


def apply_blocks(blocks: list[EditBlock], policy: EditPolicy) -> EditReport:
    """Apply each allowed block in order; report what applied, failed and was refused."""
    root = policy.root.resolve()
    original: dict[str, str | None] = {}
    current: dict[str, str | None] = {}
    crlf: set[str] = set()
    applied: list[Applied] = []
    failed: list[Failed] = []
    refused: list[Refused] = []
    for block in blocks:
        rel, refusal = check_path(block.path, policy)
        if refusal is None and len(block.search) > policy.max_search_chars:
            refusal = _too_long(block, policy.max_search_chars)
        if refusal is None and rel not in current:
            text, refusal = _read(root, rel)
            if refusal is None:
                original[rel] = current[rel] = text
                if text is not None and "\r\n" in text:
                    crlf.add(rel)
        if refusal is not None:
            refused.append(Refused(block, refusal))
            continue
        before = current[rel]
        if before is None and block.search.strip():
            reason = f"{rel} does not exist yet; to create it, send a block with an empty SEARCH."
            failed.append(Failed(block, rel, reason, ""))
            continue
        result = substitute((before or "").replace("\r\n", "\n"), block.search, block.replace)
        if isinstance(result, NoMatch):
            failed.append(Failed(block, rel, result.reason, result.did_you_mean))
            continue
        new = result.content.replace("\n", "\r\n") if rel in crlf else result.content
        touched = [whose for path, text, whose in policy.kept
                   if path == rel and text in (before or "") and text not in new]
        if touched:
            refused.append(Refused(block, f"it changes {touched[0]} in {rel}, which the orchestrator "
                                          "wrote from the run's own files; it cannot be edited. Put "
                                          "your text after it (a block with an empty SEARCH appends)."))
            continue
        applied.append(Applied(block, rel, result.kind, result.line, new != before))
        current[rel] = new
    changed = sorted(rel for rel, text in current.items() if text != original[rel])
    for rel in changed:
        _write_atomically(root / rel, current[rel] or "")
    return EditReport(applied, failed, refused, changed)


def check_path(raw: str, policy: EditPolicy) -> tuple[str, str | None]:
    """The normalised relative path, and why the model may not edit it (None: it may)."""
    editable = ", ".join(sorted(policy.editable)) or "(none)"
    text = raw.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    pure = PurePosixPath(text)
    rel = pure.as_posix()
    why: str | None
    if not pure.parts:
        why = f"{raw!r} names no file"
    elif text.startswith("~") or pure.is_absolute() or ":" in pure.parts[0]:
        why = f"{raw!r} is an absolute path; use a path relative to the run directory"
    elif ".." in pure.parts:
        why = f"{raw!r} leaves the run directory (`..`)"
    elif ".git" in pure.parts:
        why = f"{raw!r} is inside .git/, which is never edited"
    elif any(fnmatch.fnmatchcase(rel, pattern) for pattern in policy.protected):
        why = f"{rel} is part of the trusted harness and cannot be edited"
    elif rel not in policy.editable:
        why = f"{rel} is not an editable file"
    else:
        why = _link_on_the_way(policy.root, pure)
    return rel, None if why is None else f"{why}. Editable files: {editable}."


def _link_on_the_way(root: Path, pure: PurePosixPath) -> str | None:
    """Why a path that goes through a symbolic link (the file or a folder) is refused."""
    inside = root.resolve()
    for depth in range(1, len(pure.parts) + 1):
        step = root.joinpath(*pure.parts[:depth])
        if step.is_symlink():
            where = "inside" if step.resolve().is_relative_to(inside) else "outside"
            return (
                f"{pure.as_posix()} goes through a symbolic link ({step.name} points "
                f"{where} the run directory); edits through links are refused"
            )
    return None


def _too_long(block: EditBlock, limit: int) -> str:
    return (
        f"The SEARCH section for {block.path} is {len(block.search):,} characters (limit "
        f"{limit:,}). Quote only the few lines around the change, exactly as they are in the "
        "file; for a long line or a whole file, replace a short unique part of it instead."
    )


def _read(root: Path, rel: str) -> tuple[str | None, str | None]:
    """The file's text (None when it does not exist yet), or why it cannot be edited."""
    path = root / rel
    if not path.exists():
        return None, None
    if not path.is_file():
        return None, f"{rel} is not a regular file."
    try:
        return path.read_bytes().decode("utf-8"), None
    except UnicodeDecodeError:
        return None, f"{rel} is not UTF-8 text; it is never edited."


def _write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
