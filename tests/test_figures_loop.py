"""Figure attacks through the real loop (toy template, replayed replies): a plot.py that states
invented values is refused by the renderer and told why; a figure plot.py draws itself with
invented bars stays out of the paper (the writeup's \\includegraphics of it is refused before
TeX runs) and is marked in the report as drawn by LLM code; the renderer's figure, drawn from
the results, is in the paper and not flagged."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.e2e_helpers import (
    PARTS,
    PLOT_DESCRIBE,
    REVIEW,
    TEX,
    TOY_KINDS,
    TOY_SESSION,
    TOY_TEMPLATES,
    block,
    cli,
    only_run_dir,
    write_session,
    writeup_replies,
)

needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
SPEC_LINE = '                                {"kind": "bar", "y": "steps_to_tol"}]}]}\n'
# plot.py states a final loss no run has, and draws a figure of its own with hard-coded bars.
INVENTED = block("plot.py", SPEC_LINE, SPEC_LINE.replace(
    "]}]}", '], "values": {"run_1": {"final_loss": 1e-09}}}]}')) + block(
    "plot.py", 'Path("figures.json").write_text(json.dumps(spec, indent=2) + "\\n")\n',
    'Path("figures.json").write_text(json.dumps(spec, indent=2) + "\\n")\n'
    'FIGURES = ["invented.png"]\n'
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots()\nax.bar([0, 1, 2], [0.99, 0.99, 0.99])\nax.set_title('EV 0.99 for every run')\n"
    "fig.savefig('invented.png')\n")
DROP_VALUES = block("plot.py", SPEC_LINE.replace("]}]}", '], "values": {"run_1": {"final_loss": 1e-09}}}]}'),
                    SPEC_LINE)
FIGURE = ("\\begin{figure}[h]\\centering\\includegraphics[width=0.6\\linewidth]{invented.png}"
          "\\caption{Explained variance.}\\label{fig:invented}\\end{figure}")


@pytest.mark.slow
@needs_pdflatex
def test_invented_figure_values_are_refused_and_llm_drawn_figures_stay_out_of_the_paper(tmp_path) -> None:
    results = PARTS["Results"][0]
    parts = {**PARTS, "Results": [(results[0], results[1] + "\n" + FIGURE)]}
    replies, kinds = writeup_replies(parts)
    fix = block(TEX, FIGURE + "\n", "")
    session = write_session(tmp_path / "session.jsonl",
                            [*TOY_SESSION, INVENTED, DROP_VALUES, PLOT_DESCRIBE, *replies, fix, REVIEW],
                            [*TOY_KINDS, "plot.edit", "plot.failure", "plot.describe", *kinds,
                             "writeup.latex_fix", "review.paper"])
    proc = cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--max-runs", "3", "--quiet",
               "--model", f"replay:{session}", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    run_dir = only_run_dir(tmp_path / "runs")
    events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    final_loss = json.loads((run_dir / "run_1" / "final_info.json").read_text())["metrics"]["final_loss"]

    # 1. the renderer refused the stated value, the model was told, the second attempt drew loss.png
    (refused,) = [e["data"] for e in events if e["kind"] == "figures.refused"]
    stated = f"run_1's final_loss is stated as 1e-09, but its result is {final_loss:.6g}"
    assert stated in refused["problems"][0]
    asked = [e["data"] for e in events if e["kind"] == "llm.request" and e["data"]["prompt_kind"] == "plot.failure"]
    assert len(asked) == 1 and stated in json.dumps(asked[0]["messages"])
    finished = [e["data"] for e in events if e["kind"] == "plot.finished"]
    assert [f["ok"] for f in finished] == [False, True]
    assert list(finished[1]["rendered"]) == ["loss.png"] and finished[1]["by_plot_py"] == ["invented.png"]

    # 2. the paper may not show plot.py's own figure: refused before TeX ran, fed back, removed
    compiled = [e["data"] for e in events if e["kind"] == "writeup.compiled"]
    assert [c["status"] for c in compiled] == ["refused", "ok"]
    assert any("invented.png} is not a figure the renderer drew" in r for r in compiled[0]["outside_allowlist"])
    tex = (run_dir / TEX).read_text()
    assert "invented.png" not in tex and "{loss.png}" in tex  # the twin: the renderer's figure stays
    assert (run_dir / "latex" / "figures" / "loss.png").read_bytes() == (run_dir / "loss.png").read_bytes()
    assert not (run_dir / "latex" / "figures" / "invented.png").exists()
    text = subprocess.run(["pdftotext", str(run_dir / "paper.pdf"), "-"], capture_output=True, text=True).stdout
    assert "Figure 1" in text or "Figure 1:" in " ".join(text.split())

    # 3. the report marks who drew what, and the integrity panel says what was refused
    from agent import report

    html = report.write(run_dir).read_text()
    assert "The renderer refused 1 figure declaration(s)" in html and "stated as 1e-09" in html
    assert "drawn by LLM code (plot.py): not checked, not in the paper" in html
    assert "drawn by the renderer from the results" in html
