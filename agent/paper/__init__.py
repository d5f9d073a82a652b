"""The paper side of the loop: numbers from data, checks before and after compiling.

- `spec`: what the paper side needs to know of a metric (name, label, direction, format).
- `results_tex`: `latex/results.tex`, one macro per number and a booktabs results table.
- `evidence`, `grounding`, `claims`: every number and run claim in the prose must trace to a
  result file; `findings` are what goes back to the LLM and into `review.json`.
- `reading`, `mentions`: the paper read once with pylatexenc into sentences, and the typed
  number mentions of each sentence.
- `prose`, `texnum`: LaTeX as a prose view, and the run references and counts claims are about.
- `checks`: pre-compile checks (citations, figures, duplicates, placeholders, environments).
- `compile`: pdflatex + bibtex + chktex through `agent.runner`, errors returned as values.
- `sections`: the parts of the paper in drafting order and the skeleton stubs they replace.

Importing this package imports no heavy library (pylatex is imported inside functions).
"""
