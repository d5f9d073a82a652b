"""The install is locked: the README's command installs the lock, CI runs that very command,
and the environment the tests run in is exactly what the lock says."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from tests.conftest import REPO

LOCKS = (REPO / "requirements" / "lock.txt", REPO / "requirements" / "torch-cpu.txt")
_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock_entries(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) for every entry of a lock file."""
    entries: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in path.read_text().splitlines():
        match = _ENTRY.match(line)
        if match:
            name = _canonical(match.group(1))
            entries[name] = (match.group(2), [])
        elif name and line.strip().startswith("--hash=sha256:"):
            entries[name][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
    return entries


def _readme_install_command() -> str:
    text = (REPO / "README.md").read_text()
    return next(line for line in text.splitlines() if line.startswith("apt-get update"))


def test_every_locked_package_is_pinned_with_hashes() -> None:
    for path in LOCKS:
        entries = _lock_entries(path)
        assert entries, f"{path} has no entries"
        unhashed = sorted(n for n, (_, hashes) in entries.items() if not hashes)
        assert unhashed == [], f"{path.name}: entries without hashes: {unhashed}"
        assert all(len(h) == 64 for _, hashes in entries.values() for h in hashes)
    assert list(_lock_entries(LOCKS[1])) == ["torch"]
    assert _lock_entries(LOCKS[1])["torch"][0].startswith("2.13.0")
    assert "torch" not in _lock_entries(LOCKS[0]), "torch is locked once, in torch-cpu.txt"


def test_the_lock_covers_every_dependency_pyproject_names() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"],
              *project["optional-dependencies"]["gguf"]]
    locked = {**_lock_entries(LOCKS[0]), **_lock_entries(LOCKS[1])}
    names = {_canonical(re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0]) for req in wanted}
    assert sorted(names - set(locked)) == []
    assert not any(n.startswith(("nvidia-", "triton")) for n in locked), "a CUDA package was locked"


def test_the_environment_is_exactly_the_lock() -> None:
    """What the tests run against is what a fresh machine installs: every locked package at
    its locked version (this fails if the install command stops using the lock)."""
    locked = {**_lock_entries(LOCKS[0]), **_lock_entries(LOCKS[1])}
    wrong = {}
    for name, (version, _) in locked.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert wrong == {}, f"locked vs installed: {wrong}"


def test_readme_and_ci_install_the_lock_and_nothing_unpinned() -> None:
    command = _readme_install_command()
    assert command in (REPO / ".ci" / "run").read_text(), "CI must run the README's install"
    pip_calls = [c for c in command.split("&&") if "pip install" in c]
    assert any("--require-hashes" in c and "requirements/lock.txt" in c
               and "requirements/torch-cpu.txt" in c for c in pip_calls)
    # The project itself goes in without resolving anything (its dependencies are the lock's)
    # and without an isolated build that would fetch an unpinned setuptools.
    project = [c for c in pip_calls if "-e ." in c]
    assert project and all("--no-deps" in c and "--no-build-isolation" in c for c in project)
