"""The job channel between the Modal GPU container and the web tier, offline: what crosses
it (backend/graph_job.py's wire format), the GPU side (backend/gpu_worker.py) publishing
ComfyUI's events and hearing a cancel, the web tier (backend/modal_dispatch.py) relaying
them in order, and the Modal objects behind it (backend/modal_app.py), with a fake Queue.
The HTTP-level stories (DELETE, deadlines) are in tests/modal/test_dispatch.py."""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import backend.modal_app as m
from backend.comfyui_client import JobPreview, JobProgress, OutputFile
from backend.errors import ComfyUIJobFailed, DeadlineExceeded, JobCancelled
from backend.gpu_worker import GpuWorker, JobEventPublisher
from backend.graph_job import (GraphJob, error_to_wire, event_from_wire, event_to_wire,
                               result_from_wire, result_to_wire)
from backend.graph_runner import GraphResult
from backend.modal_dispatch import ALIVE, InMemoryJobChannel, ModalGraphRunner
from backend.snapshot_validation import SnapshotValidator
from tests.backend.helpers import image_bytes
from tests.comfyui_double import ComfyUIDouble
from workflows.render import render_workflow
from workflows.request_models import FluxDevRequest

GUARD_S = 30.0  # a guard against a stuck test, never a measurement


def flux_graph(steps: int) -> dict[str, Any]:
    return render_workflow("flux-dev", FluxDevRequest(prompt="a lighthouse", width=256, height=256,
                                                      steps=steps), seed=1)


