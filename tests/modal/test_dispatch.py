"""The Modal web tier offline: backend/modal_app.py's web app (the same FastAPI app as
`ryla-backend`) with a fake of the GPU function behind backend/modal_dispatch.py.

The fake either runs the real GPU body (backend/gpu_worker.py) against the ComfyUI test
double, joined to the web tier by an in-memory job channel, or answers what a test
scripts (an error, an exception, nothing at all).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import backend.modal_app as m
from backend.gpu_worker import GpuWorker
from backend.modal_dispatch import InMemoryJobChannel, ModalGraphRunner
from backend.deploy.web import deployment_settings
from backend.snapshot_validation import SnapshotValidator
from tests.backend.helpers import SMALL, data_url, image_bytes
from tests.builders import safetensors_bytes
from tests.comfyui_double import ComfyUIDouble
from workflows.manifest import files_for

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNG = image_bytes()


@dataclass
class FakeCall:
    call_id: str
    answer: Callable[[], Awaitable[Any]]
    cancelled: bool = False
    task: asyncio.Task[Any] | None = None

    async def get(self, timeout_s: float) -> Any:
        if self.task is None:
            self.task = asyncio.ensure_future(self.answer())
        done, _ = await asyncio.wait({self.task}, timeout=timeout_s)
        if not done:
            raise TimeoutError  # as modal.FunctionCall.get does while the call runs
        return self.task.result()

    async def cancel(self) -> None:
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()


@dataclass
class FakeGpu:
    """Stands for ComfyUIWorker.run_graph: each spawn is recorded; `behave(job)` gives
    the coroutine that produces the call's result."""
    behave: Callable[[dict[str, Any]], Awaitable[Any]]
    jobs: list[dict[str, Any]] = field(default_factory=list)
    calls: list[FakeCall] = field(default_factory=list)
    spawned_at: list[float] = field(default_factory=list)

    async def spawn(self, wire_job: dict[str, Any]) -> FakeCall:
        self.jobs.append(wire_job)
        self.spawned_at.append(time.time())
        self.calls.append(FakeCall(f"fc-{len(self.calls) + 1}", lambda: self.behave(wire_job)))
        return self.calls[-1]


class RecordingChannel(InMemoryJobChannel):
    """The job channel in memory, remembering each cancel request."""

    def __init__(self) -> None:
        super().__init__()
        self.cancels_asked: list[str] = []

    async def request_cancel(self, job_key: str) -> None:
        self.cancels_asked.append(job_key)
        await super().request_cancel(job_key)


@dataclass
class FakeHeartbeats:
    beats: dict[str, dict[str, Any]] = field(default_factory=dict)
    reads: int = 0
    fail: BaseException | None = None
    delay_s: float = 0.0

    async def read(self) -> dict[str, dict[str, Any]]:
        self.reads += 1
        await asyncio.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        return self.beats


@dataclass
class WebTier:
    client: TestClient
    gpu: FakeGpu
    heartbeats: FakeHeartbeats
    settings: Settings
    refreshes: list[str]
    commits: list[str]
    channel: RecordingChannel


def install(models_dir: Path, *pipelines: str) -> None:
    for pipeline in pipelines:
        for entry in files_for(pipeline):
            path = models_dir / entry.folder / entry.local_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")  # validation looks at names only


def wire_ok(data: bytes = PNG, **timings: float) -> dict[str, Any]:
    return {"prompt_id": "p1", "timings": {"comfyui_ms": 5.0, **timings},
            "outputs": [{"node_id": "9", "filename": "out.png", "content_type": "image/png",
                         "data": data}]}


