"""The literature layer against a loopback server of the test's own: normalized records, the
cache, modes, retries honouring Retry-After within deadlines, the circuit breaker, keys kept
out of every file. Waits are injected (a fake clock that `sleep` advances): no test sleeps."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from agent.literature import Literature, Record, ReplayMiss, RetryPolicy
from agent.literature.records import bibtex_key, latex_text
from agent.literature.transport import retry_after_s

FIXTURES = Path(__file__).parent / "fixtures" / "literature"
S2_KEY = "s2-test-key-0123456789abcdef"
OA_KEY = "oa-test-key-9876543210fedcba"
OA_EMAIL = "researcher@example.org"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


Reply = tuple[int, dict[str, str], str]


class Service:
    """A loopback HTTP server answering from a script: one reply per request (the last repeats);
    a reply of None never answers (until the test ends)."""

    def __init__(self, *replies: Reply | None) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                outer.requests.append((url.path, parse_qs(url.query), {k.lower(): v for k, v in self.headers.items()}))
                i = min(len(outer.requests), len(outer.replies)) - 1
                reply = outer.replies[i]
                if reply is None:
                    outer.release.wait(5)
                    return
                status, headers, body = reply
                data = body.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    started: list[Service] = []

    def start(*replies: Reply | None) -> Service:
        started.append(Service(*replies))
        return started[-1]

    yield start
    for s in started:
        s.close()


class FakeTime:
    """A monotonic clock that only `sleep` moves (plus what a test adds)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def ok(body: str, ctype: str = "application/json") -> Reply:
    return (200, {"Content-Type": ctype}, body)


def lit(tmp_path: Path, base_env: dict[str, str], mode: str = "live", t: FakeTime | None = None,
        **kw: object) -> Literature:
    t = t or FakeTime()
    return Literature(tmp_path / "cache", mode, env=base_env, clock=t.clock, sleep=t.sleep,  # type: ignore[arg-type]
                      rng=random.Random(0), **kw)  # type: ignore[arg-type]


def env_for(service: Service, **extra: str) -> dict[str, str]:
    return {"S2_API_BASE": service.base + "/graph/v1", "OPENALEX_API_BASE": service.base,
            "ARXIV_API_BASE": service.base + "/api/query", **extra}


# --- normalized records ------------------------------------------------------------------
def test_each_source_gives_normalized_records_with_stable_keys(tmp_path, serve):
    s2 = serve(ok(fixture("semantic_scholar_search.json")))
    oa = serve(ok(fixture("openalex_works.json")))
    ax = serve(ok(fixture("arxiv_query.xml"), "application/atom+xml"))
    a = lit(tmp_path, env_for(s2)).search("sparse autoencoders", source="semantic_scholar")
    b = lit(tmp_path, env_for(oa)).search("sparse autoencoders", source="openalex")
    c = lit(tmp_path, env_for(ax)).search("sparse autoencoders", source="arxiv")
    assert (a.status, b.status, c.status) == ("ok", "ok", "ok")
    first = a.records[0]
    assert first == Record("semantic_scholar", "1b5b3a5d1bd7ea0b4ef8b3bd2e5dcd0a2d7c6b10",
                           "Sparse Autoencoders Find Highly Interpretable Features in Language Models", 2023,
                           ("Hoagy Cunningham", "Aidan Ewart", "Logan Riggs"),
                           "International Conference on Learning Representations",
                           "One of the roadblocks to a better understanding of neural networks' internals is "
                           "polysemanticity.",
                           "https://www.semanticscholar.org/paper/1b5b3a5d1bd7ea0b4ef8b3bd2e5dcd0a2d7c6b10",
                           "10.48550/arXiv.2309.08600")
    # the same paper has the same key from every source, in the curated bibs' style
    assert first.key == b.records[0].key == c.records[0].key == "cunningham2023sparse"
    assert a.records[1].venue is None and a.records[1].abstract is None and a.records[1].key == "elhage2022toy"
    assert b.records[0].id == "W4386760124" and b.records[0].doi == "10.48550/arxiv.2309.08600"
    assert b.records[0].abstract == "One of the roadblocks"
    assert c.records[0].id == "2309.08600" and c.records[0].year == 2023
    assert c.records[0].title == "Sparse Autoencoders Find Highly Interpretable Features in Language Models"
    assert c.records[0].url == "https://arxiv.org/abs/2309.08600"
    assert first.bibtex.startswith("@article{cunningham2023sparse,\n")
    assert "author        = {Hoagy Cunningham and Aidan Ewart and Logan Riggs}" in first.bibtex
    assert "eprint" in c.records[0].bibtex and c.records[0].bibtex.startswith("@misc{")  # no journal_ref
    # the requests each service documents
    path, q, _ = s2.requests[0]
    assert path == "/graph/v1/paper/search" and q["query"] == ["sparse autoencoders"] and q["limit"] == ["10"]
    path, q, _ = oa.requests[0]
    assert path == "/works" and q["search"] == ["sparse autoencoders"] and q["per-page"] == ["10"]
    path, q, _ = ax.requests[0]
    assert path == "/api/query" and q["search_query"] == ["all:sparse AND all:autoencoders"]


