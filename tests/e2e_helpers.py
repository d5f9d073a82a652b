"""Shared pieces of the end-to-end tests: the toy template's scripted session, and a way to
launch the real CLI as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

TOY_TEMPLATES = REPO / "tests" / "fixtures" / "templates"


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n```python\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


PLAN = (
    "Plan:\n1. Run 1: heavy-ball momentum 0.5.\n2. Run 2: momentum 0.9.\n\n"
    "Run 1: add heavy-ball momentum 0.5\n\n"
    # Registered before run 1 (agent.hypotheses); one seed: judged inconclusive, no interval.
    '```json\n{"hypotheses": [{"id": "H1", "statement": "Momentum lowers the final loss.", "metric": '
    '"final_loss", "run": 1, "against": 0, "expected": "decrease", "smallest_effect": 0.001}]}\n```\n\n'
    + block("experiment.py", "    momentum: float = 0.0  # heavy-ball momentum\n",
            "    momentum: float = 0.5  # heavy-ball momentum\n")
    # A block that cannot match: the loop must report it and ask again.
    + block("experiment.py", "    lr: float = 0.25  # step size\n", "    lr: float = 0.05  # step size\n")
)
FIX_FAILED_BLOCK = block("experiment.py", "    lr: float = 0.1  # step size\n", "    lr: float = 0.05  # step size\n")
RUN2_CRASHES = (
    "Run 2: momentum 0.9\n\n"
    + block("notes.txt", "", "Analysis of run 1: momentum 0.5 converged.\n")
    + block("experiment.py", "    momentum: float = 0.5  # heavy-ball momentum\n",
            "    momentum: float = 0.9  # heavy-ball momentum\n")
    + block("experiment.py", "    x, v, losses = 5.0, 0.0, []\n",
            "    x, v, losses = 5.0, 0.0, []\n    raise RuntimeError('boom: planted crash')\n")
)
FIX_CRASH = block("experiment.py", "    raise RuntimeError('boom: planted crash')\n", "")
DONE = block("notes.txt", "", "Analysis of run 2: momentum 0.9 oscillates more.\n") + "\nALL_COMPLETED\n"

TOY_SESSION = [PLAN, FIX_FAILED_BLOCK, RUN2_CRASHES, FIX_CRASH, DONE]
TOY_KINDS = ["experiment.plan", "edit.retry", "experiment.results", "experiment.failure", "experiment.results"]


def write_session(path: Path, replies: list[str] = TOY_SESSION, kinds: list[str] = TOY_KINDS) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for kind, reply in zip(kinds, replies, strict=True):
            f.write(json.dumps({"stage": kind.split(".")[0], "prompt_kind": kind, "reply": reply}) + "\n")
    return path


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
        cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run `python -m agent.launch ARGS` in a subprocess, as a user types it."""
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "agent.launch", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def only_run_dir(runs_dir: Path) -> Path:
    dirs = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(dirs) == 1, dirs
    return dirs[0]


PLOT_EDIT = block("plot.py", '                                {"kind": "bar", "y": "steps_to_tol"}]}]}\n',
                  '                                {"kind": "bar", "y": "steps_to_tol", "title": "Steps to tolerance"}]}]}\n')
PLOT_DESCRIBE = block("notes.txt", "", "Figure loss.png: the final loss (log scale) and the steps to tolerance of the baseline and both momentum runs.\n")
TOY_SESSION_WITH_PLOT = [*TOY_SESSION, PLOT_EDIT, PLOT_DESCRIBE]
TOY_KINDS_WITH_PLOT = [*TOY_KINDS, "plot.edit", "plot.describe"]


TEX = "latex/template.tex"
PARTS = {
    "Title and Abstract": [
        ("\\title{\\writeupstub{Title}}", "\\title{Momentum on a Quadratic Bowl}"),
        ("\\writeupstub{Abstract}", "We add heavy-ball momentum~\\citep{polyak1964some} to gradient descent on a "
         "quadratic. With momentum the final loss is \\RunOneFinalLoss{} against \\BaselineFinalLoss{} for the baseline."),
    ],
    "Introduction": [("\\writeupstub{Introduction}", "Gradient descent converges slowly on ill-conditioned problems.")],
    "Background": [("\\writeupstub{Background}", "Heavy-ball momentum~\\citep{polyak1964some} reuses past gradients.")],
    "Method": [("\\writeupstub{Method}", "We add a momentum term to the update.")],
    "Experimental Setup": [("\\writeupstub{Experimental Setup}", "The baseline is run\\_0, the unmodified template.")],
    "Results": [("\\writeupstub{Results}",
                 "\\ResultsTable\nTable~\\ref{tab:results} lists every run. Momentum reached \\RunOneFinalLoss{}.\n"
                 "\\begin{figure}[h]\\centering\\includegraphics[width=0.6\\linewidth]{loss.png}"
                 "\\caption{Loss per step.}\\label{fig:loss}\\end{figure}\nFigure~\\ref{fig:loss} shows the loss curves.")],
    "Conclusion": [("\\writeupstub{Conclusion}", "Momentum helps on this toy problem.")],
    "Related Work": [("\\writeupstub{Related Work}", "Momentum methods go back to~\\citet{polyak1964some}.")],
}


def writeup_replies(parts: dict[str, list[tuple[str, str]]] = PARTS) -> tuple[list[str], list[str]]:
    """A draft and a (no-change) refinement per part, as a reference session would hold them."""
    replies, kinds = [], []
    for pairs in parts.values():
        replies.append("".join(block(TEX, old + "\n", new + "\n") for old, new in pairs))
        kinds.append("writeup.draft")
        replies.append("The section reads well; no changes.")
        kinds.append("writeup.refine")
    return replies, kinds


REVIEW_FORM = {
    "Summary": "The paper adds heavy-ball momentum to gradient descent on a one-dimensional quadratic "
               "and compares the final loss of two momentum settings with plain gradient descent.",
    "Strengths": ["Every number comes from a recorded run.", "The setup is simple and fully specified."],
    "Weaknesses": ["A single toy problem with one seed: nothing is known about variance.",
                   "Momentum on a quadratic is textbook material; there is no new idea."],
    "Originality": 1, "Quality": 2, "Clarity": 3, "Significance": 1,
    "Questions": ["How do the results change with the step size?"],
    "Limitations": ["One problem, one seed, no interval."],
    "Ethical Concerns": False,
    "Soundness": 2, "Presentation": 3, "Contribution": 1,
    "Overall": 2, "Confidence": 4, "Decision": "Reject",
    "Integrity": [],
}


def review_reply(form: dict | None = None, **changes: object) -> str:
    """A review stage reply: a thought, then the form in a ```json fence."""
    filled = {**(REVIEW_FORM if form is None else form), **changes}
    return ("THOUGHT:\nA correct but trivial study; the evidence is one seed on one toy problem.\n\n"
            f"REVIEW JSON:\n```json\n{json.dumps(filled, indent=2)}\n```\n")


REVIEW = review_reply()