@pytest.fixture
def make_web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., WebTier]]:
    """`make_web(behave, deadline_s=..., grace_s=...)`: the deployed web app, offline."""
    refreshes: list[str] = []
    commits: list[str] = []
    monkeypatch.setattr(m, "_reload_models", lambda: refreshes.append("models"))
    monkeypatch.setattr(m, "_reload_loras", lambda: refreshes.append("loras"))
    monkeypatch.setattr(m, "_commit_data", lambda: commits.append("data"))
    monkeypatch.setattr(m, "lora_volume", type("V", (), {"commit": lambda self: commits.append("loras")})())
    clients: list[TestClient] = []

    def make(behave: Callable[[dict[str, Any]], Awaitable[Any]], *, deadline_s: float = 20.0,
             grace_s: float = 1.0, installed: tuple[str, ...] = ("flux-dev", "flux-schnell",
                                                                 "flux-lora", "pulid"),
             channel: RecordingChannel | None = None) -> WebTier:
        settings = deployment_settings({"RYLA_API_TOKEN": TOKEN, "RYLA_DEADLINE_S": str(deadline_s)},
                                       m.LAYOUT).model_copy(update={
            "models_dir": tmp_path / "models", "lora_dir": tmp_path / "loras", "data_dir": tmp_path / "data"})
        install(settings.models_dir, *installed)
        gpu, beats = FakeGpu(behave), FakeHeartbeats()
        channel = channel if channel is not None else RecordingChannel()
        validator = SnapshotValidator(settings.models_dir, settings.lora_dir,
                                      refresh=lambda: m._reload_models())
        # A GPU side that never speaks is given up on quickly here (its container "never
        # starts"); one that speaks keeps the deployed silence window.
        runner = ModalGraphRunner(gpu, beats, validator, cold_start_s=m.COLD_START_S,
                                  heartbeat_stale_s=m.HEARTBEAT_STALE_S, channel=channel,
                                  poll_slice_s=0.05, grace_s=grace_s, stop_answer_s=0.2,
                                  start_wait_s=0.5)
        client = TestClient(m.build_asgi_app(settings, runner))
        clients.append(client)
        return WebTier(client, gpu, beats, settings, refreshes, commits, channel)

    yield make
    for client in clients:
        client.close()


def gpu_body(double: ComfyUIDouble, tmp_path: Path,
             channel: InMemoryJobChannel | None = None) -> Callable[[dict[str, Any]], Awaitable[Any]]:
    """The real GPU method's body, on the ComfyUI double (on `channel`, if given)."""
    worker = GpuWorker(double.url, models_dir=tmp_path / "gpu-models", lora_dir=tmp_path / "loras",
                       channel=channel)
    return worker.run


# -- dispatch ----------------------------------------------------------------------------