def test_bibtex_is_built_from_fields_and_escaped():
    r = Record("openalex", "W1", "Cost & 100% of $x_1$ {\\input{/etc/passwd}} — β-VAE", 2021,
               ("José Müller", "Zoë O'Neil"), None, None, "https://x.org/a b", None)
    assert r.key == "muller2021cost"
    assert "\\input" not in r.bibtex.replace("\\textbackslash{}input", "")
    assert "Cost \\& 100\\% of \\$x\\_1\\$ \\{\\textbackslash{}input\\{/etc/passwd\\}\\} $\\beta$-VAE" in r.bibtex
    assert "José Müller" in r.bibtex and "url" not in r.bibtex  # a URL with a space is dropped
    assert r.bibtex.startswith("@misc{muller2021cost,")
    assert latex_text("a\u2003b\x00c\n d") == "a b c d"
    assert bibtex_key((), None, "The Art of Sparsity") == "anonart"


# --- the cache and the modes -------------------------------------------------------------
def test_live_search_is_cached_and_a_rerun_asks_nothing(tmp_path, serve):
    s2 = serve(ok(fixture("semantic_scholar_search.json")))
    first = lit(tmp_path, env_for(s2))
    a = first.search("  sparse   autoencoders ", source="semantic_scholar")
    again = lit(tmp_path, env_for(s2))
    b = again.search("sparse autoencoders", source="semantic_scholar")
    assert len(s2.requests) == 1 and not a.from_cache and b.from_cache
    assert a.records == b.records and a.cache_key == b.cache_key
    entry = tmp_path / "cache" / "semantic_scholar" / f"{a.cache_key}.json"
    assert first.used_files() == again.used_files() == [entry]
    data = json.loads(entry.read_text())
    assert data["status"] == 200 and data["query"] == "sparse autoencoders"
    assert json.loads(data["body"]) == json.loads(fixture("semantic_scholar_search.json"))  # raw, as sent
    assert [s.query for s in first.log] == ["sparse autoencoders"]


def test_replay_reads_the_cache_and_a_miss_raises(tmp_path, serve):
    s2 = serve(ok(fixture("semantic_scholar_search.json")))
    lit(tmp_path, env_for(s2)).search("sparse autoencoders")
    replay = lit(tmp_path, {"S2_API_BASE": "http://127.0.0.1:9"}, mode="replay")
    found = replay.search("sparse autoencoders")
    assert found.status == "ok" and found.from_cache and len(s2.requests) == 1
    with pytest.raises(ReplayMiss, match="never asked"):
        replay.search("never asked")
    assert len(s2.requests) == 1


def test_offline_miss_is_unavailable_and_asks_nothing(tmp_path, serve):
    s2 = serve(ok(fixture("semantic_scholar_search.json")))
    found = lit(tmp_path, env_for(s2), mode="offline").search("sparse autoencoders")
    assert found.status == "unavailable" and found.records == () and "offline" in (found.reason or "")
    assert s2.requests == [] and not (tmp_path / "cache").exists()


def test_entries_of_another_cache_are_read_and_copied_into_this_one(tmp_path, serve):
    s2 = serve(ok(fixture("semantic_scholar_search.json")))
    idea = Literature(tmp_path / "idea", env=env_for(s2))
    idea.search("sparse autoencoders", source="semantic_scholar")
    run = Literature(tmp_path / "run", "offline", env={}, also_read=[tmp_path / "idea"])
    found = run.search("sparse autoencoders", source="semantic_scholar")
    assert found.status == "ok" and found.from_cache
    assert run.used_files() == [tmp_path / "run" / "semantic_scholar" / f"{found.cache_key}.json"]
    assert run.used_files()[0].read_bytes() == idea.used_files()[0].read_bytes()
    assert [s.query for s in Literature(tmp_path / "x", "offline", also_read=[tmp_path / "idea"]).cached_searches()] \
        == ["sparse autoencoders"]


