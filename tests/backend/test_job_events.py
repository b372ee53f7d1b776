"""A job's progress, previews and stop, as ComfyUIClient.run tells them (issue 22), against
the ComfyUI double over real HTTP and WebSocket: progress rises to 1.0 over the whole
graph, previews are ComfyUI's own (decoded, re-encoded, throttled), and a stopped job ends
as ComfyUI says it ended: cancelled only once confirmed, and succeeded with its outputs
when a node that cannot be interrupted finished it anyway. Tests wait on conditions."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from PIL import Image

from backend.comfyui_client import (PREVIEW_INTERVAL_S, PREVIEW_MAX_SIDE, ComfyUIClient,
                                    JobPreview, JobProgress)
from backend.errors import DeadlineExceeded, JobCancelled
from tests.builders import BLUR_CHAIN_SAVE, blur_chain
from tests.comfyui_double import ComfyUIDouble, Job
from workflows.render import render_workflow
from workflows.request_models import FluxDevRequest

GUARD_S = 30.0  # a guard against a stuck test, never a measurement
SAMPLER = "8"  # the KSampler of flux-dev.json
SAVE = "10"  # its SaveImage


def flux_graph(steps: int, seed: int = 1) -> dict:
    request = FluxDevRequest(prompt="a lighthouse", width=256, height=256, steps=steps)
    return render_workflow("flux-dev", request, seed=seed)


def model_free_graph(blurs: int, prefix: str = "chain") -> dict:
    """A blur chain, and a node nothing needs (ComfyUI never runs it)."""
    graph = blur_chain(blurs, 32, prefix)
    graph["91"] = {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}
    return graph


Body = Callable[[ComfyUIClient], Awaitable[None]]


@pytest.fixture
def drive(comfyui_double: ComfyUIDouble, tmp_path: Path) -> Callable[[Body], None]:
    """Runs `body(client)` on a fresh event loop with a client of the double."""

    def run_body(body: Body) -> None:
        async def go() -> None:
            client = ComfyUIClient(comfyui_double.url, models_dir=comfyui_double.models_dir,
                                   lora_dir=tmp_path / "loras")
            try:
                await body(client)
            finally:
                await client.aclose()

        asyncio.run(go())

    return run_body


async def until(condition: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < give_up, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


def the_job(double: ComfyUIDouble, index: int = -1) -> Callable[[], Job | None]:
    return lambda: double.jobs[index] if double.jobs else None


def outputs_on_disk(double: ComfyUIDouble) -> list[Path]:
    return sorted(p for p in double.output_dir.rglob("*") if p.is_file())


def progress_of(events: list[JobProgress | JobPreview]) -> list[JobProgress]:
    return [e for e in events if isinstance(e, JobProgress)]


def test_progress_rises_to_one_through_a_sampler_graph(drive: Callable[[Body], None]) -> None:
    events: list[JobProgress | JobPreview] = []

    async def go(client: ComfyUIClient) -> None:
        result = await client.run(flux_graph(steps=6), GUARD_S, on_event=events.append)
        assert len(result.outputs) == 1

    drive(go)
    fractions = [p.fraction for p in progress_of(events)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    steps = [(p.step, p.steps) for p in progress_of(events) if p.node == SAMPLER and p.step]
    assert steps == [(n, 6) for n in range(1, 7)]  # every step, in order
    # the sampler's steps are most of the job: its progress moves the fraction step by step
    # a sampler counts as many nodes as it has steps: 6 of 15 here, one fifteenth a step
    during = [p.fraction for p in progress_of(events) if p.node == SAMPLER]
    assert len(set(during)) == 7 and during[-1] - during[0] == pytest.approx(6 / 15)


def test_progress_moves_node_by_node_without_a_sampler(drive: Callable[[Body], None],
                                                       comfyui_double: ComfyUIDouble) -> None:
    events: list[JobProgress | JobPreview] = []

    async def go(client: ComfyUIClient) -> None:
        await client.run(model_free_graph(blurs=4), GUARD_S, on_event=events.append)

    drive(go)
    progress = progress_of(events)
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # six nodes run (the unused ImageInvert does not): each start moves it by a sixth
    by_node = {p.node: p.fraction for p in progress if p.node is not None}
    assert list(by_node) == ["1", "2", "3", "4", "5", BLUR_CHAIN_SAVE]
    assert [round(f * 6) for f in by_node.values()][:5] == [0, 1, 2, 3, 4]
    assert not any(isinstance(e, JobPreview) for e in events)  # no sampler, no preview


def test_previews_are_small_jpegs_throttled_and_the_newest_wins(
        drive: Callable[[Body], None], comfyui_double: ComfyUIDouble) -> None:
    steps = 40
    events: list[tuple[float, JobProgress | JobPreview]] = []
    release = comfyui_double.hold_next("VAEDecode")  # the job stays running after the steps

    async def go(client: ComfyUIClient) -> None:
        job = asyncio.create_task(client.run(
            flux_graph(steps), GUARD_S, on_event=lambda e: events.append((time.monotonic(), e))))
        # every step sent a preview; the last one is delivered although newer frames
        # stopped coming: the throttle holds the newest, never drops it
        await until(lambda: any(isinstance(e, JobPreview) and e.step == steps
                                for _, e in events), "the last step's preview arrives")
        release.set()
        await job

    drive(go)
    previews = [(at, e) for at, e in events if isinstance(e, JobPreview)]
    assert 1 <= len(previews) <= steps
    for _, preview in previews:
        with Image.open(io.BytesIO(preview.jpeg)) as image:
            assert image.format == "JPEG" and max(image.size) <= PREVIEW_MAX_SIDE
            image.load()
    taken = [at for at, _ in previews]
    # at most one per PREVIEW_INTERVAL_S (a little slack: the stamps are taken after encoding)
    assert all(b - a >= PREVIEW_INTERVAL_S * 0.9 for a, b in zip(taken, taken[1:]))
    shown = [p.step for _, p in previews]
    assert shown == sorted(shown) and all(1 <= s <= steps for s in shown)


def test_cancel_of_a_queued_prompt_is_confirmed_and_leaves_no_output(
        drive: Callable[[Body], None], comfyui_double: ComfyUIDouble) -> None:
    comfyui_double.hang_next()  # the first job holds ComfyUI's only worker

    async def go(client: ComfyUIClient) -> None:
        first = asyncio.create_task(client.run(model_free_graph(1, prefix="first"), GUARD_S))
        await until(lambda: comfyui_double.running is not None, "the first job runs")
        cancel = asyncio.Event()
        second = asyncio.create_task(client.run(model_free_graph(1, prefix="second"), GUARD_S,
                                                cancel=cancel))
        await until(lambda: len(comfyui_double.pending) == 1, "the second job waits")
        waiting = comfyui_double.pending[0]
        cancel.set()
        with pytest.raises(JobCancelled) as stopped:
            await second
        assert stopped.value.confirmed and stopped.value.status == 409
        assert "taken off its queue" in stopped.value.message
        assert waiting.status == "pending" and waiting not in comfyui_double.pending  # never ran
        comfyui_double.interrupt()
        with pytest.raises(Exception, match="interrupted"):
            await first

    drive(go)
    assert outputs_on_disk(comfyui_double) == []


def test_cancel_mid_sampler_interrupts_it(drive: Callable[[Body], None],
                                          comfyui_double: ComfyUIDouble) -> None:
    cancel = asyncio.Event()

    def stop_at_step_two(event: JobProgress | JobPreview) -> None:
        if isinstance(event, JobProgress) and (event.step or 0) >= 2:
            cancel.set()

    async def go(client: ComfyUIClient) -> None:
        comfyui_double.step_delay = 0.01
        with pytest.raises(JobCancelled) as stopped:
            await client.run(flux_graph(steps=100), GUARD_S, on_event=stop_at_step_two,
                             cancel=cancel)
        assert stopped.value.confirmed
        assert f"interrupted at node {SAMPLER} (KSampler)" in stopped.value.message

    drive(go)
    [job] = comfyui_double.jobs
    assert job.status == "interrupted"
    status = comfyui_double.history[job.prompt_id]["status"]
    assert status["status_str"] == "error" and not status["completed"]
    assert outputs_on_disk(comfyui_double) == []


@pytest.mark.parametrize("stopped_by", ["cancel", "deadline"])
def test_an_uninterruptible_last_node_ends_succeeded_with_its_output(
        drive: Callable[[Body], None], comfyui_double: ComfyUIDouble, stopped_by: str) -> None:
    """ComfyUI checks an interrupt only before a node starts and inside sampler steps: a
    save that has begun runs to its end, and the job's outputs are kept, never reported
    cancelled while the file is on disk."""
    release = comfyui_double.hold_next("SaveImage")
    cancel = asyncio.Event()
    # the deadline passes while SaveImage is held (until the interrupt reached it)
    timeout_s = 5.0 if stopped_by == "deadline" else GUARD_S

    async def go(client: ComfyUIClient) -> None:
        job = asyncio.create_task(client.run(flux_graph(steps=2), timeout_s, cancel=cancel))
        await until(lambda: comfyui_double.jobs and comfyui_double.jobs[0].running_node == [SAVE],
                    "SaveImage runs")
        if stopped_by == "cancel":
            cancel.set()
        await until(lambda: comfyui_double.jobs[0].interrupt.is_set(),
                    "ComfyUI is asked to interrupt the job")
        release.set()
        result = await job
        assert result.stopped_late and len(result.outputs) == 1
        assert result.outputs[0].data == (comfyui_double.output_dir
                                          / result.outputs[0].filename).read_bytes()

    drive(go)
    [job] = comfyui_double.jobs
    assert job.status == "success"


def test_deadline_mid_sampler_is_confirmed(drive: Callable[[Body], None],
                                           comfyui_double: ComfyUIDouble) -> None:
    comfyui_double.hang_next()

    async def go(client: ComfyUIClient) -> None:
        with pytest.raises(DeadlineExceeded) as stopped:
            await client.run(flux_graph(steps=2), 0.5)
        assert stopped.value.confirmed and "cancelled in ComfyUI" in stopped.value.message

    drive(go)
    assert comfyui_double.jobs[0].status == "interrupted"


def test_a_cancelled_caller_stops_the_prompt_in_comfyui(drive: Callable[[Body], None],
                                                        comfyui_double: ComfyUIDouble) -> None:
    """The caller went away (an HTTP client disconnecting, Modal's FunctionCall.cancel):
    the prompt must not run on with the next job queued behind it."""
    comfyui_double.hang_next()

    async def go(client: ComfyUIClient) -> None:
        job = asyncio.create_task(client.run(flux_graph(steps=2), GUARD_S))
        await until(lambda: comfyui_double.running is not None, "the job runs")
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        # the interrupt went out before the cancelled caller got control back
        assert comfyui_double.jobs[0].interrupt.is_set()
        await until(lambda: comfyui_double.jobs[0].status == "interrupted",
                    "ComfyUI stops the job")
        await until(lambda: not client.watching(), "the stop ends in the background")

    drive(go)
