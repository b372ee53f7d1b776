"""A scripted HTTP server for the client's unit tests: each request takes the next
scripted answer, and every request is recorded (method, path, headers, body)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: object, status: int = 200, **headers: str) -> "Answer":
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class AnswerHandler(BaseHTTPRequestHandler):
    """Reads a request's body and sends an `Answer`; subclasses decide what to answer."""

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_answer(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, *args: object) -> None:  # keep test output quiet
        return None


class LoopbackServer:
    """A threaded HTTP server on a free loopback port, serving `handler` until close()."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class StubServer(LoopbackServer):
    def __init__(self, port: int = 0) -> None:
        self.answers: list[Answer] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(AnswerHandler):
            def _serve(self) -> None:
                body = self.read_body()
                with stub._lock:
                    stub.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                    answer = stub.answers.pop(0) if stub.answers else Answer(599, b"no scripted answer")
                self.send_answer(answer)

            do_GET = do_POST = do_DELETE = _serve

        super().__init__(Handler, port)