# --- answers that are not hits -----------------------------------------------------------
@pytest.mark.parametrize(("source", "body"), [("semantic_scholar", fixture("semantic_scholar_empty.json")),
                                              ("openalex", '{"meta": {"count": 0}, "results": []}'),
                                              ("arxiv", fixture("arxiv_empty.xml"))])
def test_no_hits_is_empty_and_cached(tmp_path, serve, source, body):
    s = serve(ok(body))
    layer = lit(tmp_path, env_for(s))
    found = layer.search("zzzqqq", source=source)
    assert found.status == "empty" and found.records == () and len(layer.used_files()) == 1


@pytest.mark.parametrize(("source", "body", "why"), [
    ("semantic_scholar", '{"data": [{"title": "no id"}]}', "lacks"),
    ("semantic_scholar", "<html>gateway</html>", "not JSON"),
    ("openalex", '{"meta": {}}', "results"),
    ("arxiv", "<feed><entry>", "not XML"),
    ("arxiv", '<!DOCTYPE x [<!ENTITY a "aaaa">]><feed/>', "DOCTYPE"),
])
def test_malformed_answers_fail_with_a_reason_and_are_not_cached(tmp_path, serve, source, body, why):
    s = serve(ok(body))
    layer = lit(tmp_path, env_for(s))
    found = layer.search("sparse autoencoders", source=source)
    assert found.status == "failed" and why in (found.reason or "") and "malformed" in (found.reason or "")
    assert layer.used_files() == [] and not (tmp_path / "cache").exists()


def test_a_client_error_fails_at_once_with_what_to_check(tmp_path, serve):
    s = serve((403, {}, '{"error": "Forbidden"}'))
    t = FakeTime()
    found = lit(tmp_path, env_for(s), t=t).search("x", source="semantic_scholar")
    assert found.status == "failed" and "HTTP 403" in (found.reason or "") and len(s.requests) == 1
    assert t.slept == []


# --- retries, deadlines, the circuit breaker ---------------------------------------------
def test_429_burst_honours_retry_after_then_succeeds(tmp_path, serve):
    s = serve((429, {"Retry-After": "3"}, "{}"), (429, {"Retry-After": "7"}, "{}"),
              ok(fixture("semantic_scholar_search.json")))
    t = FakeTime()
    found = lit(tmp_path, env_for(s), t=t).search("sparse autoencoders", source="semantic_scholar")
    assert found.status == "ok" and t.slept == [3.0, 7.0] and len(s.requests) == 3


def test_5xx_is_retried_with_growing_jittered_backoff(tmp_path, serve):
    s = serve((503, {}, "busy"), (502, {}, "busy"), ok(fixture("openalex_works.json")))
    t = FakeTime()
    found = lit(tmp_path, env_for(s), t=t).search("sparse autoencoders", source="openalex")
    assert found.status == "ok" and len(t.slept) == 2
    assert 0.5 <= t.slept[0] <= 1.0 and 1.0 <= t.slept[1] <= 2.0


def test_429_forever_is_rate_limited_within_the_deadline_and_never_cached(tmp_path, serve):
    s = serve((429, {"Retry-After": "4"}, "{}"))
    t = FakeTime()
    policy = RetryPolicy(search_deadline_s=10.0, max_tries=10, breaker_after=100)
    layer = lit(tmp_path, env_for(s), t=t, policy=policy)
    found = layer.search("sparse autoencoders", source="semantic_scholar")
    assert found.status == "rate_limited" and found.records == () and "429" in (found.reason or "")
    assert t.now - 1000.0 <= 10.0 and t.slept == [4.0, 4.0] and len(s.requests) == 3
    assert "deadline" in (found.reason or "")
    assert not (tmp_path / "cache").exists() and layer.used_files() == []


def test_retry_after_past_the_deadline_is_not_waited_for(tmp_path, serve):
    s = serve((503, {"Retry-After": "3600"}, ""))
    t = FakeTime()
    found = lit(tmp_path, env_for(s), t=t).search("x", source="arxiv")
    assert found.status == "failed" and t.slept == [] and "3600.0 s" in (found.reason or "")


