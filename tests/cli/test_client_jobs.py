"""ui/client/jobs.py, what the CLI and the studio share around a job: followed to its
result against a real backend (ComfyUI double), a failed job as its error, a stop and
what ComfyUI confirmed, the job's timings and the pace of its steps."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.cli.processes import until
from ui.client import (CANCELLED, FAILED, FINISHED_ANYWAY, UNKNOWN, BackendError, RylaClient,
                       StepPace, ask_to_cancel, follow_job, job_error, job_timings, stop_outcome,
                       wait_for_ends)
from workflows.request_models import FluxLoraRequest, FluxSchnellRequest

SMALL = {"width": 256, "height": 256, "steps": 2}


@dataclass
class Followed:
    """A job followed on a thread of its own, as both callers do."""

    job_id: str
    events: list[str] = field(default_factory=list)
    final: dict[str, Any] | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    outcome: Any = None

    def heard_end(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        assert job_id == self.job_id
        return self.final if self.ended.wait(timeout) else None


def follow_on_a_thread(client: RylaClient, job_id: str) -> Followed:
    followed = Followed(job_id)

    def follow() -> None:
        try:
            followed.outcome = follow_job(client, job_id,
                                          on_event=lambda event, _: followed.events.append(event),
                                          on_end=lambda final: setattr(followed, "final", final))
        except BackendError as exc:
            followed.outcome = exc
        finally:
            followed.ended.set()

    threading.Thread(target=follow, daemon=True).start()
    return followed


def test_a_job_is_followed_to_its_outputs_with_its_events_and_timings(backend_server) -> None:
    with RylaClient(backend_server.url) as client:
        job = client.submit(FluxSchnellRequest(prompt="a lighthouse", seed=7, format="png", **SMALL))
        events: list[str] = []
        ends: list[dict | None] = []
        result = follow_job(client, job["id"], on_event=lambda event, _: events.append(event),
                            on_end=ends.append)
        assert events[-1] == "done" and "progress" in events
        assert [end["status"] for end in ends if end] == ["succeeded"] and len(ends) == 1
        assert result.images == [client.output(job["id"], 0)]
        assert (result.seed, result.request_id, result.content_type) == (7, job["id"], "image/png")
        assert set(result.timings) == {"queued_ms", "generation_ms", "total_ms"}
        assert result.timings["total_ms"] >= result.timings["generation_ms"] >= 0


def test_a_failed_job_is_its_error_with_the_status_and_field_it_carries(backend_server) -> None:
    with RylaClient(backend_server.url) as client:
        job = client.submit(FluxLoraRequest(prompt="x", lora_id="ghost", **SMALL))
        ends: list[dict | None] = []
        with pytest.raises(BackendError) as raised:
            follow_job(client, job["id"], on_end=ends.append)
        assert (raised.value.status, raised.value.code, raised.value.field) == (
            404, "lora_not_found", "lora_id")
        assert "ghost" in raised.value.message
        assert [end["status"] for end in ends if end] == ["failed"]


def test_a_job_error_without_a_status_names_the_jobs_end() -> None:
    cancelled = job_error({"id": "j1", "status": "cancelled"})
    assert (cancelled.status, cancelled.code, cancelled.field) == (0, "cancelled", None)
    assert cancelled.message == "job j1 ended cancelled"
    comfy = job_error({"id": "j2", "status": "failed",
                       "error": {"code": "comfyui_error", "message": "out of memory"}})
    assert (comfy.status, comfy.code, comfy.message) == (0, "comfyui_error", "out of memory")


def test_timings_come_from_the_jobs_own_times_and_leave_out_what_it_lacks() -> None:
    job = {"created_at": "2026-01-01T10:00:00Z", "started_at": "2026-01-01T10:00:01.5Z",
           "ended_at": "2026-01-01T10:00:04+00:00"}
    assert job_timings(job) == {"queued_ms": 1500.0, "generation_ms": 2500.0, "total_ms": 4000.0}
    assert job_timings({**job, "ended_at": None}) == {"queued_ms": 1500.0}
    assert job_timings({**job, "started_at": "not a time"}) == {"total_ms": 4000.0}


@contextmanager
def held_job(backend_server, node: str) -> Iterator[tuple[RylaClient, Followed, threading.Event]]:
    """A job held in ComfyUI at `node` (the double's hold_next), followed on a thread."""
    release = backend_server.double.hold_next(node)
    try:
        with RylaClient(backend_server.url) as client:
            job = client.submit(FluxSchnellRequest(prompt="held", **SMALL))
            followed = follow_on_a_thread(client, job["id"])
            until(lambda: client.job(job["id"])["status"] == "running", "the job runs")
            yield client, followed, release
    finally:
        release.set()


def stop(client: RylaClient, followed: Followed, double, release: threading.Event) -> str:
    """Ask for the cancel, let the held node go once ComfyUI was asked to stop, and name
    the job's end as confirmed."""
    assert ask_to_cancel(client, followed.job_id) is None
    until(lambda: double.jobs[-1].interrupt.is_set(), "ComfyUI is asked to stop the job")
    release.set()
    ends = wait_for_ends(client, [followed.job_id], followed.heard_end, confirm_s=60)
    return stop_outcome(ends[followed.job_id])


def test_a_stopped_job_is_confirmed_cancelled(backend_server) -> None:
    with held_job(backend_server, "VAEDecode") as (client, followed, release):
        assert stop(client, followed, backend_server.double, release) == CANCELLED
        assert isinstance(followed.outcome, BackendError) and followed.outcome.code == "cancelled"
        assert client.job(followed.job_id)["outputs"] == []


def test_a_job_past_its_last_interruptible_node_finishes_anyway_and_keeps_its_outputs(
        backend_server) -> None:
    with held_job(backend_server, "SaveImage") as (client, followed, release):
        assert stop(client, followed, backend_server.double, release) == FINISHED_ANYWAY
        assert followed.outcome.images == [client.output(followed.job_id, 0)]


def test_an_end_not_heard_in_time_is_asked_of_the_backend_then_unknown(backend_server) -> None:
    with held_job(backend_server, "VAEDecode") as (client, followed, release):
        assert ask_to_cancel(client, followed.job_id) is None
        never_heard = lambda job_id, timeout: None  # noqa: E731 - a follower gone
        ends = wait_for_ends(client, [followed.job_id], never_heard, confirm_s=0)
        assert stop_outcome(ends[followed.job_id]) == UNKNOWN  # held: ComfyUI has not said
        until(lambda: backend_server.double.jobs[-1].interrupt.is_set(), "ComfyUI is asked to stop")
        release.set()
        until(followed.ended.is_set, "the job ends")
        ends = wait_for_ends(client, [followed.job_id], never_heard, confirm_s=0)
        assert stop_outcome(ends[followed.job_id]) == CANCELLED  # the backend's own word


def test_cancelling_an_ended_job_is_no_error_but_an_unknown_job_is(backend_server) -> None:
    with RylaClient(backend_server.url) as client:
        job = client.submit(FluxSchnellRequest(prompt="quick", **SMALL))
        client.wait(job["id"])
        assert ask_to_cancel(client, job["id"]) is None  # 409: its end says how
        problem = ask_to_cancel(client, "no-such-job")
        assert problem is not None and problem.status == 404


@pytest.mark.parametrize("job, outcome", [
    ({"status": "cancelled"}, CANCELLED), ({"status": "succeeded"}, FINISHED_ANYWAY),
    ({"status": "failed"}, FAILED), ({"status": "running"}, UNKNOWN), (None, UNKNOWN)])
def test_stop_outcomes_say_only_what_ended(job: dict | None, outcome: str) -> None:
    assert stop_outcome(job) == outcome


def test_step_pace_is_the_median_of_recent_steps_per_job() -> None:
    pace = StepPace(samples=2)
    assert pace.per_step() is None and pace.seconds_left(5) is None
    for now, step in ((10.0, 1), (11.0, 2), (11.5, 2), (13.0, 4)):  # 1 s, then 2 steps in 2 s
        pace.heard("a", step, now)
    assert pace.per_step() == 1.0  # the repeated step kept its first time
    pace.heard("b", 1, 20.0)  # another job: its own last step, the shared pace
    pace.heard("b", 2, 23.0)  # 3 s: of [1, 1, 3] the two recent are kept
    assert pace.per_step() == 3.0 and pace.seconds_left(4) == 12.0
    pace.heard("b", 1, 30.0)  # a second sampler pass starts the job afresh, no sample
    pace.heard("b", 3, 31.0)  # 0.5 s a step since its restart (not 4 s since step 2)
    assert pace.per_step() == 3.0  # the median of [3, 0.5]
    pace.heard("b", 4, 31.5)
    assert pace.per_step() == 0.5 and pace.seconds_left(0) == 0.0
