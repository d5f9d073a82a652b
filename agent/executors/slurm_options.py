"""What each SLURM job asks for: `--executor slurm`'s flags, or a TOML file of them."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from agent.errors import UsageError

TIME_LIMIT_MARGIN_S = 180  # SLURM's time limit, when not given, is timeout_s plus this


@dataclass(frozen=True)
class SlurmOptions:
    """What each job asks SLURM for (`--executor slurm` flags, or a TOML file)."""

    partition: str | None = None
    """`--partition`; None: the cluster's default."""
    gres: str | None = None
    """`--gres`, e.g. `gpu:1`."""
    cpus_per_task: int | None = None
    """`--cpus-per-task`."""
    mem: str | None = None
    """`--mem`, e.g. `4G`."""
    time_min: int | None = None
    """`--time` in minutes; None: the run's timeout plus 3 minutes."""
    extra: tuple[str, ...] = ()
    """More sbatch options as `--key=value` or `--flag`, e.g. `--account=ml`, `--qos=high`."""

    def __post_init__(self) -> None:
        for line in self.extra:
            if not line.startswith("--") or line[2:].split("=", 1)[0].strip() in ("", "export"):
                raise UsageError(f"SLURM option {line!r}: give sbatch options as --key=value or "
                                 "--flag (--export is set by the executor: no credential reaches a job)")

    @classmethod
    def from_file(cls, path: Path, **overrides: Any) -> SlurmOptions:
        """Options from a TOML file (keys as the fields above, at the top or under `[slurm]`),
        then `overrides` that are not None (command-line flags win over the file)."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"{path}: cannot read SLURM options ({exc})") from exc
        data = data.get("slurm", data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"{path}: unknown SLURM option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        data["extra"] = tuple(data.get("extra", ()))
        return cls(**data)

    def sbatch(self, *, name: str, cwd: Path, timeout_s: float) -> dict[str, Any]:
        """submitit's parameters for one job (sbatch's, with `_` for `-`)."""
        time_min = self.time_min or math.ceil((timeout_s + TIME_LIMIT_MARGIN_S) / 60)
        extra: dict[str, Any] = {
            # The job's environment is sbatch's, which is allowlisted (see the module docstring).
            "export": "ALL",
            # A job lost with its node or preempted ends, and the caller decides to retry
            # (journaled), instead of SLURM silently running it a second time.
            "no_requeue": True,
            "chdir": str(cwd),
        }
        for key in ("partition", "gres", "cpus_per_task", "mem"):
            if getattr(self, key) is not None:
                extra[key] = getattr(self, key)
        for line in self.extra:
            key, sep, value = line[2:].partition("=")
            extra[key.strip().replace("-", "_")] = value if sep else True
        # use_srun=False: the batch script runs submitit's Python itself (one step fewer, ~1 s
        # less; the child is tracked by SLURM as part of the batch step).
        return {"job_name": name, "time": time_min, "use_srun": False,
                "additional_parameters": extra}
