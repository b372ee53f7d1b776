"""/health under load: concurrent callers share one ComfyUI probe for a short window."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from backend.comfyui_client import HEALTH_SHARED_S, ComfyUIClient


def test_concurrent_health_calls_share_one_probe(tmp_path: Path) -> None:
    now = [100.0]
    client = ComfyUIClient("http://comfyui.invalid", models_dir=tmp_path, lora_dir=tmp_path,
                           clock=lambda: now[0])
    queue_calls = 0

    async def run() -> list[dict]:
        nonlocal queue_calls
        probing = asyncio.Event()
        release = asyncio.Event()

        async def comfyui(request: httpx.Request) -> httpx.Response:
            nonlocal queue_calls
            if request.url.path == "/queue":
                queue_calls += 1
                probing.set()
                await release.wait()  # every caller arrives while this probe is in flight
                return httpx.Response(200, json={"queue_running": [], "queue_pending": []})
            return httpx.Response(200, json={"system": {"comfyui_version": "0.12.1"}})

        client._http = httpx.AsyncClient(base_url=client.base_url,
                                         transport=httpx.MockTransport(comfyui))
        callers = [asyncio.create_task(client.health()) for _ in range(200)]
        await probing.wait()
        await asyncio.sleep(0)  # the other callers reach the shared probe
        release.set()
        answers = await asyncio.gather(*callers)
        assert queue_calls == 1
        # within the window the answer is reused; after it, ComfyUI is asked again
        now[0] += HEALTH_SHARED_S / 2
        await client.health()
        assert queue_calls == 1
        now[0] += HEALTH_SHARED_S
        await client.health()
        assert queue_calls == 2
        await client.aclose()
        return answers

    answers = asyncio.run(run())
    assert all(a["reachable"] and a["version"] == "0.12.1" and a["queue_remaining"] == 0
               for a in answers)
    assert all("error" not in a for a in answers)
