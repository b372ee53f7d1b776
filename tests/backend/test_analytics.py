"""PostHog events of the contract, to a local sink standing in for PostHog: sent when a key
is set, never with prompt text, and nothing at all without a key."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.backend.helpers import SMALL

SECRET_PROMPT = "a very private prompt 7f3a"


class Sink:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    raw = gzip.decompress(raw)
                sink.bodies.append({"path": self.path, "raw": raw.decode("utf-8", "replace")})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                return  # keep test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        found = []
        for body in self.bodies:
            data = json.loads(body["raw"])
            batch = data.get("batch", []) if isinstance(data, dict) else data
            found += [e for e in batch if isinstance(e, dict) and "event" in e]
        return found


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.server.shutdown()


def test_events_are_sent_without_prompt_text(backend_server_factory, comfyui_double, sink):
    server = backend_server_factory(comfyui_double, posthog_api_key="phc_test", posthog_host=sink.url)
    ok = httpx.post(f"{server.url}/flux-dev", json={"prompt": SECRET_PROMPT, **SMALL}, timeout=30)
    assert ok.status_code == 200
    comfyui_double.fail_next("boom")
    bad = httpx.post(f"{server.url}/flux-dev", json={"prompt": SECRET_PROMPT, **SMALL}, timeout=30)
    assert bad.status_code == 502
    server.stop()  # the app's shutdown flushes the queue
    events = sink.events()
    names = [(e["event"], e["properties"]["request_id"]) for e in events]
    assert ("modal_flux_dev_generation_requested", ok.headers["x-request-id"]) in names
    assert ("modal_flux_dev_generation_completed", ok.headers["x-request-id"]) in names
    assert ("modal_flux_dev_generation_failed", bad.headers["x-request-id"]) in names
    failed = next(e for e in events if e["event"] == "modal_flux_dev_generation_failed")
    assert failed["properties"]["error_code"] == "comfyui_job_failed"
    assert all(SECRET_PROMPT not in b["raw"] for b in sink.bodies)


def test_nothing_is_sent_without_a_key(backend_server_factory, comfyui_double, sink):
    server = backend_server_factory(comfyui_double, posthog_host=sink.url)
    r = httpx.post(f"{server.url}/flux-dev", json={"prompt": "x", **SMALL}, timeout=30)
    assert r.status_code == 200
    server.stop()  # the app's shutdown would flush anything queued
    assert sink.bodies == []
