"""Pre-registered hypotheses: parsed from the plan, validated against the template, amended
beside the original, judged by code from the seeds' intervals; and in the real loop,
committed before run 1 executes."""

from __future__ import annotations

import json
import math

import pytest

from agent import hypotheses as hyp
from agent import judging
from agent.template import Metric

METRICS = (Metric("l0", "L0", "lower", True, ".1f"),
           Metric("explained_variance", "Explained variance", "higher", True, ".3f"))
H1 = {"id": "H1", "statement": "Orthogonality lowers L0.", "metric": "l0", "run": 1, "against": 0,
      "expected": "decrease", "smallest_effect": 2.0}
H2 = {"id": "H2", "statement": "It costs explained variance.", "metric": "explained_variance", "run": 2,
      "expected": "decrease", "smallest_effect": 0.01}


def _fenced(obj: object, tag: str = "json") -> str:
    return f"```{tag}\n{json.dumps(obj, indent=1)}\n```"


# --- finding the block --------------------------------------------------------------------

@pytest.mark.parametrize("tag", ["json", "JSON", ""])
def test_block_is_found_in_prose_whatever_the_fence_tag(tag: str) -> None:
    reply = f"Run 1: orthogonality\n\nMy hypotheses:\n{_fenced({'hypotheses': [H1, H2]}, tag)}\nThen the edits."
    assert hyp.extract(reply).items == [H1, H2]


def test_an_object_written_in_prose_without_a_fence_is_found() -> None:
    reply = 'Hypotheses: {"hypotheses": [' + json.dumps(H1) + "]} and that is all."
    assert hyp.extract(reply).items == [H1]


def test_edit_blocks_and_other_json_are_not_hypotheses() -> None:
    reply = ("experiment.py\n```python\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n```\n"
             + _fenced({"config": {"lr": 0.1}}))
    found = hyp.extract(reply)
    assert found.items is None and found.problem is None


def test_invalid_json_says_where() -> None:
    found = hyp.extract('```json\n{"hypotheses": [{"id": "H1",}]}\n```')
    assert found.items is None
    assert "not valid JSON (line 1 column" in str(found.problem)


def test_hypotheses_must_be_a_list() -> None:
    found = hyp.extract(_fenced({"hypotheses": H1}))
    assert found.items is None and found.problem == '"hypotheses" must be a list of objects, not an object'


def test_amendments_block_and_the_last_block_wins() -> None:
    reply = (_fenced({"amendments": [{"id": "H1", "reason": "a"}]}) + "\nactually:\n"
             + _fenced({"amendments": [{"id": "H1", "reason": "b"}]}))
    assert hyp.extract(reply, "amendments").items == [{"id": "H1", "reason": "b"}]
    assert hyp.extract(reply, "hypotheses").items is None


def test_the_plan_shown_later_leaves_the_blocks_out() -> None:
    text = "Plan: two runs.\n\n" + _fenced({"hypotheses": [H1]}) + "\n\nRun 1: orthogonality"
    assert hyp.strip_blocks(text) == "Plan: two runs.\n\nRun 1: orthogonality"


# --- validation ---------------------------------------------------------------------------

def test_valid_hypotheses_pass_and_against_defaults_to_the_baseline() -> None:
    valid, errors = hyp.validate([H1, H2], METRICS, max_runs=3)
    assert errors == []
    assert [h.id for h in valid] == ["H1", "H2"] and valid[1].against == 0
    assert valid[0] == hyp.Hypothesis("H1", "Orthogonality lowers L0.", "l0", 1, 0, "decrease", 2.0)


