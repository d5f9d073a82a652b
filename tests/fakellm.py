"""A loopback OpenAI-compatible server that answers from a script, for tests that go through
real HTTP (litellm -> openai client -> httpx -> this server).

    with FakeLLM([Status(429, retry_after=1), Reply("hello")]) as srv:
        settings = LLMSettings("openai/test-model", api_base=srv.base_url, api_key="sk-test")
        ...
        assert len(srv.requests) == 2

Each request to `/v1/chat/completions` consumes the next step of the script. `Reply(fn)` builds
the text from the request body, so a whole session can be scripted. When the script runs out
(or a responder raises) the server answers `error_status` (HTTP 500) with a body saying so, or
starts over with `repeat=True`. The client retries a 500 with backoff; `error_status=400` makes
such a test fail at once instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Body = dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """A normal 200 completion."""

    text: str | Callable[[Body], str]
    """The reply, or a function of the request body that builds it."""
    finish_reason: str = "stop"
    """OpenAI `finish_reason` to report."""
    usage: tuple[int, int] | None = None
    """(prompt_tokens, completion_tokens) to report; None = about 4 characters a token."""
    cached_tokens: int | None = None
    """`usage.prompt_tokens_details.cached_tokens` to report (OpenAI's prompt cache); None = no details."""


@dataclass(frozen=True)
class Status:
    """An error status with an OpenAI-style error body."""

    code: int
    """HTTP status, e.g. 429, 500, 401."""
    retry_after: float | None = None
    """Seconds for the Retry-After header, if any."""
    body: Body | None = None
    """JSON body; None = a generic `{"error": {...}}` naming the status."""


@dataclass(frozen=True)
class Slow:
    """Wait, then do `then` (the client may have given up by then)."""

    seconds: float
    """How long to wait before answering."""
    then: Reply | Status = field(default_factory=lambda: Reply("slow reply"))
    """What to answer after the wait."""


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending any response."""


@dataclass(frozen=True)
class Malformed:
    """A 200 whose body is not JSON."""

    body: str = '{"id": "chatcmpl-broken", "choices": [ this is not json'
    """The raw body sent."""


Step = Reply | Status | Slow | Drop | Malformed


def context_overflow(limit: int = 8192, asked: int = 12000) -> Status:
    """The 400 an OpenAI server sends when the prompt does not fit the context window."""
    message = (
        f"This model's maximum context length is {limit} tokens. However, your messages "
        f"resulted in {asked} tokens. Please reduce the length of the messages."
    )
    error = {"message": message, "type": "invalid_request_error", "param": "messages",
             "code": "context_length_exceeded"}
    return Status(400, body={"error": error})


def _count_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _completion(body: Body, reply: Reply, n: int) -> Body:
    text = reply.text(body) if callable(reply.text) else reply.text
    if reply.usage is not None:
        prompt_tokens, completion_tokens = reply.usage
    else:
        prompt = "".join(str(m.get("content", "")) for m in body.get("messages", []))
        prompt_tokens, completion_tokens = _count_tokens(prompt) + 3, _count_tokens(text)
    usage: Body = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                   "total_tokens": prompt_tokens + completion_tokens}
    if reply.cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens}
    return {
        "id": f"chatcmpl-fake-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                     "message": {"role": "assistant", "content": text}}],
        "usage": usage,
    }


class FakeLLM:
    """The server; a context manager that starts and stops it on 127.0.0.1, port 0."""

    def __init__(self, script: Sequence[Step], *, repeat: bool = False,
                 error_status: int = 500) -> None:
        self.script = list(script)
        self.repeat = repeat
        self.error_status = error_status
        self.requests: list[Body] = []
        """The JSON bodies received on /v1/chat/completions, in order."""
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a Slow step must not hold up the test's exit
        self._thread = threading.Thread(  # a short poll interval: shutdown waits for it
            target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_step(self, body: Body) -> tuple[int, Step | None]:
        with self._lock:
            n = len(self.requests)
            self.requests.append(body)
            if self.repeat and self.script:
                return n, self.script[n % len(self.script)]
            return n, self.script[n] if n < len(self.script) else None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
                pass  # keep test output clean

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [
                        {"id": "test-model", "object": "model", "owned_by": "fakellm"}]})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                body = json.loads(raw or b"{}")
                n, step = fake._next_step(body)
                self._serve(step, body, n)

            def _serve(self, step: Step | None, body: Body, n: int) -> None:
                if step is None:
                    self._json(fake.error_status, {"error": {
                        "message": f"fakellm: script exhausted after {len(fake.script)} "
                                   f"steps (request {n + 1})", "type": "script_exhausted"}})
                elif isinstance(step, Slow):
                    time.sleep(step.seconds)
                    self._serve(step.then, body, n)
                elif isinstance(step, Reply):
                    try:
                        completion = _completion(body, step, n)
                    except Exception as exc:  # a responder's bug: say so, don't hang up
                        self._json(fake.error_status, {"error": {
                            "message": f"fakellm: responder raised {exc!r} on request {n + 1}",
                            "type": "responder_error"}})
                        return
                    self._json(200, completion)
                elif isinstance(step, Status):
                    error = {"message": f"fakellm: scripted HTTP {step.code}",
                             "type": "fakellm_error", "code": str(step.code)}
                    headers = {} if step.retry_after is None else {
                        "Retry-After": f"{step.retry_after:g}"}
                    self._json(step.code, step.body or {"error": error}, headers)
                elif isinstance(step, Malformed):
                    self._raw(200, step.body.encode(), {})
                else:  # Drop: no status line at all
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass

            def _json(self, code: int, obj: Body, headers: dict[str, str] | None = None) -> None:
                self._raw(code, json.dumps(obj).encode(), headers or {})

            def _raw(self, code: int, data: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout); nothing to tell it

        return Handler