def test_a_generation_runs_the_gpu_body_and_answers_as_the_spec_says(
        make_web: Callable[..., WebTier], comfyui_double: ComfyUIDouble, tmp_path: Path) -> None:
    web = make_web(gpu_body(comfyui_double, tmp_path))
    before = time.time()
    response = web.client.post("/flux", json={"prompt": "a fox", "seed": 11, **SMALL},
                               headers={**AUTH, "Accept": "application/json"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["seed"] == 11 and response.headers["X-Seed"] == "11"
    assert response.headers["X-Request-Id"] == body["request_id"]
    assert int(response.headers["X-Generation-Time-Ms"]) >= 0
    assert base64.b64decode(body["images"][0]).startswith(b"\x89PNG")
    # timings from both sides: the GPU body's own and the web tier's wait for it
    assert {"comfyui_ms", "gpu_ms", "gpu_wait_ms", "total_ms"} <= set(body["timings"])
    [job] = web.gpu.jobs
    assert job["user_graph"] is False and job["images"] == {}
    assert before + 20.0 <= job["deadline_at"] <= time.time() + 20.0  # the request's deadline
    [ran] = comfyui_double.jobs
    assert ran.graph == job["graph"]  # the graph the web tier filled is what ComfyUI ran


def test_a_reference_image_travels_as_bytes_under_the_name_the_graph_loads(
        make_web: Callable[..., WebTier], comfyui_double: ComfyUIDouble, tmp_path: Path) -> None:
    web = make_web(gpu_body(comfyui_double, tmp_path))
    response = web.client.post("/flux-instantid", headers=AUTH, json={
        "prompt": "smiling", "method": "pulid", "reference_image": data_url(PNG), **SMALL})
    assert response.status_code == 200, response.text
    [job] = web.gpu.jobs
    [(name, png)] = job["images"].items()
    assert png.startswith(b"\x89PNG")
    loads = [n["inputs"]["image"] for n in job["graph"].values() if n["class_type"] == "LoadImage"]
    assert loads == [name]
    assert comfyui_double.input_images() == [name]  # the GPU body uploaded it before running


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/flux-dev", {"prompt": "x", "steps": 101}, 400, "invalid_request"),
    ("/flux-instantid", {"prompt": "x", "reference_image": "not an image"}, 400, "invalid_image"),
    ("/workflow", {"workflow": {"1": {"class_type": "NoSuchNode", "inputs": {}}}}, 400,
     "invalid_workflow"),
    ("/flux-lora", {"prompt": "x", "lora_id": "nobody"}, 404, "lora_not_found"),
    ("/wan2", {"prompt": "waves"}, 503, "model_not_installed"),
])
def test_bad_requests_are_refused_on_the_web_tier_without_a_gpu(
        make_web: Callable[..., WebTier], path: str, body: dict[str, Any], status: int,
        code: str) -> None:
    web = make_web(lambda job: pytest.fail("the GPU was asked"))  # type: ignore[arg-type,return-value]
    response = web.client.post(path, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert web.gpu.jobs == []
    if code == "model_not_installed":
        assert "wan2.1_t2v_1.3B_fp16.safetensors" in response.json()["error"]["message"]
        assert web.refreshes == ["models"]  # one reload of the models Volume, then the answer


def test_without_the_token_nothing_runs(make_web: Callable[..., WebTier]) -> None:
    web = make_web(lambda job: pytest.fail("the GPU was asked"))  # type: ignore[arg-type,return-value]
    response = web.client.post("/flux", json={"prompt": "x"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert web.gpu.jobs == []


def test_without_the_token_no_volume_is_reloaded_or_committed(make_web: Callable[..., WebTier]) -> None:
    # Anyone on the internet can send these: none may make the app do Volume work.
    web = make_web(lambda job: pytest.fail("the GPU was asked"))  # type: ignore[arg-type,return-value]
    wrong = {"Authorization": "Bearer wrong"}
    answers = [web.client.get("/models"), web.client.get("/loras", headers=wrong),
               web.client.post("/flux-dev", json={"prompt": "x"}),
               web.client.post("/flux-lora", json={"prompt": "x", "lora_id": "alice"}, headers=wrong),
               web.client.post("/loras", data={"id": "alice"},
                               files={"file": ("a.safetensors", safetensors_bytes(), "application/octet-stream")})]
    assert [a.status_code for a in answers] == [401] * 5
    assert web.refreshes == [] and web.commits == []


def test_a_refused_generation_commits_nothing(make_web: Callable[..., WebTier]) -> None:
    async def ok(job: dict[str, Any]) -> dict[str, Any]:
        return wire_ok()

    web = make_web(ok)
    assert web.client.post("/flux-dev", json={"prompt": "x", "steps": 0}, headers=AUTH).status_code == 400
    assert web.commits == []
    assert web.client.post("/flux-dev", json={"prompt": "x"}, headers=AUTH).status_code == 200
    assert web.commits == ["data"]  # the generation that was run, not the refused one


@pytest.mark.parametrize(("code", "status"), [
    ("comfyui_job_failed", 502), ("comfyui_unavailable", 503), ("model_not_installed", 503),
    ("deadline_exceeded", 504), ("invalid_workflow", 400)])
def test_an_error_from_the_gpu_side_keeps_its_spec_code(
        make_web: Callable[..., WebTier], code: str, status: int) -> None:
    async def fails(job: dict[str, Any]) -> dict[str, Any]:
        return {"error": {"code": code, "message": f"said the GPU: {code}", "field": None}}

    web = make_web(fails)
    response = web.client.post("/flux", json={"prompt": "x"}, headers=AUTH)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"] == f"said the GPU: {code}"
    assert response.headers["X-Request-Id"]
    record = json.loads((web.settings.data_dir / "jobs" /
                         f"{response.headers['X-Request-Id']}.json").read_text())
    assert record["status"] == "failed" and record["error"]["code"] == code  # nothing is lost


def test_a_crashed_gpu_function_is_a_502_naming_the_call(make_web: Callable[..., WebTier]) -> None:
    async def crashes(job: dict[str, Any]) -> Any:
        raise RuntimeError("container preempted")

    response = make_web(crashes).client.post("/flux", json={"prompt": "x"}, headers=AUTH)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "comfyui_job_failed"
    assert "container preempted" in error["message"] and "fc-1" in error["message"]


def test_a_malformed_gpu_answer_is_a_502(make_web: Callable[..., WebTier]) -> None:
    async def odd(job: dict[str, Any]) -> Any:
        return {"outputs": "nope"}

    response = make_web(odd).client.post("/flux", json={"prompt": "x"}, headers=AUTH)
    assert response.status_code == 502 and "malformed" in response.json()["error"]["message"]


def test_a_gpu_function_that_cannot_be_spawned_is_a_503(make_web: Callable[..., WebTier]) -> None:
    web = make_web(lambda job: pytest.fail("never runs"))  # type: ignore[arg-type,return-value]

    async def refuse(wire_job: dict[str, Any]) -> Any:
        raise ConnectionError("control plane unreachable")

    web.gpu.spawn = refuse  # type: ignore[method-assign]
    response = web.client.post("/flux", json={"prompt": "x"}, headers=AUTH)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "comfyui_unavailable"
    assert "control plane unreachable" in response.json()["error"]["message"]


def test_a_job_past_its_deadline_whose_gpu_side_is_silent_is_cancelled_unconfirmed(
        make_web: Callable[..., WebTier]) -> None:
    async def never(job: dict[str, Any]) -> Any:
        await asyncio.sleep(3600)

    # Long enough that preparing the job (the first request reads the object_info snapshot)
    # fits on a loaded machine, so the deadline is met while the GPU call runs.
    deadline_s = 2.0
    web = make_web(never, deadline_s=deadline_s, grace_s=0.2)
    response = web.client.post("/flux", json={"prompt": "x"}, headers=AUTH)
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "deadline_exceeded" and "fc-1" in error["message"]
    assert "not known" in error["message"]  # never "cancelled in ComfyUI" on a guess
    [call] = web.gpu.calls
    assert call.cancelled  # the GPU is freed, not left running a job nobody waits for
    [job] = web.gpu.jobs
    assert job["deadline_at"] - web.gpu.spawned_at[0] <= deadline_s  # the GPU side was told too


def _submit(client: TestClient, body: dict[str, Any], path: str = "/flux-dev") -> str:
    r = client.post(path, json=body, headers={**AUTH, "Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + 30  # a guard against a stuck test, not a measurement
    while not condition():
        assert time.monotonic() < give_up, f"timed out waiting until {what}"
        time.sleep(0.02)


def _ended(client: TestClient, job_id: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def ended() -> bool:
        seen.update(client.get(f"/jobs/{job_id}", headers=AUTH).json())
        return seen["status"] not in ("queued", "running")

    _wait_until(ended, f"job {job_id} ends")
    return seen


def test_delete_with_a_silent_gpu_side_cancels_the_call_and_ends_cancel_unconfirmed(
        make_web: Callable[..., WebTier]) -> None:
    """The GPU side never answers (its container never started, or died): the web tier
    asked it on the channel, then cancels the GPU call itself, and the job ends failed
    `cancel_unconfirmed`, never "cancelled" on a guess."""
    async def never(job: dict[str, Any]) -> Any:
        await asyncio.sleep(3600)

    web = make_web(never)
    with web.client as client:  # one event loop for the requests and the job they start
        job_id = _submit(client, {"prompt": "x"}, "/flux")
        _wait_until(lambda: bool(web.gpu.calls), "the job reaches the GPU function")
        assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 202
        job = _ended(client, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "cancel_unconfirmed"
    assert "fc-1" in job["error"]["message"] and "not known" in job["error"]["message"]
    assert web.channel.cancels_asked == [web.gpu.jobs[0]["channel_key"]]  # asked first
    assert web.gpu.calls[0].cancelled


def test_delete_mid_job_is_cancelled_once_the_gpu_side_confirms(
        make_web: Callable[..., WebTier], comfyui_double: ComfyUIDouble, tmp_path: Path) -> None:
    """The cancel crosses to the GPU side on the channel; ComfyUI (the double) interrupts
    the job; that confirmation is the GPU call's answer, and the GPU call itself is never
    cancelled."""
    channel = RecordingChannel()
    web = make_web(gpu_body(comfyui_double, tmp_path, channel), channel=channel)
    comfyui_double.hang_next()  # runs until interrupted
    with web.client as client:
        job_id = _submit(client, {"prompt": "a fox", **SMALL})
        _wait_until(lambda: client.get(f"/jobs/{job_id}", headers=AUTH).json()["status"] == "running",
                    "ComfyUI's progress reaches the job through the channel")
        assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 202
        job = _ended(client, job_id)
    assert job["status"] == "cancelled", job
    assert "interrupted" in job["error"]["message"]
    [ran] = comfyui_double.jobs
    assert ran.status == "interrupted"
    assert not web.gpu.calls[0].cancelled


def test_delete_while_an_uninterruptible_node_runs_ends_succeeded_with_its_output(
        make_web: Callable[..., WebTier], comfyui_double: ComfyUIDouble, tmp_path: Path) -> None:
    """ComfyUI finished the job although it was asked to stop: the GPU side says so
    (`stopped_late`), and the job is succeeded with the output ComfyUI wrote."""
    channel = RecordingChannel()
    web = make_web(gpu_body(comfyui_double, tmp_path, channel), channel=channel)
    release = comfyui_double.hold_next("SaveImage")
    try:
        with web.client as client:
            job_id = _submit(client, {"prompt": "a fox", **SMALL})
            _wait_until(lambda: bool(comfyui_double.jobs)
                        and comfyui_double.jobs[0].running_node == ["10"], "SaveImage runs")
            _wait_until(lambda: client.get(f"/jobs/{job_id}", headers=AUTH).json()["status"]
                        == "running", "ComfyUI's progress reaches the job")
            assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 202
            _wait_until(lambda: comfyui_double.jobs[0].interrupt.is_set(),
                        "the GPU side asks ComfyUI to interrupt the job")
            # asked to stop, not stopped: the status stays until ComfyUI says how it ended
            assert client.get(f"/jobs/{job_id}", headers=AUTH).json()["status"] == "running"
            release.set()
            job = _ended(client, job_id)
            output = client.get(f"/jobs/{job_id}/outputs/0", headers=AUTH)
    finally:
        release.set()
    assert job["status"] == "succeeded" and job["error"] is None
    assert output.status_code == 200 and output.content.startswith(b"\x89PNG")
    record = json.loads((web.settings.data_dir / "jobs" / f"{job_id}.json").read_text())
    assert record["stopped_late"] is True
    assert not web.gpu.calls[0].cancelled


def test_a_deadline_the_gpu_side_confirms_is_a_504_saying_so(
        make_web: Callable[..., WebTier], comfyui_double: ComfyUIDouble, tmp_path: Path) -> None:
    channel = RecordingChannel()
    web = make_web(gpu_body(comfyui_double, tmp_path, channel), channel=channel, deadline_s=3.0)
    comfyui_double.hang_next()
    response = web.client.post("/flux-dev", json={"prompt": "a fox", **SMALL}, headers=AUTH)
    assert response.status_code == 504, response.text
    assert "it was cancelled in ComfyUI" in response.json()["error"]["message"]
    assert comfyui_double.jobs[0].status == "interrupted"
    assert not web.gpu.calls[0].cancelled and channel.cancels_asked == []


def test_the_gpu_body_refuses_a_job_that_reached_it_after_the_deadline(
        comfyui_double: ComfyUIDouble, tmp_path: Path) -> None:
    late = {"graph": {"1": {}}, "images": {}, "user_graph": False, "deadline_at": time.time() - 5}
    answer = asyncio.run(gpu_body(comfyui_double, tmp_path)(late))
    assert answer["error"]["code"] == "deadline_exceeded"
    assert comfyui_double.jobs == []


def test_five_concurrent_requests_are_five_gpu_calls_at_once(make_web: Callable[..., WebTier]) -> None:
    """The web tier does not serialize generations: each request is its own GPU input,
    so Modal's autoscaler (one input per GPU container) starts a container for each."""
    in_flight, most = 0, 0
    all_in = asyncio.Event()

    async def gated(job: dict[str, Any]) -> dict[str, Any]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        if in_flight == 5:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 10)  # holds until all five run together
        in_flight -= 1
        return wire_ok()

    web = make_web(gated)
    app = web.client.app

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://web") as client:
            responses = await asyncio.gather(*(
                client.post("/flux", json={"prompt": f"burst {i}"}, headers=AUTH)
                for i in range(5)))
        return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [200] * 5
    assert most == 5 and len(web.gpu.jobs) == 5


# -- LoRAs -------------------------------------------------------------------------------


def test_a_lora_upload_is_written_to_the_volume_committed_and_used(
        make_web: Callable[..., WebTier]) -> None:
    async def ok(job: dict[str, Any]) -> dict[str, Any]:
        return wire_ok()

    web = make_web(ok)
    response = web.client.post("/loras", headers=AUTH, data={"id": "alice", "trigger_word": "alicexyz"},
                               files={"file": ("a.safetensors", safetensors_bytes(), "application/octet-stream")})
    assert response.status_code == 200, response.text
    assert (web.settings.lora_dir / "character-alice.safetensors").is_file()
    assert web.commits == ["loras"] and web.gpu.jobs == []
    generated = web.client.post("/flux-lora", json={"prompt": "in a cafe", "lora_id": "alice"},
                                headers=AUTH)
    assert generated.status_code == 200, generated.text
    [job] = web.gpu.jobs
    names = [n["inputs"]["lora_name"] for n in job["graph"].values() if "lora_name" in n["inputs"]]
    assert names == ["character-alice.safetensors"]
    assert m.uses_loras(job["graph"]) and not m.uses_loras({"1": {"inputs": {"seed": 1}}})


def _failing_lora_commits(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[str]:
    """The LoRA Volume's commit fails `failures` times (open files), then succeeds."""
    import backend.deploy.web as deploy_web

    monkeypatch.setattr(deploy_web, "PUBLISH_RETRY_DELAYS_S", (0.0, 0.0))
    attempts: list[str] = []

    def commit(self: object) -> None:
        attempts.append("commit")
        if len(attempts) <= failures:
            raise RuntimeError("there are open files preventing the operation")

    monkeypatch.setattr(m, "lora_volume", type("V", (), {"commit": commit})())
    return attempts


def test_a_lora_commit_that_fails_once_is_retried(make_web: Callable[..., WebTier],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = _failing_lora_commits(monkeypatch, failures=1)
    web = make_web(lambda job: pytest.fail("the GPU was asked"))  # type: ignore[arg-type,return-value]
    response = web.client.post("/loras", headers=AUTH, data={"id": "alice"},
                               files={"file": ("a.safetensors", safetensors_bytes(), "application/octet-stream")})
    assert response.status_code == 200, response.text
    assert attempts == ["commit", "commit"]


def test_a_lora_commit_that_keeps_failing_is_a_503_in_the_error_shape(
        make_web: Callable[..., WebTier], monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = _failing_lora_commits(monkeypatch, failures=99)
    web = make_web(lambda job: pytest.fail("the GPU was asked"))  # type: ignore[arg-type,return-value]
    response = web.client.post("/loras", headers=AUTH, data={"id": "alice"},
                               files={"file": ("a.safetensors", safetensors_bytes(), "application/octet-stream")})
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "lora_not_published" and "upload it again" in error["message"]
    assert "open files" in error["message"] and "Traceback" not in response.text
    assert attempts == ["commit"] * 3  # the first try and two retries


# -- /health and the studio ----------------------------------------------------------------


def test_health_is_cold_without_heartbeats_and_says_what_a_cold_start_costs(
        make_web: Callable[..., WebTier]) -> None:
    web = make_web(lambda job: pytest.fail("the GPU was asked"))  # type: ignore[arg-type,return-value]
    body = web.client.get("/health").json()
    assert body["status"] == "ok"
    assert body["generation"]["state"] == "cold"
    assert f"cold start on next generation (~{m.COLD_START_S:.0f} s)" in body["generation"]["message"]
    now = time.time()
    web.heartbeats.beats = {"c1": {"at": now - 2, "busy": False}}
    assert web.client.get("/health").json()["generation"]["state"] == "warm"
    web.heartbeats.beats = {"c1": {"at": now - 2, "busy": True}}
    assert web.client.get("/health").json()["generation"]["state"] == "busy"
    web.heartbeats.beats = {"c1": {"at": now - m.HEARTBEAT_STALE_S - 1, "busy": False}}
    assert web.client.get("/health").json()["generation"]["state"] == "cold"  # a stale beat
    assert web.gpu.jobs == []


def test_health_says_which_pipelines_have_all_their_files(make_web: Callable[..., WebTier]) -> None:
    web = make_web(lambda job: pytest.fail("the GPU was asked"),  # type: ignore[arg-type,return-value]
                   installed=("flux-schnell", "z-image"))  # a deployment without Flux Dev
    pipelines = web.client.get("/health").json()["pipelines"]
    assert pipelines["flux-schnell"] is True and pipelines["z-image"] is True
    assert pipelines["flux-dev"] is False and pipelines["wan2"] is False
    assert web.refreshes == []  # cheap: no Volume reload for the studio's polling


@pytest.mark.parametrize("trouble", ["fails", "hangs"])
def test_health_answers_quickly_when_heartbeats_cannot_be_read(
        make_web: Callable[..., WebTier], trouble: str) -> None:
    web = make_web(lambda job: pytest.fail("the GPU was asked"))  # type: ignore[arg-type,return-value]
    if trouble == "fails":
        web.heartbeats.fail = ConnectionError("dict unreachable")
    else:
        web.heartbeats.delay_s = 30.0
    response = web.client.get("/health")
    assert response.status_code == 200
    assert response.json()["generation"]["state"] == "unknown"


def test_an_open_studio_tab_causes_no_gpu_time(make_web: Callable[..., WebTier]) -> None:
    """What the studio asks on its own (the status line every 15 s, the LoRA list, the
    models list) is answered by the web tier; no GPU call is made."""
    from ui.studio.status import backend_status

    web = make_web(lambda job: pytest.fail("the GPU was asked"))  # type: ignore[arg-type,return-value]

    class InProcessClient:  # RylaClient's calls, through the ASGI app instead of a socket
        base_url = "http://web"

        def health(self) -> dict[str, Any]:
            return web.client.get("/health").json()

    lines = [backend_status(InProcessClient()) for _ in range(20)]  # type: ignore[arg-type]
    assert web.client.get("/loras", headers=AUTH).status_code == 200
    assert web.client.get("/models", headers=AUTH).status_code == 200
    assert web.gpu.jobs == [] and web.heartbeats.reads == 20
    assert f"cold start on next generation (~{m.COLD_START_S:.0f} s)" in lines[-1]
