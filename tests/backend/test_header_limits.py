"""Request heads are bounded before any other work, authentication included: a client
streaming an endless header is cut off after a bounded number of bytes, and /health
still answers on another connection meanwhile."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx

from backend.server import MAX_HEADER_BYTES, MAX_HEADERS
from tests.backend.helpers import error_of

FLOODERS = 5
CHUNK = b"a" * 16384
# Far past any limit: a flooder that gets this far was never cut off.
FLOOD_CAP = 64 * 1024 * 1024
# What a cut-off flooder may have written: the server's limit, plus what the two
# sockets' buffers took in before the server closed (the client's is kept small).
SEND_BUFFER = 64 * 1024
CUT_OFF_WITHIN = 4 * 1024 * 1024


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    sock.settimeout(120)  # only a hung server reaches this; the test then fails
    sock.connect((parts.hostname, parts.port))
    return sock


def _flood(url: str, past_limit: threading.Barrier) -> tuple[int, bytes]:
    """Send one never-ending header; (bytes sent until the server closed, its answer)."""
    with _connect(url) as sock:
        sent = 0
        waited = False
        try:
            sock.sendall(b"GET /loras HTTP/1.1\r\nHost: flood\r\nX-Endless: ")
            while sent < FLOOD_CAP:
                sock.sendall(CHUNK)
                sent += len(CHUNK)
                if not waited and sent > MAX_HEADER_BYTES // 2:
                    waited = True
                    past_limit.wait()  # every flooder is mid-header at once
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection: what the test wants
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""  # the answer was lost to the reset that cut us off
        return sent, answer


def test_endless_headers_are_cut_off_while_health_answers(backend_server_factory):
    server = backend_server_factory(api_token="secret")
    mid_header = threading.Barrier(FLOODERS + 1)
    with ThreadPoolExecutor(FLOODERS) as pool:
        floods = [pool.submit(_flood, server.url, mid_header) for _ in range(FLOODERS)]
        mid_header.wait()
        health = httpx.get(f"{server.url}/health", timeout=60)
        results = [f.result() for f in floods]
    assert health.status_code == 200, health.text
    for sent, answer in results:
        assert sent < CUT_OFF_WITHIN, f"a flooder sent {sent} bytes before being cut off"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]
    # the server is still whole afterwards
    assert httpx.get(f"{server.url}/health", timeout=60).status_code == 200


def test_too_many_headers_is_431_before_auth(backend_server_factory):
    server = backend_server_factory(api_token="secret")
    headers = {f"x-extra-{i}": "1" for i in range(MAX_HEADERS + 1)}
    r = httpx.get(f"{server.url}/loras", headers=headers, timeout=60)
    assert r.status_code == 431
    assert error_of(r)["code"] == "headers_too_large"
    assert str(MAX_HEADERS) in error_of(r)["message"]
    r = httpx.get(f"{server.url}/loras", headers={"authorization": "Bearer secret"}, timeout=60)
    assert r.status_code == 200