@pytest.mark.parametrize(("change", "message"), [
    ({"id": "hyp1"}, "field 'id' is \"hyp1\": write H followed by a number, e.g. \"H1\""),
    ({"id": None}, "field 'id' is null"),
    ({"statement": None}, "field 'statement' is missing: write one sentence"),
    ({"statement": "  "}, "field 'statement' is \"  \""),
    ({"metric": "L0"}, "field 'metric' is \"L0\", which is not a metric of this template (did you mean \"l0\"?): "
                       "write one of l0 (lower is better), explained_variance (higher is better)"),
    ({"run": 0}, "field 'run' is 0: write the index of the planned run the hypothesis is about, a whole number "
                 "from 1 to 3 (1 for run_1)"),
    ({"run": 4}, "field 'run' is 4"),
    ({"run": "run_1"}, "field 'run' is \"run_1\""),
    ({"run": 1.5}, "field 'run' is 1.5"),
    ({"against": 1}, "field 'against' is 1, the same run as 'run': compare run 1 with another run, e.g. 0 "
                     "for the baseline"),
    ({"against": -1}, "field 'against' is -1: write the index of the run it is compared with"),
    ({"expected": "better"}, "field 'expected' is \"better\": write \"increase\" or \"decrease\", the direction of "
                             "the metric's raw value, not whether it is better (l0: lower is better, so an "
                             "improvement is a \"decrease\")"),
    ({"smallest_effect": -1}, "field 'smallest_effect' is -1: write a number >= 0"),
    ({"smallest_effect": "2"}, "field 'smallest_effect' is \"2\""),
    ({"smallest_effect": True}, "field 'smallest_effect' is true"),
    ({"smallest_effect": None}, "field 'smallest_effect' is null"),
])
def test_each_invalid_field_is_named_with_what_to_write(change: dict, message: str) -> None:
    valid, errors = hyp.validate([{**H1, **change}], METRICS, max_runs=3)
    assert valid == []
    assert len(errors) == 1 and message in errors[0], errors
    assert errors[0].startswith("hypothesis 1")


def test_a_non_finite_smallest_effect_is_refused() -> None:
    h, errors = hyp.check({**H1, "smallest_effect": math.inf}, METRICS, 3, "hypothesis 1")
    assert h is None and "field 'smallest_effect'" in errors[0]


def test_duplicate_ids_empty_lists_and_non_objects_are_refused() -> None:
    valid, errors = hyp.validate([H1, {**H2, "id": "H1"}], METRICS, max_runs=3)
    assert [h.id for h in valid] == ["H1"]
    assert errors == ["hypothesis 2 (H1): id H1 is used twice: give each hypothesis its own id (H1, H2, ...)"]
    assert hyp.validate([], METRICS, 3) == ([], ['the "hypotheses" list is empty: state at least one hypothesis'])
    _, errors = hyp.validate(["H1: L0 goes down"], METRICS, 3)
    assert errors[0].startswith("hypothesis 1 is a string, not an object")


def test_every_problem_of_one_item_is_listed() -> None:
    _, errors = hyp.validate([{"id": "H1", "metric": "sparsity", "run": 9}], METRICS, max_runs=3)
    assert [e.split(": ")[1].split(" ")[1] for e in errors] == [
        "'statement'", "'metric'", "'run'", "'expected'", "'smallest_effect'"]


# --- amendments ---------------------------------------------------------------------------

def _doc(*items: dict) -> hyp.HypothesesDoc:
    valid, errors = hyp.validate(list(items), METRICS, max_runs=3)
    assert not errors
    return hyp.HypothesesDoc(1, "2026-11-29T18:30:00+0000", tuple(valid))


def test_an_amendment_keeps_the_original_and_becomes_the_effective_version() -> None:
    doc = _doc(H1, H2)
    new, accepted, refused = hyp.amend(doc, [{"id": "H1", "reason": "L0 is noisier than planned",
                                              "smallest_effect": 4}], METRICS, 3, after_run=1)
    assert refused == [] and [a.id for a in accepted] == ["H1"]
    assert new.hypotheses == doc.hypotheses  # the registered list is never rewritten
    assert new.hypotheses[0].smallest_effect == 2.0
    effective = {e.hypothesis.id: e for e in new.effective()}
    assert effective["H1"].hypothesis.smallest_effect == 4.0
    assert effective["H1"].amended_after_run == 1 and not effective["H1"].added_after_results
    assert effective["H1"].reason == "L0 is noisier than planned"
    assert effective["H2"].amended_after_run is None
    data = new.to_json()
    assert data["amendments"] == [{"after_run": 1, "reason": "L0 is noisier than planned", "id": "H1",
                                   "hypothesis": {**H1, "smallest_effect": 4.0}}]
    assert hyp.HypothesesDoc.from_json(json.loads(json.dumps(data))) == new


