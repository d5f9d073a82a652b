"""Text for harvesting: the shipped Shakespeare (train/eval split by work) or a hub dataset.

Text becomes fixed-length token sequences the way SAE training usually does it: documents are
concatenated with an end-of-text separator and cut into rows of `context_len`, each row
starting with BOS. BOS, separators and padding are later masked out of the activations.
"""

from __future__ import annotations

import hashlib
import json
import lzma
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from importlib.resources import files
from typing import Literal

Split = Literal["train", "eval"]

SHIPPED = "shakespeare.jsonl.xz"
EVAL_WORKS = ("tempest_gut", "twelfth_night_gut")
"""Held out from the tiny model's and the SAEs' training; fixed so results stay comparable."""


@lru_cache(maxsize=1)
def _shipped_records() -> tuple[dict[str, str], ...]:
    raw = files("harness.sae").joinpath("data", SHIPPED).read_bytes()
    lines = lzma.decompress(raw).decode("utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


def shipped_texts(split: Split) -> list[str]:
    """The shipped works of one split, in file order."""
    keep = (lambda r: r["id"] in EVAL_WORKS) if split == "eval" else (
        lambda r: r["id"] not in EVAL_WORKS)
    return [r["text"] for r in _shipped_records() if keep(r)]


def shipped_fingerprint() -> str:
    """Content hash of the shipped file: part of every cache key built on it."""
    raw = files("harness.sae").joinpath("data", SHIPPED).read_bytes()
    return hashlib.sha256(raw).hexdigest()[:16]


def hub_texts(dataset_id: str, split: Split) -> Iterator[str]:
    """Documents streamed from a hub dataset; `eval` skips the first 50k documents of `train`.

    Streaming (no full download) is what a user with network would do for the Pile; the
    held-out part is taken from further along the stream because most such datasets ship
    only a train split.
    """
    from datasets import load_dataset  # heavy; only the gpu presets need it

    stream = load_dataset(dataset_id, split="train", streaming=True)
    if split == "eval":
        stream = stream.skip(50_000)
    for row in stream:
        yield row["text"]


def sequences(
    texts: Iterable[str],
    encode: Callable[[list[str]], list[list[int]]],
    *,
    bos_id: int,
    sep_id: int,
    context_len: int,
    max_rows: int,
    docs_per_call: int = 64,
) -> Iterator[list[int]]:
    """Rows of exactly `context_len` ids: [BOS] + the next `context_len - 1` stream tokens.

    The stream is the documents' tokens joined by `sep_id`. Stops after `max_rows` rows; the
    final partial row is dropped, so no padding is ever needed here. A generator, so a
    streamed dataset is tokenized only as far as it is used.
    """
    body = context_len - 1
    produced = 0
    buffer: list[int] = []
    texts = iter(texts)
    while produced < max_rows:
        batch = [t for _, t in zip(range(docs_per_call), texts, strict=False)]
        if not batch:
            return
        for ids in encode(batch):
            buffer.extend(ids)
            buffer.append(sep_id)
        start = 0
        while len(buffer) - start >= body and produced < max_rows:
            yield [bos_id, *buffer[start:start + body]]
            start += body
            produced += 1
        del buffer[:start]
