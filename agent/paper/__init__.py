"""The paper side of the loop, in the order a paper goes through it:

- `build/`: `latex/results.tex` written from the runs (every number the paper cites), the
  sections to draft, the literature, and the compile;
- `tex/`: what TeX may be given: the LaTeX allowlist and the pre-compile checks;
- `read/`: the paper read as prose: sentences and their typed number mentions;
- `ground/`: every number and claim traced to the results (the rules as data), the compiled
  PDF's numbers too; findings go back to the model and into `review.json`.

Importing this package imports no heavy library (pylatexenc is imported inside functions).
"""
