"""A local HTTP server that answers long requests the way a Modal web endpoint does
(https://modal.com/docs/guide/webhook-timeouts):

- a request still running after `cut_s` (150 s on Modal) is answered
  `303 See Other` with `Location: <the original URL>?__modal_function_call_id=fc-...`;
- a GET of that result URL waits for the result, again up to `cut_s`, and answers it,
  or answers the same 303 once more;
- a POST to the result URL is refused 400 (`modal-http: bad redirect method`).

`location` chooses how the Location is written: "absolute" (same host), "relative" (a
path), or a full URL of another host. Every request is recorded with its headers.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tests.cli.stub_server import Answer, AnswerHandler, LoopbackServer

CALL_PARAM = "__modal_function_call_id"


@dataclass
class Hop:
    method: str
    path: str
    authorization: str | None
    body: bytes


class ModalLikeServer(LoopbackServer):
    def __init__(self, answer: Answer, *, job_s: float, cut_s: float,
                 location: str = "absolute") -> None:
        self.answer = answer
        self.job_s = job_s
        self.cut_s = cut_s
        self.location = location
        self.hops: list[Hop] = []
        self._done_at: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        server = self

        class Handler(AnswerHandler):
            def _serve(self) -> None:
                body = self.read_body()
                with server._lock:
                    server.hops.append(Hop(self.command, self.path,
                                           self.headers.get("Authorization"), body))
                url = urlsplit(self.path)
                call_id = (parse_qs(url.query).get(CALL_PARAM) or [None])[0]
                if call_id is None:
                    call_id = f"fc-{next(server._ids)}"
                    server._done_at[call_id] = time.monotonic() + server.job_s
                elif self.command != "GET":
                    return self.send_answer(Answer(400, b"modal-http: bad redirect method"))
                elif call_id not in server._done_at:
                    return self.send_answer(Answer(404, b"modal-http: no such function call"))
                left = server._done_at[call_id] - time.monotonic()
                time.sleep(max(0.0, min(left, server.cut_s)))
                if left <= server.cut_s:
                    return self.send_answer(server.answer)
                result_path = f"{url.path}?{CALL_PARAM}={call_id}"
                where = {"absolute": f"{server.url}{result_path}",
                         "relative": result_path}.get(server.location,
                                                      f"{server.location}{result_path}")
                self.send_answer(Answer(303, b"", {"Location": where}))

            do_GET = do_POST = _serve

        super().__init__(Handler)
