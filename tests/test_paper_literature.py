"""The optional literature search: cached, and skipped with a message when it cannot run."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agent.paper.build import literature

ANSWER = {"total": 1, "data": [{
    "title": "Toy Models of Superposition", "year": 2022, "authors": [], "venue": "", "citationCount": 1,
    "citationStyles": {"bibtex": "@article{Elhage2022ToyMO,\n title={Toy Models of Superposition},\n year={2022}\n}"},
}]}


class _Server:
    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.hits += 1
                time.sleep(delay)
                body = json.dumps(ANSWER if status == 200 else {"message": "slow down"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/graph/v1"

    def close(self) -> None:
        self.httpd.shutdown()


def test_search_returns_bibtex_entries_and_caches_the_answer(tmp_path):
    srv = _Server()
    try:
        first = literature.search("superposition", api_base=srv.base, cache=tmp_path)
        second = literature.search("superposition", api_base=srv.base, cache=tmp_path)
    finally:
        srv.close()
    assert first.skipped is None and [p.key for p in first.papers] == ["Elhage2022ToyMO"]
    assert second.cached and second.papers == first.papers
    assert srv.hits == 1


def test_rate_limited_search_is_skipped_with_a_message(tmp_path):
    srv = _Server(status=429)
    try:
        result = literature.search("superposition", api_base=srv.base, cache=tmp_path)
    finally:
        srv.close()
    assert result.papers == () and "rate limited" in (result.skipped or "")
    assert not list(tmp_path.iterdir())  # a refusal is not cached


def test_unreachable_service_is_skipped(tmp_path):
    result = literature.search("superposition", api_base="http://127.0.0.1:9/graph/v1", cache=tmp_path)
    assert result.papers == () and "cannot be reached" in (result.skipped or "")
    assert not list(tmp_path.iterdir())  # a failure is not cached


def test_found_entries_are_merged_into_the_bib_once():
    papers = literature._papers(ANSWER)
    text, added = literature.merge_into_bib("@article{a,\n title={A}\n}\n", papers)
    assert added == ["Elhage2022ToyMO"] and "Toy Models of Superposition" in text
    again, added_again = literature.merge_into_bib(text, papers)
    assert added_again == [] and again.count("Elhage2022ToyMO") == 1
