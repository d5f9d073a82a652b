"""Where LLM-written input is handled: a bubblewrap sandbox, and an environment from an allowlist.

Every process that runs or reads what the LLM wrote runs confined: an experiment, its
evaluation and `plot.py`, and the tools that read the paper (pdflatex, bibtex, chktex,
pdftoppm, pdftotext). Each has its own PID namespace (it cannot see the orchestrator's
processes, nor read `/proc/<pid>/environ`), no network, a private `/tmp` and an empty `HOME`,
and GPU device nodes passed through when present. Its filesystem is an **allowlist**: the
system (`/usr`, the libraries, a named part of `/etc`, TeX's formats) read-only; for Python
children also the interpreter, the virtual environment and the project's code; then only
what the caller names: `visible` read-only (the run directory, the harness's caches) and
`writable` (an experiment: `run_i/`; `plot.py`: the run directory, its `.git` and journal
excepted; pdflatex: `latex/`). Nothing else of the machine is there: no home files, no other
run, no `/root`, no `/etc/shadow`, whatever they are called.

The harness's caches (activations, models, zero-ablation sums) are read-only to all of them:
`harness.sae.prepare` fills them beforehand in a process of its own that runs no LLM-edited
code, the only one with the network (a hub preset's downloads). A child's environment holds
only the variables named below (never "everything but known secrets"), plus those its
template lists in `pass_env`.

Without bubblewrap, or where it cannot create namespaces (some clusters and laptops), the
launch says so loudly and runs children with the allowlisted environment only.
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.secrets import is_credential_name

BWRAP = "bwrap"

ALLOWED_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TERM", "SHELL", "TMPDIR",
    "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
    "PYTHONWARNINGS", "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "CUDA_PATH", "LD_LIBRARY_PATH",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE",
    "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_OFFLINE",
    "TRANSFORMERS_CACHE", "TOKENIZERS_PARALLELISM", "TORCH_HOME", "XDG_CACHE_HOME",
    "MPLBACKEND", "MPLCONFIGDIR", "LITELLM_LOCAL_MODEL_COST_MAP",
})
"""Variables an experiment may see, by exact name."""

ALLOWED_PREFIXES = ("LC_", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "GOTO_", "NVIDIA_", "CUBLAS_",
                    "CUDNN_", "NCCL_", "PYTORCH_", "HARNESS_", "EXPERIMENT_", "MALLOC_")
"""Variables an experiment may see, by prefix: threading, allocators, devices, the harness."""


def child_env(base: Mapping[str, str], extra: Mapping[str, str] | None = None,
              pass_env: Iterable[str] = ()) -> dict[str, str]:
    """The environment of a child: the allowlisted part of `base`, the template's `pass_env`
    names, then `extra` (set by the orchestrator itself)."""
    passed = set(pass_env)
    # A prefix admits a family (HARNESS_*), never a credential inside it (HARNESS_HUB_TOKEN).
    env = {k: v for k, v in base.items()
           if k in ALLOWED_NAMES or k in passed
           or (k.startswith(ALLOWED_PREFIXES) and not is_credential_name(k))}
    env["PYTHONUNBUFFERED"] = "1"
    # Idle OpenMP threads spin by default and starve everything else on a small machine;
    # it must be set before torch loads, so the child cannot do it itself.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if extra:
        env.update(extra)
    return env


SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/sys",
          "/var/lib/texmf", "/var/cache/fontconfig")
"""Read-only in every sandbox where present (top-level links such as `/bin -> usr/bin` are
recreated as links). `/var/lib/texmf` holds TeX's formats; `/sys` what torch and CUDA read
about the hardware."""

ETC = ("alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "fonts", "texmf",
       "ssl/certs", "ssl/openssl.cnf", "ca-certificates", "ca-certificates.conf", "passwd",
       "group", "nsswitch.conf", "host.conf", "hosts", "localtime", "timezone", "mime.types",
       "os-release", "debian_version", "papersize", "paperspecs", "matplotlibrc", "magic",
       "protocols", "services", "python3", "chktexrc")
"""The part of `/etc` a sandbox sees (plus `python3.*`): the loader's cache, fonts, TeX's and
chktex's configuration, certificates, names of users and zones. Not the rest (`shadow`,
`ssh/`, `ssl/private`, whatever a machine keeps there)."""


@dataclass(frozen=True)
class Sandbox:
    """How to confine one child process."""

    writable: tuple[Path, ...]
    """Directories the child may write (its output directory); all else is read-only or absent."""
    network: bool = False
    """Whether the child keeps the network (the harness's preparation of a hub preset)."""
    readonly: tuple[Path, ...] = ()
    """Paths inside a writable directory that stay read-only (the run's `.git` and journal:
    a child that could write `.git/config` or a hook would run code outside the sandbox the
    next time the orchestrator calls git)."""
    visible: tuple[Path, ...] = ()
    """Files and directories the child may read beyond the system (the run directory, the
    harness's caches); nothing else of the machine is in its view."""
    python: bool = True
    """Whether the interpreter, its environment and the project's code are in view (False for
    pdflatex, bibtex, chktex, pdftoppm and pdftotext)."""

    def wrap(self, argv: list[str], cwd: Path, tmp: Path | None = None) -> list[str]:
        """`argv` run under bubblewrap, in `cwd` (which must be in view); `tmp`, if given, is
        its private scratch directory (the runner points TMPDIR at it)."""
        cmd = [BWRAP, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--dev", "/dev", "--proc", "/proc", *system_view()]
        if not self.network:
            cmd.append("--unshare-net")
        for node in gpu_nodes():
            cmd += ["--dev-bind", str(node), str(node)]
        home = Path(os.path.expanduser("~"))
        cmd += ["--tmpfs", "/tmp"] + (["--tmpfs", str(home)] if home != Path("/") else [])
        if tmp is not None:
            cmd += ["--bind", str(tmp), str(tmp)]
        views = [(p, "--ro-bind") for p in (*(python_view() if self.python else ()), *self.visible)
                 if p.exists()]
        for path in self.writable:
            path.mkdir(parents=True, exist_ok=True)
            views.append((path, "--bind"))
        # parents before what they hold, so a writable run_i inside a visible run directory wins
        for path, how in sorted(views, key=lambda v: (len(v[0].parts), v[1] == "--bind")):
            cmd += [how, str(path), str(path)]
        for path in self.readonly:
            if path.exists():
                cmd += ["--ro-bind", str(path), str(path)]
        shown = [p for p, _ in views]
        for path in credential_files():
            if any(path.is_relative_to(p) for p in shown):
                cmd += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
        # the skeleton bubblewrap built its views on, /tmp around the scratch folder and the
        # empty HOME: read-only (caches go to the scratch folder, see `scratch_env`)
        cmd += ["--remount-ro", "/", "--remount-ro", "/tmp"]
        cmd += ["--remount-ro", str(home)] if home != Path("/") else []
        return [*cmd, "--chdir", str(cwd), "--", *argv]


def scratch_env(scratch: Path) -> dict[str, str]:
    """Where a sandboxed child keeps temporary files and caches: its private scratch folder
    (HOME is empty and read-only)."""
    return {"TMPDIR": str(scratch), "XDG_CACHE_HOME": str(scratch / ".cache"),
            "MPLCONFIGDIR": str(scratch / ".matplotlib"),
            # fonts TeX makes on the fly (a paper in T1 encoding without cm-super)
            "TEXMFVAR": str(scratch / "texmf-var")}


def tool(*, write: Path | None = None, read: tuple[Path, ...] = ()) -> Sandbox | None:
    """The sandbox of a tool that reads what the LLM wrote (pdflatex, bibtex, chktex, pdftoppm,
    pdftotext): the system, `read` read-only, `write` writable, no Python, nothing else; None
    where bubblewrap cannot run here (the tool then runs with the allowlisted environment
    only, as experiments do unsandboxed)."""
    if not _confinable():
        return None
    return Sandbox(writable=(write,) if write is not None else (), visible=read, python=False)


@functools.lru_cache(maxsize=1)
def _confinable() -> bool:
    return check().available


@functools.lru_cache(maxsize=1)
def system_view() -> tuple[str, ...]:
    """bubblewrap arguments showing the system read-only (see SYSTEM and ETC)."""
    args: list[str] = []
    for top in SYSTEM:
        path = Path(top)
        if path.is_symlink() and path.parent == Path("/"):
            args += ["--symlink", os.readlink(path), top]
        elif path.exists():
            args += ["--ro-bind", top, top]
    etc = Path("/etc")
    names = [*ETC, *(p.name for p in etc.glob("python3.*"))]
    for name in names:
        path = etc / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return tuple(args)


@functools.lru_cache(maxsize=1)
def python_view() -> tuple[Path, ...]:
    """What a Python child needs to see: this interpreter's prefixes and site-packages (a
    virtual environment and its base, wherever they are), and the project's own packages
    (`harness` and `agent`, imported from the source tree by an editable install). The same
    for every child of this process, so found once."""
    import agent

    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             *site.getsitepackages(), *(sysconfig.get_path(k) for k in ("stdlib", "platstdlib", "purelib", "platlib"))}
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        found.add(site.getusersitepackages())
    paths = {Path(p).resolve() for p in found if p} | {Path(p) for p in found if p}
    paths |= {Path(agent.__file__).resolve().parent, harness_folder()}
    return _outermost(paths)


def harness_folder() -> Path:
    """The folder that holds the trusted harness package (`experiment/` in the source tree)."""
    from harness.provenance import PACKAGE

    return PACKAGE.parent


def _outermost(paths: Iterable[Path]) -> tuple[Path, ...]:
    kept: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return tuple(kept)


CREDENTIAL_FILES = (".netrc", ".git-credentials", ".pypirc", ".npmrc", ".docker/config.json",
                    ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".config/gcloud", ".config/gh",
                    ".config/hub", ".huggingface/token", ".cache/huggingface/token")
"""Under $HOME: files and folders that hold credentials, shown empty where something in view
holds them (a Hugging Face cache shown to a hub preset's preparation holds its token). The
home folder itself is never in view: this list is a second fence, not the first."""


def credential_files() -> list[Path]:
    """The credential files and folders present on this machine (see CREDENTIAL_FILES), and
    the Hugging Face token file where HF_HOME or HF_TOKEN_PATH put it."""
    home = Path(os.path.expanduser("~"))
    found = [home / rel for rel in CREDENTIAL_FILES]
    if os.environ.get("HF_HOME"):
        found.append(Path(os.environ["HF_HOME"]) / "token")
    if os.environ.get("HF_TOKEN_PATH"):
        found.append(Path(os.environ["HF_TOKEN_PATH"]))
    return [p for p in dict.fromkeys(found) if p.exists() and not p.is_symlink()]


def hub_cache() -> Path:
    """Where the Hugging Face libraries keep downloads (their own environment variables first)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return Path(home)


def gpu_nodes() -> list[Path]:
    """NVIDIA device nodes to pass through (none on a CPU machine)."""
    dev = Path("/dev")
    return sorted(p for p in dev.glob("nvidia*") if not p.is_dir()) + \
        ([dev / "dri"] if (dev / "dri").is_dir() else [])


@dataclass(frozen=True)
class SandboxCheck:
    """Whether experiments can be sandboxed here."""

    available: bool
    reason: str
    """What is missing when not available, and what to do; a summary when it is."""


def check(probe_dir: Path | None = None) -> SandboxCheck:
    """Start one sandboxed `true` to see that bubblewrap exists and can make namespaces."""
    if shutil.which(BWRAP) is None:
        return SandboxCheck(False, "bubblewrap is not installed (Debian/Ubuntu: apt-get install "
                                   "bubblewrap)")
    where = probe_dir or Path("/")
    argv = Sandbox(writable=(), visible=(where,) if probe_dir else ()).wrap(["true"], where)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False,
                              env=child_env(os.environ))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxCheck(False, f"bubblewrap could not start ({exc})")
    if proc.returncode != 0:
        said = " ".join(proc.stderr.split())[:300]
        return SandboxCheck(False, f"bubblewrap cannot create namespaces here ({said}); user "
                                   "namespaces may be disabled (kernel.unprivileged_userns_clone)")
    return SandboxCheck(True, "PID and network namespaces; in view only the system, Python and "
                              "what each process handles (the run's output directory writable), "
                              "a private TMPDIR and an empty HOME; allowlisted environment")
