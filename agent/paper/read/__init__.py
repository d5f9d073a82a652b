"""Reading the paper as prose: sentences, the numbers in them and what they are about.

- `reading`: the paper read once with pylatexenc into sentences (tables, display math and
  the paper's own macros included), mapped back to source positions.
- `mentions`: the typed number mentions of each sentence (digits, words, percent, factor,
  unit, qualifier, range, setting written as one).
- `prose`: LaTeX as a prose view (sections, groups).
- `statements`: the runs and metrics a sentence is about, and its comparison cues.
- `texnum`: numbers as LaTeX prints them, and counts written as words.
"""
