"""Where a child process runs: locally (`agent.runner.run`) or as a SLURM job
(`agent.executors.slurm.SlurmExecutor`), with one contract: argv in, a `RunOutcome` out."""
