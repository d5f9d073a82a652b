"""The launch configuration: every flag, in one frozen record saved in the journal."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.llm.records import LLMSettings

STAGES = ("experiment", "plot", "writeup", "review")
"""Stages after the run directory and baseline are prepared, in order."""


@dataclass(frozen=True)
class LaunchConfig:
    """What the user asked for; recorded as the first journal event and reused on --resume."""

    idea: str | None = None
    """Idea name (file stem under templates/*/ideas/)."""
    template: str | None = None
    """Restrict the idea lookup to this template."""
    model: str | None = None
    """litellm model string, or `replay:PATH`; None = resolve from the environment."""
    api_base: str | None = None
    """OpenAI-compatible server URL."""
    max_runs: int = 5
    """Experiment runs after the baseline."""
    max_attempts: int = 4
    """Executions per run (a failed run is fixed and retried)."""
    timeout_s: float | None = None
    """Per-run timeout in seconds; None = the template's / preset's."""
    seeds: int | None = None
    """Seeds per run (each run trained and evaluated this many times); None = the preset's /
    template's (3 unless they say otherwise)."""
    seed_jobs: int | None = None
    """Seeds of one run executed at once; None = all of them."""
    devices: str | None = None
    """GPUs to use, as CUDA indices (`0,2,3`); None = every GPU torch sees (none: the CPU)."""
    executor: str = "local"
    """Where experiments and evaluations run: `local` processes, or `slurm` jobs (submitit)."""
    slurm_partition: str | None = None
    slurm_gres: str | None = None
    slurm_cpus: int | None = None
    slurm_mem: str | None = None
    slurm_time_min: int | None = None
    slurm_sbatch: tuple[str, ...] = ()
    """More sbatch options, `--key=value` each."""
    slurm_config: str | None = None
    """A TOML file of SLURM options (flags win over it)."""
    preset: str | None = None
    """Experiment preset (tiny, cpu, gpu); None = the harness's default for this machine."""
    max_cost_usd: float | None = None
    """Stop cleanly before an LLM call would push the cost past this."""
    tpm_limit: int | None = None
    """Client-side tokens-per-minute budget."""
    price_per_mtok: tuple[float, float] | None = None
    """(input, output) USD per million tokens for a model litellm has no price for."""
    llm_timeout_s: float = 300.0
    """Seconds one LLM request may take before it counts as a (retried) timeout."""
    preflight_call: bool = True
    """Make one minimal LLM request at launch to check the key and the model."""
    sandbox: bool = True
    """Run experiments and plots under bubblewrap (False: --no-sandbox, said at launch)."""
    runs_dir: str = "runs"
    """Where run directories are created."""
    stages: tuple[str, ...] = STAGES
    """Stages to run, in order."""
    quiet: bool = False
    """No live status line."""
    max_reflections: int = 3
    """Times a failed edit or lint error is sent back to the LLM per turn."""
    allow_failing_gates: bool = False
    """Write the paper even when runs fail the plausibility gates (the paper says so)."""
    literature_search: bool = False
    """Let the writeup search the literature (`agent.literature`: Semantic Scholar, OpenAlex,
    arXiv; cached in the run's `literature/`, committed; skipped when a session is replayed)."""
    allow_not_novel: bool = False
    """Run an idea whose novelty check found it "not novel" (refused otherwise)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stages"] = list(self.stages)
        data["slurm_sbatch"] = list(self.slurm_sbatch)
        return data

    def slurm_options(self) -> Any:
        """The SLURM job options (`agent.executors.slurm.SlurmOptions`): the config file's,
        overridden by the flags; a UsageError names what is wrong."""
        from agent.executors.slurm import SlurmOptions

        if self.slurm_config:
            flags = {"partition": self.slurm_partition, "gres": self.slurm_gres,
                     "cpus_per_task": self.slurm_cpus, "mem": self.slurm_mem,
                     "time_min": self.slurm_time_min}
            options = SlurmOptions.from_file(Path(self.slurm_config), **flags)
            return replace(options, extra=(*options.extra, *self.slurm_sbatch))
        return SlurmOptions(partition=self.slurm_partition, gres=self.slurm_gres,
                            cpus_per_task=self.slurm_cpus, mem=self.slurm_mem,
                            time_min=self.slurm_time_min, extra=self.slurm_sbatch)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaunchConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "stages" in values:
            values["stages"] = tuple(values["stages"])
        if values.get("slurm_sbatch") is not None:
            values["slurm_sbatch"] = tuple(values["slurm_sbatch"])
        if values.get("price_per_mtok") is not None:
            values["price_per_mtok"] = tuple(values["price_per_mtok"])
        return cls(**values)

    def llm_settings(self, model: str) -> LLMSettings:
        """How the LLM client reaches `model` under these flags."""
        from agent.llm.records import LLMSettings

        return LLMSettings(model=model, api_base=self.api_base, timeout_s=self.llm_timeout_s,
                           tpm_limit=self.tpm_limit, max_cost_usd=self.max_cost_usd,
                           price_per_mtok=self.price_per_mtok)

    @property
    def runs_path(self) -> Path:
        return Path(self.runs_dir)
