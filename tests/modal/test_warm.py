"""POST /warm and /health's `gpu` on the Modal web tier, offline: backend/modal_dispatch.py's
runner behind the API, with fakes of the GPU function and of the heartbeat store (a
modal.Dict: put-if-absent is its `put(..., skip_if_exists=True)`), and a clock the test
moves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from backend import modal_dispatch as dispatch
from backend.api import create_app
from backend.modal_dispatch import STARTING_KEY, STARTING_TTL_COLD_STARTS, ModalGraphRunner
from backend.settings import Settings
from backend.snapshot_validation import SnapshotValidator

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COLD_START_S = 62.0
STALE_S = 30.0


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeGpu:
    """Stands for ComfyUIWorker: container starts and generation spawns are counted."""
    starts: int = 0
    spawns: int = 0
    refuse: BaseException | None = None

    async def spawn(self, wire_job: dict[str, Any]) -> Any:
        self.spawns += 1
        raise AssertionError("no generation was asked for")

    async def start_container(self) -> None:
        await asyncio.sleep(0)  # a real call yields to other requests here
        if self.refuse is not None:
            raise self.refuse
        self.starts += 1


@dataclass
class FakeStore:
    """Stands for the `ryla-gpu-heartbeats` Dict, shared by every web container."""
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail: BaseException | None = None
    hold_reads: int = 0  # reads wait until this many are waiting: requests read together
    _waiting: int = 0
    _all_in: asyncio.Event | None = None

    async def read(self) -> dict[str, dict[str, Any]]:
        seen = dict(self.items)  # what the store held when this read reached it
        if self.hold_reads:
            self._all_in = self._all_in or asyncio.Event()
            self._waiting += 1
            if self._waiting >= self.hold_reads:
                self._all_in.set()
            await self._all_in.wait()
        if self.fail is not None:
            raise self.fail
        return seen

    async def mark_starting(self, since: float) -> bool:
        if STARTING_KEY in self.items:
            return False
        self.items[STARTING_KEY] = {"since": since}
        return True

    async def clear_starting(self) -> None:
        self.items.pop(STARTING_KEY, None)


@dataclass
class WebTier:
    client: TestClient
    gpu: FakeGpu
    store: FakeStore
    clock: Clock

    def warm(self) -> httpx.Response:
        return self.client.post("/warm", headers=AUTH)

    def beat(self, busy: bool = False) -> None:
        self.store.items["task-1"] = {"at": self.clock.now, "busy": busy}


@pytest.fixture
def make_web(tmp_path: Path) -> Iterator[Callable[..., WebTier]]:
    clients: list[TestClient] = []

    def make(store: FakeStore | None = None, clock: Clock | None = None) -> WebTier:
        n = len(clients)
        settings = Settings(api_token=TOKEN, models_dir=tmp_path / "models",
                            lora_dir=tmp_path / "loras", data_dir=tmp_path / f"data{n}")
        gpu, store, clock = FakeGpu(), store or FakeStore(), clock or Clock()
        runner = ModalGraphRunner(gpu, store, SnapshotValidator(settings.models_dir, settings.lora_dir),
                                  cold_start_s=COLD_START_S, heartbeat_stale_s=STALE_S,
                                  wall_clock=clock)
        client = TestClient(create_app(settings, runner))
        clients.append(client)
        return WebTier(client, gpu, store, clock)

    yield make
    for client in clients:
        client.close()


def test_the_first_warm_starts_one_gpu_and_says_when_it_is_ready(make_web) -> None:
    web = make_web()
    response = web.warm()
    assert response.status_code == 202
    assert response.json() == {"gpu": "starting", "ready_in_s": 62}
    assert web.gpu.starts == 1 and web.gpu.spawns == 0
    assert web.store.items[STARTING_KEY] == {"since": web.clock.now}


def test_a_second_warm_within_the_start_starts_none_and_counts_down(make_web) -> None:
    web = make_web()
    web.warm()
    web.clock.now += 20
    assert web.warm().json() == {"gpu": "starting", "ready_in_s": 42}
    web.clock.now += 50  # slower than the measured start: still in flight, ready "now"
    assert web.warm().json() == {"gpu": "starting", "ready_in_s": 0}
    assert web.gpu.starts == 1


def test_a_warm_gpu_starts_none(make_web) -> None:
    web = make_web()
    for busy in (False, True):  # a busy container is up too: its GPU is warm
        web.beat(busy=busy)
        response = web.warm()
        assert response.status_code == 202 and response.json() == {"gpu": "warm", "ready_in_s": 0}
    assert web.gpu.starts == 0 and STARTING_KEY not in web.store.items


def test_once_the_started_container_beats_the_gpu_is_warm(make_web) -> None:
    web = make_web()
    web.warm()
    web.clock.now += 55
    web.beat()
    assert web.warm().json() == {"gpu": "warm", "ready_in_s": 0}
    assert web.client.get("/health").json()["gpu"] == "warm"
    assert web.gpu.starts == 1


def test_a_start_that_never_beat_is_asked_again_after_its_ttl(make_web) -> None:
    web = make_web()
    web.warm()
    web.clock.now += STARTING_TTL_COLD_STARTS * COLD_START_S
    assert web.client.get("/health").json()["gpu"] == "cold"
    assert web.warm().json() == {"gpu": "starting", "ready_in_s": 62}
    assert web.gpu.starts == 2
    assert web.store.items[STARTING_KEY] == {"since": web.clock.now}  # the new start's


def test_a_gpu_gone_stale_is_cold_and_warm_starts_one(make_web) -> None:
    web = make_web()
    web.beat()
    web.clock.now += STALE_S + 1
    assert web.warm().json()["gpu"] == "starting" and web.gpu.starts == 1


def test_two_web_containers_start_one_gpu_between_them(make_web) -> None:
    store, clock = FakeStore(), Clock()
    first, second = make_web(store, clock), make_web(store, clock)
    assert first.warm().json()["gpu"] == "starting"
    assert second.warm().json()["gpu"] == "starting"
    assert first.gpu.starts + second.gpu.starts == 1


def test_concurrent_warms_start_one_gpu(make_web, monkeypatch: pytest.MonkeyPatch) -> None:
    """Studio tabs opened together: every request reads 'cold' before any marks a start;
    the store's put-if-absent lets one of them start a GPU."""
    monkeypatch.setattr(dispatch, "HEARTBEAT_READ_TIMEOUT_S", 60.0)  # the reads wait for each other
    store, clock = FakeStore(hold_reads=9), Clock()
    tiers = [make_web(store, clock) for _ in range(3)]

    async def together() -> list[dict[str, Any]]:
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=t.client.app),
                                     base_url="http://web") for t in tiers]
        try:
            responses = await asyncio.gather(*(c.post("/warm", headers=AUTH)
                                               for c in clients for _ in range(3)))
        finally:
            for c in clients:
                await c.aclose()
        return [r.json() for r in responses]

    answers = asyncio.run(together())
    assert {a["gpu"] for a in answers} == {"starting"}
    assert sum(t.gpu.starts for t in tiers) == 1