def test_a_new_id_in_an_amendment_is_marked_as_added_after_results() -> None:
    new, accepted, _ = hyp.amend(_doc(H1), [{**H2, "id": "H3", "reason": "run 1 suggests it"}], METRICS, 3, 2)
    added = new.effective()[-1]
    assert added.hypothesis.id == "H3" and added.added_after_results and added.amended_after_run == 2


@pytest.mark.parametrize(("item", "message"), [
    ({"id": "H1", "smallest_effect": 4}, "amendment 1 (H1): field 'reason' is missing"),
    ({"id": "H1", "reason": "x", "metric": "sparsity"}, "field 'metric' is \"sparsity\""),
    ({"id": "H1", "reason": "x", "smallest_effect": 2.0}, "it changes none of H1's fields"),
    ({"id": "H4", "reason": "new", "metric": "l0"}, "amendment 1 (H4): field 'statement' is missing"),
    ("make H1 weaker", "amendment 1 is a string, not an object"),
])
def test_an_invalid_amendment_is_refused_and_changes_nothing(item: object, message: str) -> None:
    doc = _doc(H1)
    new, accepted, refused = hyp.amend(doc, [item], METRICS, 3, after_run=1)
    assert new == doc and accepted == []
    assert any(message in r for r in refused), refused


def test_one_id_amended_twice_in_one_reply_keeps_the_first() -> None:
    items = [{"id": "H1", "reason": "a", "smallest_effect": 3}, {"id": "H1", "reason": "b", "smallest_effect": 5}]
    new, accepted, refused = hyp.amend(_doc(H1), items, METRICS, 3, after_run=1)
    assert len(accepted) == 1 and new.effective()[0].hypothesis.smallest_effect == 3.0
    assert "amended twice in one reply" in refused[0]


def test_files_round_trip(tmp_path) -> None:
    doc = hyp.amend(_doc(H1, H2), [{"id": "H2", "reason": "r", "run": 3}], METRICS, 3, 1)[0]
    hyp.write(tmp_path, doc)
    assert hyp.load(tmp_path) == doc
    data = json.loads((tmp_path / "hypotheses.json").read_text())
    assert set(data) >= {"registered", "hypotheses", "amendments", "problem"}
    assert data["registered"] == {"before_run": 1, "at": "2026-11-29T18:30:00+0000"}
    assert hyp.load(tmp_path / "missing") is None


# --- verdicts -----------------------------------------------------------------------------

def _info(seeds: dict[str, list[float]] | None, **metrics: float) -> dict:
    """A final_info.json: top-level means, and a seeds section when `seeds` is given."""
    if seeds is None:
        return {"metrics": metrics}
    means = {k: sum(v) / len(v) for k, v in seeds.items()}
    return {"metrics": means, "seeds": {"n": len(next(iter(seeds.values()))), "independent": True,
                                        "values": seeds}}


BASE = _info({"l0": [40.0, 41.0, 39.0], "explained_variance": [0.80, 0.81, 0.79]})


def _judge(hypothesis: dict, infos: dict) -> judging.Judged:
    (judged,) = judging.judge(_doc(hypothesis), infos, METRICS)
    return judged


def test_supported_when_the_interval_is_on_the_expected_side_and_big_enough() -> None:
    run1 = _info({"l0": [30.0, 31.0, 29.0], "explained_variance": [0.80, 0.81, 0.79]})
    j = _judge(H1, {"run_0": BASE, "run_1": run1})
    assert j.verdict == "supported" and j.diff == pytest.approx(-10.0)
    assert j.ci is not None and j.ci[1] < -2 and (j.n_run, j.n_against) == (3, 3)
    assert "lies below 0" in j.why
    entry = j.to_json()
    assert entry == {**H1, "smallest_effect": 2.0, "amended_after_run": None, "added_after_results": False,
                     "verdict": "supported", "diff": j.diff, "ci": list(j.ci), "n_run": 3, "n_against": 3,
                     "why": j.why, "amended": None}


