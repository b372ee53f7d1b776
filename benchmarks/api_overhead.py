"""The API's own overhead per request, against the ComfyUI test double's time.

`python -m benchmarks.api_overhead [--n 30] [--concurrent 50]`

"direct" drives the double the way any ComfyUI client must (open /ws, POST /prompt,
wait for execution_success, GET /history, GET /view) with the same graph the API
renders; "api" is POST /flux-dev through the backend, end to end. The difference is
what the backend adds: validation, records, the image fetch, HTTP in and out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import requests
import websocket

from tests.backend_fixtures import BackendServer
from tests.comfyui_double import ComfyUIDouble
from workflows.render import render_workflow
from workflows.request_models import FluxDevRequest

BODY = {"prompt": "a lighthouse at dusk", "width": 256, "height": 256, "steps": 2}


def direct_once(url: str, seed: int) -> float:
    graph = render_workflow("flux-dev", FluxDevRequest(**BODY), seed=seed)
    started = time.perf_counter()
    client_id = uuid.uuid4().hex
    ws = websocket.create_connection(f"{url.replace('http', 'ws', 1)}/ws?clientId={client_id}")
    try:
        prompt_id = requests.post(f"{url}/prompt", json={"prompt": graph, "client_id": client_id},
                                  timeout=30).json()["prompt_id"]
        while True:
            message = ws.recv()
            if isinstance(message, str):
                data = json.loads(message)
                if data["type"] == "execution_success" and data["data"]["prompt_id"] == prompt_id:
                    break
    finally:
        ws.close()
    entry = requests.get(f"{url}/history/{prompt_id}", timeout=30).json()[prompt_id]
    image = next(iter(entry["outputs"].values()))["images"][0]
    requests.get(f"{url}/view", params=image, timeout=30).raise_for_status()
    return (time.perf_counter() - started) * 1000


def api_once(client: httpx.Client, url: str, seed: int, fmt: str) -> float:
    started = time.perf_counter()
    response = client.post(f"{url}/flux-dev", json={**BODY, "seed": seed, "format": fmt})
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


async def api_concurrent(url: str, n: int) -> float:
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=n)) as client:
        responses = await asyncio.gather(*(
            client.post(f"{url}/flux-dev", json={**BODY, "seed": 900_000 + i, "format": "png"})
            for i in range(n)))
    assert all(r.status_code == 200 for r in responses)
    return (time.perf_counter() - started) * 1000


def row(name: str, times: list[float]) -> str:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return f"{name:<28} {len(times):>4} {statistics.median(times):>10.1f} {p95:>10.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=50)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="ryla-bench-"))
    double = ComfyUIDouble(base / "comfyui").start()
    server = BackendServer(double, base / "backend").start()
    try:
        with httpx.Client(timeout=60) as client:
            api_once(client, server.url, 0, "png")  # warm: object_info cache, connections
            direct_once(double.url, 0)
            direct = [direct_once(double.url, 1000 + i) for i in range(args.n)]
            api_png = [api_once(client, server.url, 2000 + i, "png") for i in range(args.n)]
            api_jpeg = [api_once(client, server.url, 3000 + i, "jpeg") for i in range(args.n)]
        concurrent_ms = asyncio.run(api_concurrent(server.url, args.concurrent))
    finally:
        server.stop()
        double.stop()
    print(f"{'256x256, 2 steps (ms)':<28} {'n':>4} {'median':>10} {'p95':>10}")
    print(row("double, direct client", direct))
    print(row("API /flux-dev png", api_png))
    print(row("API /flux-dev jpeg", api_jpeg))
    overhead = statistics.median(api_png) - statistics.median(direct)
    print(f"\nAPI overhead per request (median, png): {overhead:.1f} ms "
          f"({overhead / statistics.median(direct) * 100:.0f}% of the double's time)")
    print(f"JPEG re-encode adds: {statistics.median(api_jpeg) - statistics.median(api_png):.1f} ms")
    print(f"{args.concurrent} concurrent requests through the API: {concurrent_ms:.0f} ms wall "
          f"({concurrent_ms / args.concurrent:.1f} ms per job; ComfyUI runs one at a time)")


if __name__ == "__main__":
    main()
