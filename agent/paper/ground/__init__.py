"""Grounding: every number and claim of the paper traced to the runs' results, or a finding.

- `evidence`: the values a number may be (metrics, settings, seed statistics, differences
  between runs, hypotheses' verdicts), each with its source and key.
- `quantity`, `naming`: what a number is said to be (a setting, a counted noun, a duration, a
  metric) and which values of the evidence are of that quantity.
- `matching`: whether a value equals a number within its written digits (and qualifiers).
- `rules`: the rules, as data (`Rule`): which applies to a number and what grounds it; the
  table in the docs is generated from them.
- `grounding`: the rules applied to every number of the source (`check_paper`).
- `claims`, `verdicts`, `tallies`: claims about runs, directions, no-effect, intervals and
  hypotheses (their verdicts and counts) against the statistics.
- `typeset`: the numbers of the compiled PDF's text, traced to the source or results.tex.
- `findings`: what goes back to the model and into `review.json`.
"""