def test_retry_after_as_an_http_date():
    now = datetime(2026, 11, 2, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("Mon, 02 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_s("Mon, 02 Nov 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_s("120", now) == 120.0 and retry_after_s("soon", now) is None


def test_circuit_opens_after_repeated_429s_and_the_source_answers_at_once(tmp_path, serve):
    s = serve((429, {}, "{}"))
    t = FakeTime()
    layer = lit(tmp_path, env_for(s), t=t, policy=RetryPolicy(max_tries=2, breaker_after=3))
    first = layer.search("one", source="semantic_scholar")
    second = layer.search("two", source="semantic_scholar")
    asked = len(s.requests)
    third = layer.search("three", source="semantic_scholar")
    assert [x.status for x in (first, second, third)] == ["rate_limited"] * 3
    assert asked == 3 and len(s.requests) == 3 and layer.circuit_open("semantic_scholar")
    assert "circuit" in (third.reason or "")
    assert [x.query for x in layer.log] == ["one", "two", "three"]


def test_a_server_that_never_answers_fails_within_the_deadline(tmp_path, serve):
    import time

    s = serve(None)
    policy = RetryPolicy(search_deadline_s=0.4, request_timeout_s=0.2, max_tries=5, breaker_after=100)
    start = time.monotonic()
    layer = Literature(tmp_path / "cache", env=env_for(s), policy=policy, sleep=lambda _s: None)
    found = layer.search("x", source="openalex")
    assert found.status == "failed" and "no answer" in (found.reason or "")
    assert time.monotonic() - start < 2.0


def test_the_layers_budget_caps_every_search(tmp_path, serve):
    s = serve((500, {}, ""))
    t = FakeTime()
    layer = lit(tmp_path, env_for(s), t=t, deadline_s=5.0, policy=RetryPolicy(max_tries=50, breaker_after=100))
    first = layer.search("a", source="semantic_scholar")
    assert first.status == "failed" and t.now - 1000.0 <= 5.0
    t.now += 5.0
    asked = len(s.requests)
    later = layer.search("b", source="openalex")
    assert later.status == "unavailable" and "budget" in (later.reason or "") and len(s.requests) == asked


def test_fallback_to_the_next_source_when_one_fails(tmp_path, serve):
    bad, good = serve((500, {}, "")), serve(ok(fixture("openalex_works.json")))
    env = {"S2_API_BASE": bad.base, "OPENALEX_API_BASE": good.base, "ARXIV_API_BASE": bad.base}
    layer = lit(tmp_path, env, policy=RetryPolicy(max_tries=1))
    found = layer.search("sparse autoencoders")
    assert found.status == "ok" and found.source == "openalex"
    assert [(x.source, x.status) for x in layer.log] == [("semantic_scholar", "failed"), ("openalex", "ok")]
    everything_fails = lit(tmp_path, {k: bad.base for k in env}, policy=RetryPolicy(max_tries=1))
    combined = everything_fails.search("other")
    assert combined.status == "failed" and combined.reason and combined.reason.count("HTTP 500") == 3


# --- keys --------------------------------------------------------------------------------
def test_keys_are_sent_but_never_written(tmp_path, serve):
    s = serve((429, {}, "{}"), ok(fixture("semantic_scholar_search.json")))
    env = {**env_for(s), "S2_API_KEY": S2_KEY, "OPENALEX_API_KEY": OA_KEY, "OPENALEX_EMAIL": OA_EMAIL}
    layer = lit(tmp_path, env)
    assert layer.search("sparse autoencoders", source="semantic_scholar").status == "ok"
    assert s.requests[0][2].get("x-api-key") == S2_KEY
    oa = serve(ok(fixture("openalex_works.json")))
    layer2 = lit(tmp_path, {**env, "OPENALEX_API_BASE": oa.base})
    found = layer2.search("sparse autoencoders", source="openalex")
    assert oa.requests[0][1]["api_key"] == [OA_KEY] and oa.requests[0][1]["mailto"] == [OA_EMAIL]
    written = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert written and all(v.encode() not in written for v in (S2_KEY, OA_KEY, OA_EMAIL))
    assert all(v not in repr(layer.log + layer2.log) for v in (S2_KEY, OA_KEY, OA_EMAIL))
    # the same question without keys has the same cache entry
    assert lit(tmp_path, env_for(oa), mode="replay").search("sparse autoencoders", source="openalex") == \
        found.__class__(**{**found.__dict__, "from_cache": True})


def test_an_answer_echoing_the_key_is_not_cached(tmp_path, serve):
    body = fixture("semantic_scholar_search.json").replace("Toy Models", S2_KEY)
    s = serve(ok(body))
    layer = lit(tmp_path, {**env_for(s), "S2_API_KEY": S2_KEY})
    found = layer.search("x", source="semantic_scholar")
    assert found.status == "failed" and S2_KEY not in (found.reason or "")
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))