def test_health_never_starts_a_gpu_and_reports_the_same_state(make_web) -> None:
    web = make_web()
    states = [web.client.get("/health").json()["gpu"] for _ in range(5)]
    assert states == ["cold"] * 5 and web.gpu.starts == 0 and web.gpu.spawns == 0
    assert STARTING_KEY not in web.store.items
    web.warm()
    assert web.client.get("/health").json()["gpu"] == "starting"
    assert web.gpu.starts == 1


def test_a_start_that_fails_is_a_503_and_the_next_warm_tries_again(make_web) -> None:
    web = make_web()
    web.gpu.refuse = ConnectionError("control plane unreachable")
    response = web.warm()
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "comfyui_unavailable" and "control plane unreachable" in error["message"]
    assert STARTING_KEY not in web.store.items
    web.gpu.refuse = None
    assert web.warm().json()["gpu"] == "starting" and web.gpu.starts == 1


def test_an_unreadable_store_starts_nothing(make_web) -> None:
    web = make_web()
    web.store.fail = ConnectionError("dict unreachable")
    response = web.warm()
    assert response.status_code == 503 and "no GPU was started" in response.json()["error"]["message"]
    assert web.gpu.starts == 0
    health = web.client.get("/health").json()
    assert health["gpu"] == "cold" and health["generation"]["state"] == "unknown"


def test_warm_needs_the_token(make_web) -> None:
    web = make_web()
    response = web.client.post("/warm")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert web.gpu.starts == 0
