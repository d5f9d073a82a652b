"""The content-addressed cache: one JSON file per answered search, `<dir>/<source>/<key>.json`.

The key is the sha256 of the source and the request's public parameters (never the base URL,
a key or an e-mail), so the same question has the same entry on every machine, with or without
an API key. An entry holds the public request, the HTTP status and the raw body as the service
sent it: a replay parses exactly what the live search parsed. Only answers that were read
(status 200, parsed) are written; a refusal, a failure or a malformed body never is.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.literature.sources import Request

FORMAT = 1


def normalize_query(query: str) -> str:
    return " ".join(query.split())


def cache_key(source: str, request: Request) -> str:
    blob = json.dumps({"source": source, "params": [list(p) for p in request.params]}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One cached answer."""

    path: Path
    source: str
    key: str
    status: int
    body: str


def path_for(cache_dir: Path, source: str, key: str) -> Path:
    return cache_dir / source / f"{key}.json"


def read(path: Path, source: str, key: str) -> Entry | None:
    """The entry at `path` if it is one for (source, key); None when absent or not an entry."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (not isinstance(data, dict) or data.get("source") != source or data.get("cache_key") != key
            or not isinstance(data.get("body"), str) or data.get("status") != 200):
        return None
    return Entry(path, source, key, 200, data["body"])


def write(cache_dir: Path, source: str, key: str, request: Request, query: str, status: int, body: str,
          secrets: list[str]) -> Path:
    """Write an entry atomically (temp file + rename); refuses to write one holding a secret."""
    data: dict[str, Any] = {"format": FORMAT, "source": source, "cache_key": key, "query": query,
                            "request": request.public(), "status": status, "body": body,
                            "fetched_at": datetime.now(UTC).isoformat(timespec="seconds")}
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    if any(s and s in text for s in secrets):  # a service echoing the key back: keep it out of every file
        raise ValueError("the answer holds a credential's value; it is not cached")
    path = path_for(cache_dir, source, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def entries(cache_dir: Path) -> list[tuple[str, str, Path]]:
    """(source, key, path) of every entry under `cache_dir`, in a stable order."""
    if not cache_dir.is_dir():
        return []
    return [(p.parent.name, p.stem, p) for p in sorted(cache_dir.glob("*/*.json")) if not p.name.startswith(".")]


def query_of(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(data.get("query", "")) if isinstance(data, dict) else ""