def test_refuted_when_the_metric_moves_the_other_way() -> None:
    run1 = _info({"l0": [50.0, 51.0, 49.0]})
    j = _judge(H1, {"run_0": BASE, "run_1": run1})
    assert j.verdict == "refuted" and "lies above 0" in j.why and "against the expected decrease" in j.why


def test_refuted_when_the_whole_interval_is_smaller_than_the_smallest_effect() -> None:
    run1 = _info({"l0": [39.8, 40.0, 40.2], "explained_variance": [0.8] * 3})
    base = _info({"l0": [39.9, 40.0, 40.1]})
    j = _judge({**H1, "smallest_effect": 5.0}, {"run_0": base, "run_1": run1})
    assert j.verdict == "refuted" and "lies within ±5" in j.why


def test_inconclusive_when_the_interval_includes_zero() -> None:
    run1 = _info({"l0": [35.0, 45.0, 40.5]})
    j = _judge(H1, {"run_0": BASE, "run_1": run1})
    assert j.verdict == "inconclusive" and j.why.endswith("includes 0")


def test_a_run_never_executed_is_inconclusive_and_says_so() -> None:
    j = _judge(H1, {"run_0": BASE})
    assert j.verdict == "inconclusive" and j.diff is None and j.ci is None
    assert j.why == "run_1 was never executed successfully (no run_1/final_info.json)"


def test_a_run_without_the_metric_is_inconclusive() -> None:
    j = _judge(H1, {"run_0": BASE, "run_1": _info({"explained_variance": [0.8, 0.8]})})
    assert j.verdict == "inconclusive" and j.why == "run_1 reports no value of l0"


def test_one_seed_gives_no_interval() -> None:
    run1 = _info(None, l0=20.0)  # an old single-seed record: no seeds section
    j = _judge(H1, {"run_0": BASE, "run_1": run1})
    assert j.verdict == "inconclusive" and j.ci is None and j.diff == pytest.approx(-20.0)
    assert j.why.startswith("no interval: run_1 has 1 successful seed;")
    same = {**_info({"l0": [20.0, 20.0]}), "seeds": {"independent": False, "values": {"l0": [20.0, 20.0]}}}
    same["metrics"] = {"l0": 20.0}
    j = _judge(H1, {"run_0": BASE, "run_1": same})
    assert j.verdict == "inconclusive" and "produced identical weights" in j.why


def test_the_verdicts_file_judges_the_registered_versions_and_keeps_the_amended_beside_them(tmp_path) -> None:
    """H1 as registered (smallest effect 2) is supported; amended after run 1 to a smallest
    effect of 20 it would be refuted: the registered verdict counts, the amended one is kept."""
    doc = _doc(H1, H2)
    doc = hyp.amend(doc, [{"id": "H1", "reason": "noisy", "smallest_effect": 20.0},
                          {**H2, "id": "H3", "run": 1, "reason": "seen in run 1"}], METRICS, 3, after_run=1)[0]
    run1 = _info({"l0": [30.0, 31.0, 29.0], "explained_variance": [0.70, 0.71, 0.69]})
    data = judging.verdicts_json(doc, judging.judge(doc, {"run_0": BASE, "run_1": run1}, METRICS))
    hyp.write_verdicts(tmp_path, data)
    data = hyp.load_verdicts(tmp_path)
    assert data is not None and data["level"] == 0.95 and data["problem"] is None
    by_id = {v["id"]: v for v in data["verdicts"]}
    assert list(by_id) == ["H1", "H2", "H3"]
    assert by_id["H1"]["smallest_effect"] == 2.0 and by_id["H1"]["amended_after_run"] == 1
    assert by_id["H1"]["verdict"] == "supported"  # as registered: this is the verdict that counts
    amended = by_id["H1"]["amended"]
    assert amended["smallest_effect"] == 20.0 and amended["verdict"] == "refuted"
    assert amended["after_run"] == 1 and amended["reason"] == "noisy"
    assert by_id["H2"]["amended"] is None and by_id["H3"]["amended"] is None
    assert by_id["H2"]["verdict"] == "inconclusive" and "run_2 was never executed" in by_id["H2"]["why"]
    assert by_id["H3"]["added_after_results"] and by_id["H3"]["verdict"] == "supported"
    lines = judging.provisional(doc, {"run_0": BASE, "run_1": run1}, METRICS)
    assert lines[1].startswith("H2 (explained_variance, run 2 vs run 0, expected decrease >= 0.01): "
                               "not decided yet: run 2 has no result yet")
    assert "amended after run 1" in lines[0] and "added after run 1" in lines[2]