async def until(condition: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < give_up, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


class PublishedChannel(InMemoryJobChannel):
    """The channel in memory, keeping every batch the GPU side published."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[dict[str, Any]]] = []

    async def publish(self, job_key: str, events: list[dict[str, Any]]) -> None:
        self.batches.append(list(events))
        await super().publish(job_key, events)


# -- the wire --------------------------------------------------------------------------


def test_stopped_late_and_confirmed_cross_the_wire() -> None:
    output = OutputFile("9", "out.png", "image/png", image_bytes())
    late = result_from_wire(result_to_wire(GraphResult("p1", [output], {"comfyui_ms": 1.0},
                                                       stopped_late=True)))
    assert late.stopped_late and late.outputs == [output]
    assert not result_from_wire(result_to_wire(GraphResult("p1", [output]))).stopped_late
    for error in (JobCancelled("stopped", confirmed=True), JobCancelled("unknown", confirmed=False),
                  DeadlineExceeded("stopped", confirmed=True), DeadlineExceeded("?", confirmed=False)):
        with pytest.raises(type(error)) as crossed:
            result_from_wire(error_to_wire(error))
        assert crossed.value.confirmed is error.confirmed
        assert crossed.value.message == error.message


def test_a_stop_from_a_gpu_side_that_does_not_say_confirmed_is_unconfirmed() -> None:
    # an older deployed GPU side: its word could not reach the web tier, so nothing is confirmed
    with pytest.raises(JobCancelled) as crossed:
        result_from_wire({"error": {"code": "cancelled", "message": "gone", "field": None}})
    assert crossed.value.confirmed is False
    with pytest.raises(ComfyUIJobFailed):  # other errors have no such field, and keep their type
        result_from_wire(error_to_wire(ComfyUIJobFailed("node 3 failed")))


def test_events_cross_the_wire_and_unknown_ones_are_skipped() -> None:
    progress = JobProgress(0.25, 3, 28, "8")
    preview = JobPreview(3, b"\xff\xd8jpeg")
    assert event_from_wire(event_to_wire(progress)) == progress
    assert event_from_wire(event_to_wire(preview)) == preview
    assert event_from_wire(event_to_wire(JobProgress(1.0))) == JobProgress(1.0)
    for other in ({"kind": ALIVE}, {"kind": "progress"}, {"kind": "later"}, "text", None):
        assert event_from_wire(other) is None


def test_the_channel_key_crosses_with_the_job() -> None:
    job = GraphJob({"1": {}}, {}, False, deadline_at=5.0, prompt_id="p", channel_key="k" * 32)
    assert GraphJob.from_wire(job.to_wire()) == job
    assert GraphJob.from_wire({"graph": {}, "deadline_at": 1}).channel_key == ""  # an older web tier


# -- the GPU side ----------------------------------------------------------------------


def test_the_publisher_beats_first_batches_in_order_and_coalesces_progress() -> None:
    channel = PublishedChannel()

    async def go() -> None:
        publisher = JobEventPublisher(channel, "job", batch_s=0.0)
        publisher.start()
        await until(lambda: channel.batches == [[{"kind": ALIVE}]],
                    "the first word: the job reached a GPU container")
        for event in (JobProgress(0.1, 1, 4), JobProgress(0.2, 2, 4), JobPreview(2, b"p2"),
                      JobProgress(0.3, 3, 4), JobProgress(0.4, 4, 4)):
            publisher.sink(event)
        await publisher.close()  # publishes what is left before the job's answer

    asyncio.run(go())
    sent = [e for batch in channel.batches[1:] for e in batch]
    assert [event_from_wire(e) for e in sent] == [
        JobProgress(0.2, 2, 4), JobPreview(2, b"p2"), JobProgress(0.4, 4, 4)]


def test_a_channel_that_fails_never_fails_the_job(comfyui_double: ComfyUIDouble,
                                                  tmp_path: Path) -> None:
    class Broken(InMemoryJobChannel):
        async def publish(self, job_key: str, events: list[dict[str, Any]]) -> None:
            raise ConnectionError("queue unreachable")

        async def cancel_requested(self, job_key: str, wait_s: float) -> bool:
            raise ConnectionError("queue unreachable")

    worker = GpuWorker(comfyui_double.url, models_dir=tmp_path / "m", lora_dir=tmp_path / "l",
                       channel=Broken())
    job = GraphJob(flux_graph(2), {}, False, deadline_at=time.time() + GUARD_S, channel_key="k")
    answer = asyncio.run(worker.run(job.to_wire()))
    assert len(result_from_wire(answer).outputs) == 1


def test_a_cancelled_gpu_call_stops_the_prompt_in_comfyui_and_re_raises(
        comfyui_double: ComfyUIDouble, tmp_path: Path) -> None:
    """Modal's FunctionCall.cancel cancels the async method's task (modal 1.6: SIGUSR1 ->
    task.cancel() for an async function): the prompt is stopped in ComfyUI before the
    CancelledError goes on, so the next job in that container does not queue behind it."""
    comfyui_double.hang_next()
    channel = PublishedChannel()
    worker = GpuWorker(comfyui_double.url, models_dir=tmp_path / "m", lora_dir=tmp_path / "l",
                       channel=channel)
    job = GraphJob(flux_graph(2), {}, False, deadline_at=time.time() + GUARD_S, channel_key="k")

    async def go() -> None:
        call = asyncio.create_task(worker.run(job.to_wire()))
        await until(lambda: comfyui_double.running is not None, "the prompt runs in ComfyUI")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert comfyui_double.jobs[0].interrupt.is_set()  # asked before the error went on
        await until(lambda: comfyui_double.jobs[0].status == "interrupted", "ComfyUI stops it")

    asyncio.run(go())


def test_a_cancel_asked_before_the_job_reaches_comfyui_is_confirmed_without_queueing(
        comfyui_double: ComfyUIDouble, tmp_path: Path) -> None:
    """Stop pressed during a cold start: the GPU side hears it when its container is up,
    and nothing reaches ComfyUI."""
    channel = InMemoryJobChannel()
    worker = GpuWorker(comfyui_double.url, models_dir=tmp_path / "m", lora_dir=tmp_path / "l",
                       channel=channel)
    job = GraphJob(flux_graph(2), {}, False, deadline_at=time.time() + GUARD_S, channel_key="k")

    async def go() -> dict[str, Any]:
        await channel.request_cancel("k")
        return await worker.run(job.to_wire())

    with pytest.raises(JobCancelled) as stopped:
        result_from_wire(asyncio.run(go()))
    assert stopped.value.confirmed and "never queued" in stopped.value.message
    assert comfyui_double.jobs == []


# -- the web tier's relay ------------------------------------------------------------------


class InProcessCall:
    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task, self.call_id, self.cancelled = task, "fc-1", False

    async def get(self, timeout_s: float) -> Any:
        return await asyncio.wait_for(asyncio.shield(self.task), timeout_s)

    async def cancel(self) -> None:
        self.cancelled = True
        self.task.cancel()


class InProcessGpu:
    def __init__(self, worker: GpuWorker) -> None:
        self.worker = worker
        self.calls: list[InProcessCall] = []

    async def spawn(self, wire_job: dict[str, Any]) -> InProcessCall:
        self.calls.append(InProcessCall(asyncio.create_task(self.worker.run(wire_job))))
        return self.calls[-1]


class NoHeartbeats:
    async def read(self) -> dict[str, Any]:
        return {}


def test_progress_and_previews_reach_the_web_tier_in_the_order_the_gpu_side_sent_them(
        comfyui_double: ComfyUIDouble, tmp_path: Path) -> None:
    channel = PublishedChannel()
    worker = GpuWorker(comfyui_double.url, models_dir=tmp_path / "m", lora_dir=tmp_path / "l",
                       channel=channel)
    gpu = InProcessGpu(worker)
    runner = ModalGraphRunner(gpu, NoHeartbeats(), SnapshotValidator(tmp_path / "models", tmp_path / "l"),
                              cold_start_s=60.0, heartbeat_stale_s=30.0, channel=channel)
    heard: list[JobProgress | JobPreview] = []
    result = asyncio.run(runner.run(flux_graph(4), {}, user_graph=False, timeout_s=GUARD_S,
                                    on_event=heard.append))
    assert len(result.outputs) == 1 and not result.stopped_late
    published = [event_from_wire(e) for batch in channel.batches for e in batch]
    assert heard == [e for e in published if e is not None]  # all of them, in order
    progress = [e for e in heard if isinstance(e, JobProgress)]
    assert [p.fraction for p in progress] == sorted(p.fraction for p in progress)
    assert progress[-1].fraction == 1.0
    previews = [e for e in heard if isinstance(e, JobPreview)]
    assert previews and all(p.jpeg.startswith(b"\xff\xd8") for p in previews)
    assert channel.batches[0] == [{"kind": ALIVE}]
    assert not gpu.calls[0].cancelled


# -- the Modal objects --------------------------------------------------------------------


class FakeQueueMethod:
    def __init__(self, answer: Callable[..., Any]) -> None:
        self.answer = answer
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    async def aio(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self.answer(*args, **kwargs)


def _empty(*args: Any, **kwargs: Any) -> Any:
    if kwargs.get("block", True):
        raise queue.Empty  # modal.Queue's get/get_many after `timeout` with nothing
    return [] if args else None


def test_the_modal_channel_uses_two_partitions_per_job_that_expire(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = type("Q", (), {})()
    fake.put_many = FakeQueueMethod(lambda *a, **k: None)
    fake.put = FakeQueueMethod(lambda *a, **k: None)
    fake.get_many = FakeQueueMethod(_empty)
    fake.get = FakeQueueMethod(_empty)
    monkeypatch.setattr(m, "job_channel", fake)
    channel, key = m.ModalJobChannel(), "a" * 32

    async def go() -> None:
        await channel.publish(key, [{"kind": ALIVE}])
        await channel.request_cancel(key)
        assert await channel.events(key, 5.0) == []
        assert await channel.events(key, 0) == []
        assert await channel.cancel_requested(key, 2.0) is False

    asyncio.run(go())
    (events,), put_many = fake.put_many.calls[0]
    assert events == [{"kind": ALIVE}] and put_many["partition"] == f"events-{key}"
    (asked,), put = fake.put.calls[0]
    assert asked is True and put["partition"] == f"cancel-{key}"
    for written in (put_many, put):
        # longer than any GPU call, so nothing of a running job expires
        assert written["partition_ttl"] >= m.REQUEST_TIMEOUT_S and written["timeout"] > 0
    assert len(f"events-{key}".encode()) <= 64  # Modal's limit on a partition key
    reads = [kw for _, kw in fake.get_many.calls]
    assert [(kw["partition"], kw["block"], kw["timeout"]) for kw in reads] == [
        (f"events-{key}", True, 5.0), (f"events-{key}", False, None)]
    [(_, get)] = fake.get.calls
    assert (get["partition"], get["block"], get["timeout"]) == (f"cancel-{key}", True, 2.0)


def test_both_tiers_use_the_named_queue_as_their_job_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "Queue.from_name('ryla-job-channel'" in repr(m.job_channel)
    monkeypatch.setattr(m, "_reload_models", lambda: None)
    from backend.deploy.web import deployment_settings

    runner = m.web_runner(deployment_settings({"RYLA_API_TOKEN": "t"}, m.LAYOUT))
    assert isinstance(runner.channel, m.ModalJobChannel)
    # the GPU container's worker is built in its enter step with the same channel
    from tests.modal.modal_introspect import raw_method

    container = m.ComfyUIWorker._get_user_cls().__new__(m.ComfyUIWorker._get_user_cls())
    container.comfyui = type("P", (), {"wait_ready": lambda self, s: None})()
    container.started_in = None
    monkeypatch.setattr("backend.gpu_worker.Heartbeat.start", lambda self: None)
    raw_method(m.ComfyUIWorker, "after_restore")(container)
    assert isinstance(container.worker.channel, m.ModalJobChannel)


# -- the same path on a real upstream ComfyUI (opt-in) --------------------------------------


def modal_path_on(url: str, tmp_path: Path) -> tuple[ModalGraphRunner, InProcessGpu]:
    """The web tier's runner, its GPU function the GPU container's body in this process,
    joined by an in-memory channel: the Modal path without Modal."""
    channel = InMemoryJobChannel()
    gpu = InProcessGpu(GpuWorker(url, models_dir=tmp_path, lora_dir=tmp_path, channel=channel))
    runner = ModalGraphRunner(gpu, NoHeartbeats(), SnapshotValidator(tmp_path, tmp_path),
                              cold_start_s=60.0, heartbeat_stale_s=30.0, channel=channel)
    return runner, gpu


@pytest.mark.real_comfyui
def test_on_real_comfyui_a_cancel_crosses_the_channel_and_comes_back_confirmed(
        real_url: str, tmp_path: Path) -> None:
    from tests.contract.test_real_jobs import (fresh_color, history_entry, prompt_of,
                                               saved_file_exists)
    from tests.builders import blur_chain

    prefix = f"ryla-modal-cancel-{time.time_ns()}"
    runner, gpu = modal_path_on(real_url, tmp_path)
    cancel = asyncio.Event()
    heard: list[JobProgress | JobPreview] = []

    def stop_once_blurring(event: JobProgress | JobPreview) -> None:
        heard.append(event)  # relayed from the GPU side by the web tier
        if isinstance(event, JobProgress) and event.node not in (None, "1"):
            cancel.set()

    # 1024 px blurs take a moment each on a CPU: the save is far off when the stop arrives
    # (the channel batches events, so the test cannot stop at one given node)
    with pytest.raises(JobCancelled) as stopped:
        asyncio.run(runner.run(blur_chain(20, 1024, prefix, fresh_color()), {}, user_graph=True,
                               timeout_s=300.0, on_event=stop_once_blurring, cancel=cancel))
    assert stopped.value.confirmed and "interrupted at node" in stopped.value.message
    fractions = [e.fraction for e in heard if isinstance(e, JobProgress)]
    assert fractions == sorted(fractions) and 0 < fractions[-1] < 1
    entry = history_entry(real_url, prompt_of(real_url, prefix))
    assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}
    assert not saved_file_exists(real_url, prefix, "png")
    assert not gpu.calls[0].cancelled  # the GPU side answered: its call was never cancelled


@pytest.mark.real_comfyui
def test_on_real_comfyui_a_stop_during_the_slow_save_ends_as_comfyui_says(
        real_url: str, tmp_path: Path) -> None:
    from tests.contract.test_real_jobs import SAVE, assert_ending_matches_history, slow_save

    prefix = f"ryla-modal-late-{time.time_ns()}"
    runner, gpu = modal_path_on(real_url, tmp_path)
    cancel = asyncio.Event()
    outcome: dict[str, Any] = {}

    def stop_when_the_save_starts(event: JobProgress | JobPreview) -> None:
        if isinstance(event, JobProgress) and event.node == SAVE:
            cancel.set()

    try:
        outcome["result"] = asyncio.run(runner.run(
            slow_save(prefix), {}, user_graph=True, timeout_s=300.0,
            on_event=stop_when_the_save_starts, cancel=cancel))
    except JobCancelled as stopped:
        outcome["stopped"] = stopped
    assert cancel.is_set()
    assert_ending_matches_history(real_url, prefix, outcome)  # across the wire, too
    if "result" in outcome:
        assert outcome["result"].stopped_late
    assert not gpu.calls[0].cancelled


@pytest.fixture
def real_url() -> str:
    import os

    from tests.contract.conftest import REAL_COMFYUI_SCRIPT, REAL_URL_ENV

    url = os.environ.get(REAL_URL_ENV, "").rstrip("/")
    if not url:
        pytest.skip(f"no real ComfyUI: set {REAL_URL_ENV} to one started with {REAL_COMFYUI_SCRIPT}")
    return url
