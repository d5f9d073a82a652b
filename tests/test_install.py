"""The install is locked: the README's command installs the lock, CI runs that very command,
and the environment the tests run in is exactly what the lock says."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

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


# --- the install against an index that moved on ---------------------------------------------
# A package index of the test's own (a PEP 503 directory index of wheels made here) that holds,
# besides the locked releases, a newer release of a locked package that another locked package
# asks for with an extra: the situation in which pip, resolving in hash mode, picked httpx
# 0.29.0 for litellm's `httpx[http2]` and failed every fresh install.


def _wheel(folder: Path, name: str, version: str, requires: list[str] = (),
           extras: list[str] = ()) -> Path:
    """A minimal pure-Python wheel of `name` at `version`, with the given Requires-Dist."""
    import base64
    import hashlib
    import zipfile

    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n",
        f"{info}/METADATA": "\n".join(
            ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             *(f"Provides-Extra: {e}" for e in extras), *(f"Requires-Dist: {r}" for r in requires)]
        ) + "\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def moved_index(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """lockdemo-app 1.0 needs lockdemo-lib[fast]>=1.0; the lock holds lockdemo-lib 1.0 and
    the extra's lockdemo-speedups 1.0; the index also has lockdemo-lib 1.1, published later."""
    root = tmp_path_factory.mktemp("index")
    files = root / "files"
    files.mkdir()
    wheels = {
        "app": _wheel(files, "lockdemo-app", "1.0", ["lockdemo-lib[fast]<2,>=1.0"]),
        "lib": _wheel(files, "lockdemo-lib", "1.0", ['lockdemo-speedups>=1.0; extra == "fast"'], ["fast"]),
        "lib_newer": _wheel(files, "lockdemo-lib", "1.1", ['lockdemo-speedups>=1.0; extra == "fast"'], ["fast"]),
        "speedups": _wheel(files, "lockdemo-speedups", "1.0"),
        "lib_old": _wheel(files, "lockdemo-lib", "0.9", [], ["fast"]),
    }
    for project in ("lockdemo-app", "lockdemo-lib", "lockdemo-speedups"):
        page = root / "simple" / project
        page.mkdir(parents=True)
        links = [f'<a href="../../files/{w.name}#sha256={_sha256(w)}">{w.name}</a>'
                 for w in sorted(files.iterdir()) if w.name.startswith(project.replace("-", "_") + "-")]
        (page / "index.html").write_text("<html><body>\n" + "\n".join(links) + "\n</body></html>\n")
    return {"root": root, **wheels}


def _entry(wheel: Path) -> str:
    name, version = wheel.name.split("-")[:2]
    return f"{name.replace('_', '-')}=={version} \\\n    --hash=sha256:{_sha256(wheel)}\n"


def _install_like_the_readme(tmp: Path, index: Path, torch_lock: list[Path], lock: list[Path],
                             drop: str = "") -> tuple[subprocess.CompletedProcess[str], Path]:
    """The README's install command, with `apt-get` and the project's own editable install left
    out, run in a folder whose requirements/ holds the given locks and with pip pointed at the
    test's index only (no machine configuration, no cache)."""
    (tmp / "requirements").mkdir(parents=True)
    (tmp / "requirements" / "torch-cpu.txt").write_text("".join(map(_entry, torch_lock)))
    (tmp / "requirements" / "lock.txt").write_text("".join(map(_entry, lock)))
    shutil.copy(REPO / "requirements" / "check.py", tmp / "requirements" / "check.py")
    steps = [s.strip() for s in _readme_install_command().split("&&")]
    steps = [s for s in steps if not s.startswith("apt-get") and "-e ." not in s]
    if drop:
        steps = [s.replace(drop, "") for s in steps]
    steps = [s.replace("'trusted-scientist[dev,gguf]'", "") for s in steps]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_INDEX_URL=(index / "simple").as_uri())
    proc = subprocess.run(["bash", "-c", " && ".join(steps)], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=300)
    return proc, tmp / ".venv" / "bin" / "python"


def _installed(python: Path, name: str) -> str | None:
    out = subprocess.run([str(python), "-c", "import importlib.metadata as m, sys\n"
                          "try: print(m.version(sys.argv[1]))\nexcept m.PackageNotFoundError: print('-')",
                          name], capture_output=True, text=True, check=True).stdout.strip()
    return None if out == "-" else out


@pytest.mark.slow
def test_the_readme_install_takes_the_locked_release_when_the_index_has_a_newer_one(moved_index, tmp_path):
    app, lib, speedups = moved_index["app"], moved_index["lib"], moved_index["speedups"]
    proc, python = _install_like_the_readme(tmp_path / "readme", moved_index["root"], [app], [lib, speedups])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _installed(python, "lockdemo-lib") == "1.0"
    assert _installed(python, "lockdemo-speedups") == "1.0"
    assert _installed(python, "lockdemo-app") == "1.0"
    # The hazard is real on this pip: the same command without --no-deps resolves the extra's
    # requirement against the index, finds 1.1, and refuses it in hash mode.
    proc, python = _install_like_the_readme(tmp_path / "resolving", moved_index["root"], [app],
                                            [lib, speedups], drop="--no-deps ")
    assert proc.returncode != 0 and _installed(python, "lockdemo-lib") != "1.0"
    assert "lockdemo-lib" in proc.stderr and "1.1" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_the_readme_install_fails_on_an_incomplete_or_inconsistent_lock(moved_index, tmp_path):
    app, lib, speedups = moved_index["app"], moved_index["lib"], moved_index["speedups"]
    cases = {
        "base": ([speedups], "lockdemo-app 1.0 requires lockdemo-lib"),  # app's own dependency missing
        "extra": ([lib], "lockdemo-lib 1.0 requires lockdemo-speedups"),      # what pip check misses
        "version": ([moved_index["lib_old"], speedups], "but 0.9 is installed"),
    }
    for case, (lock, said) in cases.items():
        proc, _ = _install_like_the_readme(tmp_path / case, moved_index["root"], [app], lock)
        assert proc.returncode != 0, f"{case}: an incomplete lock installed"
        assert said in proc.stderr and "refresh" in proc.stderr, f"{case}: {proc.stderr}"
