"""The paper side of the loop: numbers from data, checks before and after compiling.

- `spec`: what the paper side needs to know of a metric (name, label, direction, format).
- `results_tex`: `latex/results.tex`, one macro per number and a booktabs results table.
- `evidence`, `grounding`, `claims`: every number and run claim in the prose must trace to a
  result file; `findings` are what goes back to the LLM and into `review.json`.
- `prose`, `texnum`: LaTeX read as prose; the numbers, run references and counts in it.
- `checks`: pre-compile checks (citations, figures, duplicates, placeholders, environments).
- `compile`: pdflatex + bibtex + chktex through `agent.runner`, errors returned as values.
- `sections`: the parts of the paper in drafting order and the skeleton stubs they replace.

Importing this package imports no heavy library (pylatex is imported inside functions).
"""
