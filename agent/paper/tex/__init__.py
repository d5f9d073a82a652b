"""What TeX may be given: the LaTeX allowlist and the checks run before compiling.

- `allowlist`: the commands and environments the model's LaTeX may use; anything else is refused
  before TeX runs, naming the command.
- `checks`: citations, figures (only those the renderer drew), duplicates, placeholders,
  environments; with the allowlist's refusals, one list of problems fed back like compile errors.
"""