# --- in the loop: the real CLI, the toy template, a replayed session ------------------------

def _launch(tmp_path, replies: list[str], kinds: list[str], env: dict | None = None):
    """Budget of 2 runs; the replies stop after run 1 with ALL_COMPLETED."""
    from tests.e2e_helpers import TOY_TEMPLATES, cli, write_session

    session = write_session(tmp_path / "session.jsonl", replies, kinds)
    return cli("--idea", "toy_idea", "--templates-dir", str(TOY_TEMPLATES), "--model", f"replay:{session}",
               "--runs-dir", str(tmp_path / "runs"), "--stages", "experiment", "--max-runs", "2",
               "--quiet", env=env)


def _plan(hypotheses: object | None) -> str:
    from tests.e2e_helpers import block

    text = "Plan: one run.\n\nRun 1: heavy-ball momentum 0.5\n\n"
    if hypotheses is not None:
        text += _fenced({"hypotheses": hypotheses}) + "\n\n"
    return text + block("experiment.py", "    momentum: float = 0.0  # heavy-ball momentum\n",
                        "    momentum: float = 0.5  # heavy-ball momentum\n")


TOY_H1 = {"id": "H1", "statement": "Momentum lowers the final loss.", "metric": "final_loss", "run": 1,
          "expected": "decrease", "smallest_effect": 1e-9}


