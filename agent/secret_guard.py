"""What a commit does with a file that holds a secret, or is too large: redact it, or keep it out.

A file larger than `max_file_bytes()` (50 MB unless TRUSTED_SCIENTIST_MAX_FILE_MB says
otherwise) is kept out of the history, left on disk and reported: a run's 3 GB of
activations would otherwise make every later clone and commit slow.

Before git stores anything, each new or changed file is scanned (`agent.secrets`). What the
guard does then depends on what was found and where:

- **Redacted** (the file is committed with each match replaced by `[REDACTED <source>]`, the
  rest kept): a key-shaped string that is no credential of this launch (a model's example of
  what a key looks like, in its prose or code), and anything at all in the journal's segments,
  which are the run's record: dropping one would erase every event it holds.
- **Kept out** (a tracked file is put back as last committed, a new one deleted): a true
  credential value of this launch in any other file, and any finding in a file that cannot be
  redacted in place (binary files; a PDF whose text holds it).

Either way the finding is reported (the journal's `secret.blocked`, the report's integrity
panel) with the variable's or pattern's name, never the value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.journal import HISTORY_DIR
from agent.secrets import KEY_PATTERNS, TEXT_PROBE_BYTES, SecretFinding, SecretScanner

SEGMENTS_DIR = HISTORY_DIR + "/"
"""Where the journal's committed segments live."""


@dataclass(frozen=True)
class BlockedFile:
    """A file that held a secret: redacted in the commit, or kept out of it."""

    path: str
    """Relative to the run directory."""
    findings: tuple[SecretFinding, ...]
    """What it held: variable names or key patterns, never the values."""
    step: str
    """The commit's step trailer, or the first line of its message."""
    restored: bool
    """Kept out: True, a tracked file put back as last committed; False, a new file deleted."""
    redacted: bool = False
    """True: committed with the matches replaced (the rest kept); `restored` is then False."""
    size: int = 0
    """Not a secret: bytes of a file over the size limit (`max_file_bytes`), kept out of the
    history and left on disk, ignored by git from then on."""

    def fate(self) -> str:
        if self.size:
            return (f"kept out of the history: {self.size / 2**20:,.1f} MB, over the "
                    f"{max_file_bytes() / 2**20:,.0f} MB limit (left on disk, ignored by git)")
        if self.redacted:
            return "committed with the secret redacted"
        return "kept out, put back as last committed" if self.restored else "kept out, deleted"


MAX_FILE_MB_ENV = "TRUSTED_SCIENTIST_MAX_FILE_MB"
DEFAULT_MAX_FILE_MB = 50


def max_file_bytes() -> int:
    """The largest file a commit stores: TRUSTED_SCIENTIST_MAX_FILE_MB, default 50 MB."""
    try:
        return int(float(os.environ.get(MAX_FILE_MB_ENV) or DEFAULT_MAX_FILE_MB) * 2**20)
    except ValueError:
        return DEFAULT_MAX_FILE_MB * 2**20


def exclude(root: Path, rel: str) -> None:
    """Leave `rel` on disk and out of the history from now on (its `.git/info/exclude`)."""
    path = root / ".git" / "info" / "exclude"
    path.parent.mkdir(exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("/" + "".join("\\" + c if c in "*?[\\ #!" else c for c in rel) + "\n")


def guard(scanner: SecretScanner, root: Path, rel: str, step: str) -> tuple[BlockedFile | None, bool]:
    """Scan `root/rel`; redact it in place where the rules above allow. Returns the finding
    (None when clean) and whether the file must still be kept out of the commit."""
    findings = scanner.scan_file(root, rel)
    if not findings:
        return None, False
    path = root / rel
    redactable = rel.startswith(SEGMENTS_DIR) or all(f.how == "pattern" for f in findings)
    if redactable and not path.is_symlink() and not rel.lower().endswith(".pdf"):
        data = path.read_bytes()
        if b"\0" not in data[:TEXT_PROBE_BYTES]:
            path.write_bytes(redact(scanner, data))
            if not scanner.scan_file(root, rel):
                return BlockedFile(rel, tuple(findings), step, restored=False, redacted=True), False
    return BlockedFile(rel, tuple(findings), step, restored=False), True


def redact(scanner: SecretScanner, data: bytes) -> bytes:
    """`data` with every credential value (and its base64 forms) and every key shape replaced
    by `[REDACTED <name>]`; longer needles first, so a value inside another goes with it."""
    for needle, (source, _) in sorted(scanner.needles.items(), key=lambda item: -len(item[0])):
        data = data.replace(needle, f"[REDACTED {source}]".encode())
    for name, pattern in KEY_PATTERNS:
        data = pattern.sub(_keyed(name), data)
    return data


def _keyed(name: str) -> Callable[[re.Match[bytes]], bytes]:
    """A key shape's replacement, only where it starts a word (as the scanner finds them)."""
    def replace(match: re.Match[bytes]) -> bytes:
        start = match.start()
        if start and match.string[start - 1:start].isalnum():
            return match.group(0)
        return f"[REDACTED {name}]".encode()
    return replace
