"""Is the installed environment complete and consistent? What `pip check` says, and the extras.

The install puts the lock in with `--no-deps` (nothing resolved against the index), so nothing
at install time notices a lock that lacks a package or holds one at a version its dependent
refuses. `pip check` compares each installed distribution's own requirements with what is
installed, but not the requirements an extra brings: `litellm` asks for `httpx[http2]`, and a
lock without `h2` passes it. This walks every installed distribution's requirements, and those
of each extra a dependent (or a root named on the command line) asks for, with markers
evaluated for this interpreter, and exits 1 naming every requirement that is missing or at a
version it does not accept.

    python requirements/check.py ['trusted-scientist[dev,gguf]' ...]
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a lock without `packaging`: the copy inside the venv's pip, which is there
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]


def _requirements(dist: metadata.Distribution, extras: set[str]) -> list[Requirement]:
    """The distribution's requirements that apply here, with the given extras asked for."""
    wanted = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            wanted.append(req)
    return wanted


def problems(roots: list[str]) -> list[str]:
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    # Every installed distribution is checked as installed (no extras); the roots, and every
    # requirement met on the way, add the extras they ask for.
    todo = [(name, frozenset()) for name in installed]
    todo += [(canonicalize_name(r.name), frozenset(r.extras)) for r in map(Requirement, roots)]
    seen: set[tuple[str, frozenset[str]]] = set()
    found: list[str] = []
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = installed.get(name)
        if dist is None:
            found.append(f"{name} is not installed (a root named on the command line)")
            continue
        have = dist.metadata["Name"] + " " + dist.version
        for req in _requirements(dist, set(extras)):
            dep = installed.get(canonicalize_name(req.name))
            if dep is None:
                found.append(f"{have} requires {req}, which is not installed")
            elif not req.specifier.contains(dep.version, prereleases=True):
                found.append(f"{have} requires {req}, but {dep.version} is installed")
            else:
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return sorted(set(found))


def main(argv: list[str]) -> int:
    found = problems(argv)
    for line in found:
        print(f"requirements/check.py: {line}", file=sys.stderr)
    if found:
        print("requirements/check.py: the lock is incomplete or inconsistent: refresh it with "
              "`bash requirements/refresh.sh`, run the tests, commit both lock files",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
