"""The on-disk cache (tiny model, converted models, activations) under `$HARNESS_CACHE_DIR`.

Entries are directories named by a content key. They are written in a private staging
directory and renamed into place (atomic on one filesystem), and builders hold a file lock
on the entry, so two processes never see or produce half an entry: the second one waits,
then finds the finished entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENV = "HARNESS_CACHE_DIR"
DEFAULT = Path.home() / ".cache" / "trusted_scientist"


def root() -> Path:
    """The cache root: `$HARNESS_CACHE_DIR`, else ~/.cache/trusted_scientist."""
    path = Path(os.environ.get(ENV) or DEFAULT).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def key(fields: dict[str, Any]) -> str:
    """A short stable hash of JSON-able fields (sorted keys)."""
    blob = json.dumps(fields, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


@contextlib.contextmanager
def locked(entry: Path, timeout_s: float = 6 * 3600) -> Iterator[None]:
    """Hold an exclusive lock on `entry` (a sibling `.lock` file) across processes; a second
    process waits up to `timeout_s`, as long as the longest first harvest may take (the
    largest `Preset.prepare_timeout_s`)."""
    from filelock import FileLock  # a dependency of huggingface_hub, hence of transformers

    entry.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(entry) + ".lock", timeout=timeout_s):
        yield


@contextlib.contextmanager
def staging(entry: Path) -> Iterator[Path]:
    """A fresh directory that becomes `entry` when the block exits without error."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=entry.name + ".", suffix=".tmp", dir=entry.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a shared cache must stay readable
    try:
        yield tmp
        if entry.exists():  # a stale entry from an older layout: replace it
            shutil.rmtree(entry)
        os.replace(tmp, entry)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a per-process temporary file and a rename, so readers
    (and a concurrent writer) see the old content or the new, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
