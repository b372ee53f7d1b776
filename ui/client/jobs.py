"""A generation as a backend job, without any display: what the CLI (ui/cli/job_runner.py)
and the studio (ui/studio/action.py) share around `RylaClient`'s job routes.

- `follow_job`: a submitted job's events to its end (`on_event` hears status, progress,
  preview, done), then its outputs as a `GenerationResult` (`job_result`), as the
  synchronous route would have answered, or the job's `BackendError` (`job_error`);
- `job_timings`: the job's own times as `*_ms` timings;
- stopping: `ask_to_cancel` (DELETE), `wait_for_ends` (the end each job's follower heard
  within a time limit, else the job asked directly) and `stop_outcome`, the one set of
  names for what ComfyUI confirmed: cancelled, finished anyway (its outputs kept), failed,
  unknown. Each caller says them in its own words;
- `StepPace`: seconds per sampler step measured from the steps jobs report, for an ETA.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ui.client.http import BackendError, GenerationResult, RylaClient, sniff_content_type

ENDED = ("succeeded", "failed", "cancelled")

# What a stopped job's end was, as ComfyUI confirmed it.
CANCELLED = "cancelled"
FINISHED_ANYWAY = "finished anyway, kept"  # it ended before the cancel reached it
FAILED = "failed"
UNKNOWN = "unknown"  # not confirmed (yet): it may still run
STOP_OUTCOMES = (CANCELLED, FINISHED_ANYWAY, FAILED, UNKNOWN)

# Step times kept for the pace: the recent ones say the GPU's current speed.
STEP_SAMPLES = 40


def job_timings(job: dict[str, Any]) -> dict[str, float]:
    """Milliseconds from the job's own ISO times: queued (created to started), generation
    (started to ended), total (created to ended); a time it lacks leaves its timing out."""
    def at(name: str) -> datetime | None:
        value = job.get(name)
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
        except ValueError:
            return None

    def ms(start: datetime | None, end: datetime | None) -> float | None:
        return round((end - start).total_seconds() * 1000, 1) if start and end else None

    created, started, ended = at("created_at"), at("started_at"), at("ended_at")
    timings = {"queued_ms": ms(created, started), "generation_ms": ms(started, ended),
               "total_ms": ms(created, ended)}
    return {name: value for name, value in timings.items() if value is not None}


def job_error(job: dict[str, Any]) -> BackendError:
    """An ended job that has no outputs, as the error its caller reports.

    The job's error carries what the synchronous route would have answered: its code,
    message, HTTP status and field (status 0 when it has none, e.g. a cancelled job)."""
    error = job.get("error") or {}
    code = str(error.get("code") or job.get("status") or "job_failed")
    message = str(error.get("message") or f"job {job.get('id')} ended {job.get('status')}")
    status = error.get("status")
    return BackendError(status if isinstance(status, int) else 0, code, message,
                        error.get("field") or None)


def job_result(client: RylaClient, job: dict[str, Any]) -> GenerationResult:
    """An ended job's outputs, fetched, as the synchronous route would have answered; its
    `job_error` when it did not succeed."""
    if job.get("status") != "succeeded":
        raise job_error(job)
    images = [client.output(str(job["id"]), n) for n in range(len(job.get("outputs") or []))]
    if not images:
        raise BackendError(0, "invalid_response", f"job {job['id']} succeeded without outputs")
    return GenerationResult(images=images, content_type=sniff_content_type(images[0]),
                            seed=int(job["seed"]) if job.get("seed") is not None else -1,
                            request_id=str(job["id"]), timings=job_timings(job))


def follow_job(client: RylaClient, job_id: str,
               on_event: Callable[[str, Any], None] | None = None,
               on_end: Callable[[dict[str, Any] | None], None] | None = None) -> GenerationResult:
    """Follow a job's events to its end, then fetch its outputs (`job_result`).

    `on_event(event, data)` hears each event; `on_end` the ended job before its outputs
    are fetched, or None when its events could not be followed (the error is raised)."""
    try:
        final = client.wait(job_id, on_event=on_event)
    except BaseException:
        if on_end is not None:
            on_end(None)
        raise
    if on_end is not None:
        on_end(final)
    return job_result(client, final)


# -- stopping ------------------------------------------------------------------------------


def ask_to_cancel(client: RylaClient, job_id: str) -> BackendError | None:
    """DELETE the job; the error when the backend could not be asked. A 409 (the job ended
    meanwhile) is no error: its end says how."""
    try:
        client.cancel(job_id)
    except BackendError as exc:
        if exc.status != 409:
            return exc
    return None


def confirmed_end(client: RylaClient, job_id: str) -> dict[str, Any] | None:
    """The job as the backend has it now when it has ended; None while it runs or when the
    backend cannot say."""
    try:
        job = client.job(job_id)
    except BackendError:
        return None
    return job if job.get("status") in ENDED else None


def wait_for_ends(client: RylaClient, job_ids: Sequence[str],
                  heard_end: Callable[[str, float], dict[str, Any] | None],
                  confirm_s: float,
                  clock: Callable[[], float] = time.monotonic) -> dict[str, dict[str, Any] | None]:
    """Each job's end as ComfyUI confirmed it: what its follower heard, `heard_end(job_id,
    timeout)`, within `confirm_s` for them all; for a job not heard of by then (a follower
    gone or slow), the job as the backend has it. None where the end is still unknown."""
    give_up = clock() + confirm_s
    ends = {job_id: heard_end(job_id, max(0.0, give_up - clock())) for job_id in job_ids}
    return {job_id: end if end is not None else confirmed_end(client, job_id)
            for job_id, end in ends.items()}


def stop_outcome(job: dict[str, Any] | None) -> str:
    """A stopped job's end, one of `STOP_OUTCOMES`, from its ended job object (None or a
    job not ended: unknown)."""
    status = (job or {}).get("status")
    if status == "cancelled":
        return CANCELLED
    if status == "succeeded":
        return FINISHED_ANYWAY
    if status == "failed":
        return FAILED
    return UNKNOWN


# -- ETA -----------------------------------------------------------------------------------


class StepPace:
    """Seconds per sampler step, the median of the recent steps the jobs reported (a step
    heard again keeps its first time; a step lower than the last starts the job afresh,
    as a second sampler pass does). Not thread-safe: its owner's lock guards it."""

    def __init__(self, samples: int = STEP_SAMPLES) -> None:
        self.samples = samples
        self._seconds: list[float] = []
        self._last: dict[str, tuple[int, float]] = {}

    def heard(self, job_id: str, step: int, now: float) -> None:
        last = self._last.get(job_id)
        if last is not None and step == last[0]:
            return
        if last is not None and step > last[0]:
            self._seconds.append((now - last[1]) / (step - last[0]))
            del self._seconds[:-self.samples]
        self._last[job_id] = (step, now)

    def per_step(self) -> float | None:
        if not self._seconds:
            return None
        return sorted(self._seconds)[len(self._seconds) // 2]

    def seconds_left(self, steps: int) -> float | None:
        """How long `steps` more steps take at the measured pace; None before any step
        was measured."""
        per_step = self.per_step()
        return max(0, steps) * per_step if per_step is not None else None
