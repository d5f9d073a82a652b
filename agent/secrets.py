"""Finding secrets in files before they are committed.

A `SecretScanner` is built once from the orchestrator's environment: the values of the
variables whose names say they are credentials (and of any variable whose value has the shape
of a key), each also as base64, plus the shapes of common keys. It reads file bytes, text or
binary, in overlapping chunks, so a file of any size is scanned whole.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MatchKind = Literal["value", "base64", "pattern"]
"""value: a credential's value as it is; base64: its base64 encoding; pattern: a key's shape."""

MIN_VALUE_LEN = 8  # shorter values (`0`, `true`, `main`) would match in every file
CHUNK_BYTES = 16 * 2**20  # read at a time; memory stays bounded for files of any size
OVERLAP_BYTES = 4096  # carried between chunks, so a match across a chunk border is found
TEXT_PROBE_BYTES = 8000  # git's rule: a NUL in the first 8000 bytes makes a file binary

_NAME_PARTS = {"KEY", "KEYS", "APIKEY", "TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWD",
               "PASS", "PAT", "CREDENTIAL", "CREDENTIALS", "CREDS", "AUTH", "WEBHOOK", "DSN"}
_NAME_SUFFIXES = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "APIKEY", "ACCESSKEY")
_URL_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?P<user>[^/\s:@]*):(?P<password>[^/\s@]+)@")
KEY_PATTERNS: tuple[tuple[str, re.Pattern[bytes]], ...] = tuple(
    (name, re.compile(regex)) for name, regex in (
        # OpenAI and Anthropic keys are random: one without a digit is a word, not a key.
        ("anthropic_key", rb"sk-ant-(?=[A-Za-z_-]{0,100}[0-9])[A-Za-z0-9_-]{20,}"),
        ("openai_key", rb"sk-(?!ant-)(?=[A-Za-z_-]{0,100}[0-9])[A-Za-z0-9_-]{20,}"),
        ("github_token", rb"gh[pousr]_[A-Za-z0-9]{36}"),
        ("github_pat", rb"github_pat_[A-Za-z0-9_]{22,}"),
        ("aws_access_key_id", rb"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])"),
        ("huggingface_token", rb"hf_[A-Za-z0-9]{30,}"),
        ("slack_token", rb"xox[abprs]-[A-Za-z0-9-]{10,}"),
        ("google_api_key", rb"AIza[0-9A-Za-z_-]{35}"),
        ("private_key", rb"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----"),
    ))
"""Shapes of common keys, found with no variable set: (name reported, regex over bytes).
Each starts with a literal, which keeps the search fast (~1 GB/s); a match must also start a
word (`risk-adjusted-...` holds no `sk-` key), checked after the search for the same reason."""


@dataclass(frozen=True)
class SecretFinding:
    """One secret found in one file."""

    path: str
    """The file, relative to the directory scanned."""
    source: str
    """The environment variable's name (never its value), or the key pattern's name."""
    how: MatchKind
    """How it was found."""
    line: int | None
    """1-based line of the first occurrence in a text file; None in a binary file."""


def is_credential_name(name: str) -> bool:
    """A name that says its value is a credential: a part like KEY, TOKEN, PAT, PASSWORD."""
    parts = [p for p in re.split(r"[^A-Z0-9]+", name.upper()) if p]
    return any(p in _NAME_PARTS or p.endswith(_NAME_SUFFIXES) for p in parts)


def _could_be_secret(value: str) -> bool:
    """Values that would match in files that hold no secret: short ones, plain lowercase
    words and numbers (`disabled`, `20250101`), and paths (`SSH_AUTH_SOCK`,
    `GOOGLE_APPLICATION_CREDENTIALS`: the key file's own contents are found by their shape)."""
    if len(value) < MIN_VALUE_LEN or value.isdigit() or (value.isalpha() and value.islower()):
        return False
    return not (value.startswith(("/", "~")) and os.path.exists(os.path.expanduser(value)))


def base64_forms(value: bytes) -> list[bytes]:
    """The base64 text of `value` at each of the three byte alignments it can have inside a
    longer encoded stream, cut to the characters that depend on `value` alone."""
    forms = []
    for k in range(3):
        encoded = base64.b64encode(b"\0" * k + value)
        forms.append(encoded[math.ceil(8 * k / 6): 8 * (k + len(value)) // 6])
    return forms


class SecretScanner:
    """Finds credential values and key shapes in files."""

    def __init__(self, needles: Mapping[bytes, tuple[str, MatchKind]]) -> None:
        self.needles = dict(needles)
        """Byte string to look for -> (variable name, how)."""
        self.overlap = max([OVERLAP_BYTES, *(len(n) for n in self.needles)])

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SecretScanner:
        needles: dict[bytes, tuple[str, MatchKind]] = {}
        for name in sorted(env):
            for value in _credential_values(name, env[name]):
                raw = value.encode("utf-8", errors="surrogateescape")
                needles.setdefault(raw, (name, "value"))
                for form in base64_forms(raw):
                    needles.setdefault(form, (name, "base64"))
        return cls(needles)

    def names(self) -> list[str]:
        """The variables whose values are looked for."""
        return sorted({name for name, _ in self.needles.values()})

    def scan_file(self, root: Path, rel: str) -> list[SecretFinding]:
        """Findings in `root/rel`; a symbolic link is scanned as git stores it: its target. A
        PDF is also scanned as a reader sees it (its text, decompressed, from pdftotext): its
        streams are compressed, so its bytes alone would hide what is typeset."""
        path = root / rel
        if path.is_symlink():
            target = os.fsencode(os.readlink(path))
            return self.scan_chunks(rel, [target])
        with open(path, "rb") as f:
            found = self.scan_chunks(rel, iter(lambda: f.read(CHUNK_BYTES), b""))
        if rel.lower().endswith(".pdf"):
            from agent import pdftools

            text = pdftools.text(path).text
            # as typeset, and with every space and line break taken out (a value may be cut
            # by a line break or hyphenation); key shapes only in the first, where words stay apart
            flat = "".join(text.replace("-\n", "").split())
            typeset = self.scan_chunks(rel, [text.encode("utf-8", errors="surrogateescape")])
            typeset += self.scan_chunks(rel, [flat.encode("utf-8", errors="surrogateescape")], shapes=False)
            seen = {(f.source, f.how) for f in found}
            for hit in typeset:
                if (hit.source, hit.how) not in seen:
                    seen.add((hit.source, hit.how))
                    found.append(SecretFinding(rel, hit.source, hit.how, None))
        return found

    def scan_chunks(self, rel: str, chunks: Iterable[bytes], shapes: bool = True) -> list[SecretFinding]:
        """Findings in the concatenation of `chunks`, one per (source, how), first line kept;
        without `shapes`, the credential values only (no key patterns)."""
        found: dict[tuple[str, MatchKind], int | None] = {}
        is_text: bool | None = None
        buf, lines_before = b"", 0  # `buf` starts with the tail of the previous chunk
        for chunk in chunks:
            buf += chunk
            if is_text is None:
                is_text = b"\0" not in buf[:TEXT_PROBE_BYTES]
            self._search(buf, found, lines_before if is_text else None, shapes)
            keep = min(len(buf), self.overlap)
            lines_before += buf.count(b"\n", 0, len(buf) - keep)
            buf = buf[len(buf) - keep:]
        return [SecretFinding(rel, source, how, line) for (source, how), line in found.items()]

    def _search(self, buf: bytes, found: dict[tuple[str, MatchKind], int | None],
                lines_before: int | None, shapes: bool = True) -> None:
        """Add to `found` what `buf` holds; `lines_before` counts the newlines before it in
        a text file (None: binary, no line numbers)."""
        first: dict[tuple[str, MatchKind], int] = {}  # earliest offset in `buf` per source
        for needle, key in self.needles.items():
            if key not in found and (pos := buf.find(needle)) >= 0:
                first[key] = min(pos, first.get(key, pos))
        for name, pattern in KEY_PATTERNS if shapes else ():
            if (name, "pattern") not in found and (pos := _word_start_match(pattern, buf)) >= 0:
                first[(name, "pattern")] = pos
        for key, pos in first.items():
            found[key] = None if lines_before is None else lines_before + buf.count(b"\n", 0, pos) + 1


def _word_start_match(pattern: re.Pattern[bytes], buf: bytes) -> int:
    """Where the first match of `pattern` not preceded by a letter or digit starts, or -1."""
    pos = 0
    while (m := pattern.search(buf, pos)) is not None:
        if m.start() == 0 or not buf[m.start() - 1: m.start()].isalnum():
            return m.start()
        pos = m.start() + 1
    return -1


def _credential_values(name: str, value: str) -> list[str]:
    """What of `name=value` is secret: the value of a credential-named variable or of one
    shaped like a key, and the `user:password` of a URL that carries one."""
    values = []
    raw = value.encode("utf-8", errors="surrogateescape")
    if is_credential_name(name) or any(_word_start_match(p, raw) >= 0 for _, p in KEY_PATTERNS):
        values.append(value)
    url = _URL_USERINFO.match(value)
    if url is not None:
        values += [value, f"{url['user']}:{url['password']}", url["password"]]
    return [v for v in dict.fromkeys(values) if _could_be_secret(v)]