@pytest.mark.slow
def test_hypotheses_are_fixed_committed_before_run_1_amended_and_judged(tmp_path) -> None:
    from agent.journal import read
    from agent.workspace import Workspace
    from tests.e2e_helpers import block, only_run_dir

    invalid = [{**TOY_H1, "metric": "loss"}]
    fixed = "Corrected:\n" + _fenced({"hypotheses": [TOY_H1]})
    amendments = [{"id": "H1", "reason": "run 1 converged to 1e-13", "smallest_effect": 1e-12},
                  {"id": "H2", "reason": "incomplete"}]
    last = (_fenced({"amendments": amendments}) + "\n"
            + block("notes.txt", "", "Analysis of run 1: momentum converged faster.\n") + "\nALL_COMPLETED\n")
    proc = _launch(tmp_path, [_plan(invalid), fixed, last],
                   ["experiment.plan", "experiment.hypotheses", "experiment.results"])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run_dir = only_run_dir(tmp_path / "runs")
    events = read(run_dir / "journal.jsonl").events
    # The invalid block was sent back with what is wrong, once, before anything ran.
    asked = [e for e in events if e.kind == "llm.request" and e.data["prompt_kind"] == "experiment.hypotheses"]
    assert len(asked) == 1
    prompt = asked[0].data["messages"][-1]["content"]
    assert "field 'metric' is \"loss\", which is not a metric of this template" in prompt
    assert "final_loss: Final loss; lower is better" in prompt
    kinds = [e.kind for e in events]
    assert kinds.index("hypotheses.registered") < kinds.index("run.started", kinds.index("run.recorded"))
    # Git: the registration is its own commit, older than run 1's results.
    ws = Workspace(run_dir)
    assert ws.is_linear() and not ws.is_dirty()
    registered, results = ws.step_commit("experiment/hypotheses"), ws.step_commit("experiment/run1/attempt1")
    order = [c.sha for c in ws.history()]  # oldest first
    assert registered and results and order.index(registered) < order.index(results)
    ran_at = next(e for e in events if e.kind == "run.started" and e.data["run"] == 1).data["commit"]
    assert order.index(registered) <= order.index(ran_at)  # the code run 1 ran at holds them
    first = json.loads(ws.file_at(registered, "hypotheses.json"))
    assert first["hypotheses"] == [{**TOY_H1, "against": 0}] and first["problem"] is None
    # The amendment is appended beside the original; the invalid one is refused and journaled.
    doc = hyp.load(run_dir)
    assert doc is not None and doc.hypotheses[0].smallest_effect == 1e-9
    assert [(a.id, a.after_run, a.hypothesis.smallest_effect) for a in doc.amendments] == [("H1", 1, 1e-12)]
    amended = next(e for e in events if e.kind == "hypotheses.amended")
    assert amended.data["step"] == "experiment/hypotheses/amend1" and ws.step_commit("experiment/hypotheses/amend1")
    assert "amendment 2 (H2): field 'statement' is missing" in amended.data["refused"][0]
    # The results prompt showed the registered hypothesis with its verdict so far.
    results_prompt = next(e for e in events if e.kind == "llm.request"
                          and e.data["prompt_kind"] == "experiment.results").data["messages"][-1]["content"]
    assert "H1 (final_loss, run 1 vs run 0, expected decrease >= 1e-09): inconclusive" in results_prompt
    # Verdicts by code at the end, committed.
    verdicts = hyp.load_verdicts(run_dir)
    assert verdicts is not None and ws.step_commit("experiment/hypotheses/verdicts")
    (h1,) = verdicts["verdicts"]
    # judged as registered (smallest effect 1e-9); the amendment beside it, judged post hoc
    assert h1["id"] == "H1" and h1["amended_after_run"] == 1 and h1["smallest_effect"] == 1e-9
    assert h1["amended"]["smallest_effect"] == 1e-12 and h1["amended"]["after_run"] == 1
    assert h1["verdict"] == "inconclusive" and h1["why"].startswith("no interval")
    assert h1["amended"]["verdict"] == "inconclusive"
    assert [e.data["verdicts"] for e in events if e.kind == "hypotheses.judged"] == [{"H1": "inconclusive"}]


@pytest.mark.slow
def test_a_recording_without_hypotheses_registers_the_problem_and_a_resume_does_not_ask_again(tmp_path) -> None:
    import signal

    from agent.journal import read
    from agent.workspace import Workspace
    from tests.e2e_helpers import block, cli, only_run_dir

    done = block("notes.txt", "", "Analysis of run 1.\n") + "\nALL_COMPLETED\n"
    proc = _launch(tmp_path, [_plan(None), done], ["experiment.plan", "experiment.results"],
                   env={"AGENT_TEST_CRASH_AT": "hypotheses_written"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_dir = only_run_dir(tmp_path / "runs")
    proc = cli("--resume", str(run_dir), "--quiet")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "no hypotheses were registered before run 1" in proc.stdout + proc.stderr
    events = read(run_dir / "journal.jsonl").events
    registered = [e for e in events if e.kind == "hypotheses.registered"]
    assert len(registered) == 1 and "has no ```json block" in registered[0].data["problem"]
    ws = Workspace(run_dir)
    assert sum("hypotheses registered before run 1" in c.message for c in ws.history()) == 1
    assert ws.step_commit("experiment/hypotheses") and not ws.is_dirty()
    doc = hyp.load(run_dir)
    assert doc is not None and doc.hypotheses == () and doc.problem
    assert (run_dir / "run_1" / "final_info.json").is_file()
    assert hyp.load_verdicts(run_dir) == {"level": 0.95, "verdicts": [], "problem": doc.problem}
