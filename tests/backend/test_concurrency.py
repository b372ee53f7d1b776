"""Many callers at once: ComfyUI runs one job at a time, the API answers them all."""

from __future__ import annotations

import asyncio

import httpx

from tests.backend.helpers import SMALL, job_with_seed, output_of, records

N = 50


async def _fire(url: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=N)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        return await asyncio.gather(*(
            client.post(f"{url}/flux-dev", json={"prompt": f"person {i}", "seed": 10_000 + i, **SMALL})
            for i in range(N)))


def test_fifty_concurrent_requests_all_get_their_own_image(backend_server):
    double = backend_server.double
    responses = asyncio.run(_fire(backend_server.url))
    assert [r.status_code for r in responses] == [200] * N
    for i, r in enumerate(responses):
        assert int(r.headers["x-seed"]) == 10_000 + i
        job = job_with_seed(double, 10_000 + i)
        assert f"person {i}" in [n["inputs"].get("text") for n in job.graph.values()]
        assert r.content == output_of(double, job)
    assert len({r.content for r in responses}) == N  # every image distinct
    saved = records(backend_server.data_dir)
    assert len(saved) == N and all(rec["status"] == "succeeded" for rec in saved.values())
