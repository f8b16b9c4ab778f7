"""A small OpenAI-compatible HTTP server on loopback, for the plugin's tests (a real server, not a mock).

It answers ``POST /v1/completions`` and ``/v1/chat/completions``. The query it writes for a prompt is
``what about <the first four words of the last "Document:" line>`` (so a test can check that every record
belongs to its document), followed by ``\\nExample`` (which the stop string must cut), with one
log-probability per word. ``failure`` makes every other request fail: ``"status"`` alternates HTTP 500 and
429, ``"malformed"`` returns a 200 whose body is not JSON; ``"client"`` answers every request with HTTP 400 (a
client error, which no retry fixes). ``delay`` slows each answer (seconds).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LAST_DOCUMENT = re.compile(r"Document:\s*(.*)")


def expected_query(document: str) -> str:
    """The query the server writes for a prompt whose last document is ``document``."""
    return "what about " + " ".join(document.split()[:4])


class OpenAIServer:
    """Start with ``with OpenAIServer(...) as server:``; ``server.url`` is the ``api_base``."""

    def __init__(self, failure: str | None = None, delay: float = 0.0):
        self.failure, self.delay = failure, delay
        self.requests: list[dict] = []
        self.failed = 0
        self.answered = 0
        self.in_flight = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no request is being answered (e.g. those of a client that was just killed)."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                with server._lock:
                    server.in_flight += 1
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed mid-request
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append(body)
                    count = len(server.requests)
                time.sleep(server.delay)
                if server.failure == "client":
                    server.failed += 1
                    return self._send(400, b'{"error": {"message": "max_tokens is too large"}}')
                if server.failure and count % 2 == 1:
                    server.failed += 1
                    if server.failure == "status":
                        return self._send(500 if count % 4 == 1 else 429, b'{"error": {"message": "busy"}}')
                    return self._send(200, b'{"choices": [{"text": "unterminated')
                chat = self.path.endswith("/chat/completions")
                prompt = body["messages"][-1]["content"] if chat else body["prompt"]
                found = LAST_DOCUMENT.findall(prompt)
                query = expected_query(found[-1] if found else prompt)
                choices = [
                    answer(i, query + ("" if i == 0 else f" {i}"), chat, body.get("logprobs"))
                    for i in range(body.get("n") or 1)
                ]
                payload = {
                    "id": f"cmpl-{count}",
                    "object": "chat.completion" if chat else "text_completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": choices,
                }
                with server._lock:
                    server.answered += 1
                self._send(200, json.dumps(payload).encode())

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def answer(index: int, query: str, chat: bool, logprobs: object) -> dict:
    """One choice of a completion or chat completion, with per-word log-probabilities when asked."""
    words = query.split()
    values = [-0.1 * (i + 1) for i in range(len(words))]
    text = " " + query + "\nExample"
    if chat:
        lp = (
            {"content": [{"token": w, "logprob": v, "bytes": None, "top_logprobs": []} for w, v in zip(words, values)]}
            if logprobs
            else None
        )
        return {
            "index": index,
            "message": {"role": "assistant", "content": text},
            "logprobs": lp,
            "finish_reason": "stop",
        }
    lp = {"tokens": words, "token_logprobs": values, "top_logprobs": None, "text_offset": None} if logprobs else None
    return {"index": index, "text": text, "logprobs": lp, "finish_reason": "stop"}
