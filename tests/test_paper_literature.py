"""The writeup's citation search on the literature layer: the idea's novelty papers first, then a
search for its title; cached in the run, skipped with a message when it cannot run; entries
built from the records' fields and merged into the bib once."""

from __future__ import annotations

import pytest

from agent.literature import Literature, Record
from agent.paper.build import literature
from tests.test_literature import Service, fixture, ok


@pytest.fixture
def s2():
    started: list[Service] = []

    def start(*replies):
        started.append(Service(*replies))
        return started[-1]

    yield start
    for s in started:
        s.close()


def _env(service: Service) -> dict[str, str]:
    return {"S2_API_BASE": service.base, "OPENALEX_API_BASE": service.base, "ARXIV_API_BASE": service.base}


def test_search_returns_records_and_a_rerun_reads_the_cache(tmp_path, s2):
    srv = s2(ok(fixture("semantic_scholar_search.json")))
    first = literature.search("superposition", cache=tmp_path / "lit", env=_env(srv))
    second = literature.search("superposition", cache=tmp_path / "lit", env=_env(srv))
    assert first.skipped is None and [p.key for p in first.papers] == ["cunningham2023sparse", "elhage2022toy"]
    assert not first.cached and second.cached and second.papers == first.papers
    assert len(srv.requests) == 1 and first.used == second.used and len(first.used) == 1


def test_the_ideas_novelty_papers_come_first(tmp_path, s2):
    novelty = s2(ok(fixture("arxiv_query.xml")))
    Literature(tmp_path / "idea.literature", env=_env(novelty)).search("dictionary learning", source="arxiv")
    srv = s2(ok(fixture("semantic_scholar_search.json")))
    result = literature.search("superposition", cache=tmp_path / "run", env=_env(srv),
                               also_read=[tmp_path / "idea.literature"])
    # the arXiv record of the same paper comes first; S2's duplicate (same title) is dropped
    assert [(p.source, p.key) for p in result.papers] == [("arxiv", "cunningham2023sparse"),
                                                          ("semantic_scholar", "elhage2022toy")]
    assert {p.parent.parent for p in result.used} == {tmp_path / "run"}  # copied into the run's cache


def test_rate_limited_search_is_skipped_with_a_message(tmp_path, s2):
    srv = s2((429, {"Retry-After": "3600"}, "{}"))
    result = literature.search("superposition", cache=tmp_path / "lit", env=_env(srv), deadline_s=5)
    assert result.papers == () and "rate limited" in (result.skipped or "")
    assert not (tmp_path / "lit").exists()  # a refusal is not cached


def test_unreachable_service_is_skipped(tmp_path):
    env = {k: "http://127.0.0.1:9" for k in ("S2_API_BASE", "OPENALEX_API_BASE", "ARXIV_API_BASE")}
    result = literature.search("superposition", cache=tmp_path / "lit", env=env, deadline_s=0.5)
    assert result.papers == () and "cannot be reached" in (result.skipped or "")
    assert not (tmp_path / "lit").exists()


def test_offline_without_a_cache_is_skipped(tmp_path):
    result = literature.search("superposition", cache=tmp_path / "lit", mode="offline", env={})
    assert result.papers == () and "offline" in (result.skipped or "")


def test_found_entries_are_merged_into_the_bib_once():
    paper = Record("arxiv", "2209.10652", "Toy Models of Superposition", 2022, ("Nelson Elhage",), None, None,
                   None, None)
    other = Record("openalex", "W1", "Toy Models, Revisited", 2022, ("Ada Elhage",), None, None, None, None)
    curated = "@article{a,\n title={A}\n}\n"
    text, added = literature.merge_into_bib(curated, [paper])
    assert added == ["elhage2022toy"] and "{Toy Models of Superposition}" in text
    again, added_again = literature.merge_into_bib(text, [paper])
    assert added_again == [] and again.count("elhage2022toy") == 1
    _, clash = literature.merge_into_bib(text, [other])  # another paper, the same key
    assert clash == ["elhage2022toyb"]
    # a paper the curated bib already holds (by title) is not added under a second key
    _, none = literature.merge_into_bib("@misc{elhage2022superposition,\n title={Toy Models of Superposition}\n}",
                                        [paper])
    assert none == []


class _Ws:
    def __init__(self, root):
        self.root, self.commits = root, []

    def resolve(self, rel):
        return self.root / rel

    def commit(self, paths, message):
        self.commits.append((paths, message))


class _Ctx:
    def __init__(self, root, idea_path, model="anthropic/claude", name="sae_idea"):
        from types import SimpleNamespace

        self.ws, self.model, self.events, self.warnings = _Ws(root), model, [], []
        self.idea = SimpleNamespace(title="Sparse autoencoders", path=idea_path, name=name)
        self.console = SimpleNamespace(warn=self.warnings.append)

    def find(self, kind, **match):
        return next((e for e in self.events if e[0] == kind), None)

    def record(self, kind, **data):
        self.events.append((kind, data))


def test_the_writeup_commits_the_bib_with_the_cache_entries_it_used(tmp_path, s2, monkeypatch):
    from agent.stages.writeup import _literature

    novelty = s2(ok(fixture("arxiv_query.xml")))
    ideas = tmp_path / "ideas"
    Literature(ideas / "sae_idea.literature", env=_env(novelty)).search("dictionary learning", source="arxiv")
    srv = s2(ok(fixture("semantic_scholar_search.json")))
    for k, v in _env(srv).items():
        monkeypatch.setenv(k, v)
    run = tmp_path / "run"
    (run / "latex").mkdir(parents=True)
    (run / "latex" / "references.bib").write_text("@misc{a,\n title={A}\n}\n")
    ctx = _Ctx(run, ideas / "sae_idea.json")
    bib = _literature(ctx, "@misc{a,\n title={A}\n}\n")  # type: ignore[arg-type]
    assert "@misc{cunningham2023sparse," in bib and "elhage2022toy," in bib
    (paths, message), = ctx.ws.commits
    assert paths[0] == "latex/references.bib" and len(paths) == 3 and all(p.startswith("literature/") for p in paths[1:])
    assert all((run / p).is_file() for p in paths) and "2 references" in message
    kind, data = ctx.events[0]
    assert kind == "literature.searched" and data["mode"] == "live" and data["added"] == ["cunningham2023sparse",
                                                                                       "elhage2022toy"]
    assert [s["source"] for s in data["searches"]] == ["arxiv", "semantic_scholar"]
    # a replayed session asks no service
    replayed = _Ctx(tmp_path / "run2", ideas / "other.json", model="replay:/x/journal.jsonl", name="other")
    (replayed.ws.root / "latex").mkdir(parents=True)
    _literature(replayed, "")  # type: ignore[arg-type]
    assert replayed.events[0][1]["mode"] == "offline" and len(srv.requests) == 1 and replayed.warnings
