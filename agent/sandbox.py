"""Where LLM-edited code runs: a bubblewrap sandbox, and an environment built from an allowlist.

An experiment, its evaluation or `plot.py` runs with its own PID namespace (it cannot see the
orchestrator's processes, nor read `/proc/<pid>/environ`), no network, `/` read-only except
its own output directory (an experiment and its evaluator: `run_i/`; `plot.py`: the run
directory, its `.git` and journal excepted), a private `/tmp`, and GPU device nodes passed
through when present. The harness's caches (activations, models, zero-ablation sums) are
read-only to all of them: `harness.prepare` fills them beforehand in a process of its own
that runs no LLM-edited code, the only one with the network (a hub preset's downloads). Its environment holds
only the variables named below (never "everything but known secrets"), plus those its
template lists in `pass_env`.

Without bubblewrap, or where it cannot create namespaces (some clusters and laptops), the
launch says so loudly and runs children with the allowlisted environment only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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


@dataclass(frozen=True)
class Sandbox:
    """How to confine one child process."""

    writable: tuple[Path, ...]
    """Directories the child may write (its output directory); all else is read-only."""
    network: bool = False
    """Whether the child keeps the network (the harness's preparation of a hub preset)."""
    readonly: tuple[Path, ...] = ()
    """Paths inside a writable directory that stay read-only (the run's `.git` and journal:
    a child that could write `.git/config` or a hook would run code outside the sandbox the
    next time the orchestrator calls git)."""

    def wrap(self, argv: list[str], cwd: Path, tmp: Path | None = None) -> list[str]:
        """`argv` run under bubblewrap, in `cwd`; `tmp`, if given, is its private scratch
        directory (the runner points TMPDIR at it). The host's /tmp stays visible, read-only:
        a repository or run directory may live there."""
        cmd = [BWRAP, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        if tmp is not None:
            cmd += ["--bind", str(tmp), str(tmp)]
        if not self.network:
            cmd.append("--unshare-net")
        for node in gpu_nodes():
            cmd += ["--dev-bind", str(node), str(node)]
        for path in self.writable:
            path.mkdir(parents=True, exist_ok=True)
            cmd += ["--bind", str(path), str(path)]
        for path in self.readonly:
            if path.exists():
                cmd += ["--ro-bind", str(path), str(path)]
        for path in credential_files():
            cmd += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
        return [*cmd, "--chdir", str(cwd), "--", *argv]


CREDENTIAL_FILES = (".netrc", ".git-credentials", ".pypirc", ".npmrc", ".docker/config.json",
                    ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".config/gcloud", ".config/gh",
                    ".config/hub", ".huggingface/token", ".cache/huggingface/token")
"""Under $HOME: files (shown empty) and folders (shown empty) that hold credentials. The rest
of / stays readable, so the child could otherwise copy a key into its run directory."""


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
    argv = Sandbox(writable=()).wrap(["true"], where)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False,
                              env=child_env(os.environ))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxCheck(False, f"bubblewrap could not start ({exc})")
    if proc.returncode != 0:
        said = " ".join(proc.stderr.split())[:300]
        return SandboxCheck(False, f"bubblewrap cannot create namespaces here ({said}); user "
                                   "namespaces may be disabled (kernel.unprivileged_userns_clone)")
    return SandboxCheck(True, "PID and network namespaces, read-only / except the run's output "
                              "directory and a private TMPDIR, allowlisted environment")
