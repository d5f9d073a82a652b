"""Building the paper: the numbers of `latex/results.tex` from the runs, and the compile.

- `spec`: what the paper side needs to know of a metric (name, label, direction, format).
- `results_tex`: `latex/results.tex`, one macro per number (means, 95% intervals over seeds,
  differences to the baseline with their Welch intervals and verdicts) and the results table;
  `macros` (the macro record and number printing), `setup_tex` (setup facts, seeds, gates),
  `hypotheses_tex` (the pre-registered hypotheses' macros and `\\HypothesesTable`).
- `sections`: the parts of the paper in drafting order and the skeleton stubs they replace.
- `literature`: the Related Work's citations from `agent.literature` (the idea's novelty papers,
  then a search for its title) merged into references.bib.
- `compile`: pdflatex + bibtex + chktex through the executor, errors returned as values.
"""
