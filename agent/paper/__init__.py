"""The paper side of the loop: numbers from data, checks before and after compiling.

- `spec`: what the paper side needs to know of a metric (name, label, direction, format).
- `results_tex`: `latex/results.tex`, one macro per number (means, 95% intervals over seeds,
  differences to the baseline with their Welch intervals and verdicts) and the results table;
  `macros` (the macro record and number printing), `setup_tex` (setup facts, seeds, gates),
  `hypotheses_tex` (the pre-registered hypotheses' macros and `\\HypothesesTable`).
- `evidence`, `grounding`, `claims`: every number and run claim in the prose must trace to a
  result file; `findings` are what goes back to the LLM and into `review.json`.
- `verdicts`: claims of direction, of no effect, of hypotheses and of differences must agree
  with the statistics (`agent.stats`) and the hypotheses' verdicts.
- `reading`, `mentions`: the paper read once with pylatexenc into sentences, and the typed
  number mentions of each sentence.
- `prose`, `texnum`: LaTeX as a prose view, and the run references and counts claims are about.
- `checks`: pre-compile checks (citations, figures, duplicates, placeholders, environments).
- `compile`: pdflatex + bibtex + chktex through `agent.runner`, errors returned as values.
- `sections`: the parts of the paper in drafting order and the skeleton stubs they replace.

Importing this package imports no heavy library (pylatex is imported inside functions).
"""
