"""Jobs: every generation runs as a job that this manager owns, not the HTTP request that
asked for it, so a caller that goes away loses nothing (SPEC "Jobs").

- `submit` records the job (status "queued") and starts it as a background task; an async
  caller (`Prefer: respond-async`) gets the job at once, a sync caller waits on `outcome`.
- The job's status changes only on what the runner confirmed (backend/graph_runner.py):
  "running" at ComfyUI's first progress event; "succeeded" with outputs (also when ComfyUI
  finished a job it was asked to stop); "cancelled" once ComfyUI confirmed a cancel
  (JobCancelled); "failed" with the error's code (deadline_exceeded once confirmed).
- Live state (progress, the latest preview, subscribers) lives here, in memory; the record
  (backend/records.py) is the durable job: written on each change of status, so jobs and
  their outputs survive a restart, and read back for jobs this process does not hold.
- Events for GET /jobs/{id}/events are the job's latest state by kind (status, progress,
  preview, done), each with an increasing id. A subscriber gets every kind newer than the
  id it saw, in id order: a late one gets the current state first, a resumed one what it
  missed; progress in between is coalesced to its latest value, which is all it says.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import mimetypes
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from backend.comfyui_client import JobPreview, JobProgress, new_prompt_id
from backend.errors import (ApiError, DeadlineExceeded, InvalidRequest, JobAlreadyEnded,
                            JobCancelled, NotFound)
from backend.generation import NO_SEED, Generation, Generator, choose_seed
from backend.records import JobRecords
from workflows.registry import Route

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ENDED = frozenset({"succeeded", "failed", "cancelled"})
# uuid4().hex: 122 random bits, and the shape every lookup checks before touching a path
JOB_ID_RE = re.compile(r"^[0-9a-f]{32}$")
# Ended jobs kept in memory (with their latest preview); older ones are read from disk.
KEEP_ENDED = 200
# A job this process does not run (left by an earlier one, settled by recovery) is
# followed on disk at this interval by its event stream.
DISK_POLL_S = 1.0
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 50, 1000
# A sync caller waits this long past the deadline: when the deadline passes, the runner
# stops the job in ComfyUI and waits for ComfyUI's word, which usually comes within
# seconds; the answer then says what ComfyUI confirmed instead of guessing.
CONFIRM_GRACE_S = 10.0


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def _event_id_now(after: int) -> int:
    """An event id: microseconds of the wall clock, so that ids keep increasing across a
    restart of the backend (a resumed subscriber's Last-Event-ID stays comparable)."""
    return max(after + 1, time.time_ns() // 1000)


def _progress(record: dict[str, Any]) -> dict[str, Any]:
    kept = record.get("progress")
    if isinstance(kept, dict):
        return kept
    done = len(record.get("outputs") or [])
    succeeded = record.get("status") == "succeeded"
    return {"fraction": 1.0 if succeeded else 0.0, "step": None, "steps": None,
            "images_done": done, "images_total": done if succeeded else None}


def job_view(record: dict[str, Any]) -> dict[str, Any]:
    """The SPEC's job object of a record (older records, from before jobs, included)."""
    job_id = str(record["request_id"])
    error = record.get("error")
    seed = record.get("seed")
    return {
        "id": job_id, "route": record.get("endpoint"), "status": record.get("status"),
        "created_at": _iso(record.get("created_at") or record.get("started_at")),
        "started_at": _iso(record.get("started_at")),
        "ended_at": _iso(record.get("ended_at") or record.get("finished_at")),
        "seed": None if seed in (None, NO_SEED) else seed,
        "progress": _progress(record),
        "outputs": [f"/jobs/{job_id}/outputs/{n}" for n in range(len(record.get("outputs") or []))],
        # the contract's {code, message}, plus the HTTP status and field the synchronous
        # route would have answered with, so that a client reports a job's error as it
        # would the route's
        "error": ({key: error.get(key) for key in ("code", "message", "status", "field")}
                  if isinstance(error, dict) else None),
    }


@dataclass(frozen=True)
class JobEvent:
    id: int
    event: str  # status, progress, preview, done
    data: dict[str, Any]


class Job:
    """One job this process runs: its record, its latest events, its cancel switch."""

    def __init__(self, record: dict[str, Any], route: Route,
                 on_status: Callable[[Job], object]) -> None:
        self.record = record
        self.route = route
        self.cancel = asyncio.Event()
        self.ended = asyncio.Event()
        # the outputs' bytes stay in memory only while a sync caller waits for them
        self.outcome: Generation | BaseException | None = None
        self.sync_waiters = 0
        self.latest: dict[str, JobEvent] = {}
        self._last_id = 0
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._on_status = on_status  # the manager persists a status the runner brought
        self._publish("status", {"status": record["status"]})
        self._publish("progress", dict(record["progress"]))

    @property
    def id(self) -> str:
        return str(self.record["request_id"])

    @property
    def status(self) -> str:
        return str(self.record["status"])

    def _publish(self, event: str, data: dict[str, Any]) -> None:
        self._last_id = _event_id_now(self._last_id)
        self.latest[event] = JobEvent(self._last_id, event, data)
        # wake every subscriber waiting on the old event, then start a new one
        self._changed.set()
        self._changed = asyncio.Event()

    def set_status(self, status: str) -> None:
        self.record["status"] = status
        if status == "running":
            self.record["started_at"] = time.time()
        self._publish("status", {"status": status})

    def on_event(self, event: JobProgress | JobPreview) -> None:
        """The runner's sink: on the event loop, never blocks."""
        if isinstance(event, JobProgress):
            if self.status == "queued":
                self.set_status("running")  # ComfyUI's first word that it executes the job
                self._on_status(self)
            progress = {**self.record["progress"], "fraction": max(0.0, min(event.fraction, 1.0)),
                        "step": event.step, "steps": event.steps}
            self.record["progress"] = progress
            self._publish("progress", progress)
        elif isinstance(event, JobPreview):
            self._publish("preview", {"step": event.step,
                                      "image": base64.b64encode(event.jpeg).decode("ascii")})

    def end(self) -> None:
        """Publish the final progress, status and done (record already updated)."""
        self._publish("progress", dict(self.record["progress"]))
        self._publish("status", {"status": self.status})
        self._publish("done", job_view(self.record))
        self.record["done_event_id"] = self._last_id

    async def follow(self, after: int) -> AsyncIterator[JobEvent]:
        """Every kind of event newer than `after`, in id order, until `done` is sent."""
        while True:
            changed = self._changed  # taken before reading: a change while sending wakes us
            for event in sorted(self.latest.values(), key=lambda e: e.id):
                if event.id > after:
                    after = event.id
                    yield event
                    if event.event == "done":
                        return
            if "done" in self.latest:
                return  # the subscriber saw the end already (it resumed after `done`)
            await changed.wait()


def _disk_events(record: dict[str, Any]) -> list[JobEvent]:
    """The events of a job known only from its record: the same ids its live stream
    gave for the end (done_event_id), or ids after its end for one settled by recovery."""
    view = job_view(record)
    if record.get("status") not in ENDED:
        now = _event_id_now(0)
        return [JobEvent(now, "status", {"status": view["status"]})]
    done = record.get("done_event_id")
    if not isinstance(done, int):
        done = int(float(record.get("ended_at") or record.get("finished_at") or 0) * 1e6) + 2
    return [JobEvent(done - 2, "progress", view["progress"]),
            JobEvent(done - 1, "status", {"status": view["status"]}),
            JobEvent(done, "done", view)]


class JobManager:
    def __init__(self, generator: Generator, records: JobRecords, *, deadline_s: float,
                 confirm_grace_s: float = CONFIRM_GRACE_S) -> None:
        self.generator = generator
        self.records = records
        self.deadline_s = deadline_s
        self.confirm_grace_s = confirm_grace_s
        self._live: dict[str, Job] = {}
        self._ended: collections.deque[str] = collections.deque()
        self._writes: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()

    # --- running ---------------------------------------------------------------------
    async def submit(self, route: Route, body: BaseModel) -> Job:
        """Record the job (queued) and start it; returns at once."""
        job_id = uuid.uuid4().hex
        # chosen here, recorded before queueing: after a crash the restarted backend finds
        # the job in ComfyUI by this id (backend/recovery.py)
        prompt_id = new_prompt_id()
        record = self.records.new_record(job_id, route.path, body.model_dump(mode="json"),
                                         choose_seed(route, body), prompt_id)
        record["progress"] = {"fraction": 0.0, "step": None, "steps": None, "images_done": 0,
                              "images_total": None if route.user_graph else 1}
        await asyncio.to_thread(self.records.write, dict(record))
        job = Job(record, route, on_status=self._schedule_write)
        self._live[job.id] = job
        # the manager owns the task: the caller's request ending does not cancel it
        # (the request body goes to the task only: it may hold a large image)
        job.task = asyncio.create_task(self._drive(job, body), name=f"job-{job.id}")
        return job

    async def _drive(self, job: Job, body: BaseModel) -> None:
        try:
            gen = await self.generator.generate(
                job.route.path, body, request_id=job.id, seed=int(job.record["seed"]),
                prompt_id=str(job.record["prompt_id"]), on_event=job.on_event, cancel=job.cancel)
            paths = await asyncio.to_thread(self.records.save_outputs, job.id,
                                            [(o.data, o.extension) for o in gen.outputs])
            gen.paths = paths
            job.record.update(status="succeeded", outputs=paths, timings=gen.timings,
                              content_types=[o.content_type for o in gen.outputs],
                              stopped_late=gen.stopped_late)
            job.record["progress"] = {**job.record["progress"], "fraction": 1.0,
                                      "images_done": len(paths), "images_total": len(paths)}
            job.outcome = gen
        except asyncio.CancelledError:
            # the process is shutting down: the record stays queued/running for the next
            # start's recovery to settle from ComfyUI
            raise
        except JobCancelled as exc:
            # cancelled only on ComfyUI's word; a stop it could not confirm (its answer to
            # the queueing was lost) leaves the outcome unknown, and the job says so
            if exc.confirmed:
                job.record.update(status="cancelled", error={"code": exc.code,
                                                             "message": exc.message})
            else:
                job.record.update(status="failed", error={"code": "cancel_unconfirmed",
                                                          "message": exc.message})
            job.outcome = exc
        except ApiError as exc:
            job.record.update(status="failed", error={"code": exc.code, "message": exc.message,
                                                      "status": exc.status, "field": exc.field})
            job.outcome = exc
        except Exception as exc:  # noqa: BLE001 - a bug: the job says so, the log has it all
            log.exception("job %s failed unexpectedly", job.id)
            job.record.update(status="failed", error={
                "code": "internal_error",
                "message": f"unexpected {type(exc).__name__}; the server log has the details"})
            job.outcome = exc
        job.record["ended_at"] = time.time()
        job.end()
        # on disk before anyone hears it ended
        await asyncio.shield(self._schedule_write(job))
        job.ended.set()
        self._release_outputs(job)
        self._retire(job)

    @staticmethod
    def _release_outputs(job: Job) -> None:
        """Drop the ended job's output bytes once no sync caller waits for them (they are
        on disk): ended jobs stay in memory for their events, their images need not."""
        if job.ended.is_set() and job.sync_waiters == 0 and isinstance(job.outcome, Generation):
            job.outcome = None

    def _schedule_write(self, job: Job) -> asyncio.Task[None]:
        """Write the job's record soon; one writer per job, so its last state always wins
        (two writes in flight could land in either order)."""
        self._dirty.add(job.id)
        writer = self._writes.get(job.id)
        if writer is None or writer.done():
            writer = asyncio.create_task(self._write_loop(job))
            self._writes[job.id] = writer
        return writer

    async def _write_loop(self, job: Job) -> None:
        while job.id in self._dirty:
            self._dirty.discard(job.id)
            await asyncio.to_thread(self.records.write, dict(job.record))
        self._writes.pop(job.id, None)

    def _retire(self, job: Job) -> None:
        self._ended.append(job.id)
        while len(self._ended) > KEEP_ENDED:
            self._live.pop(self._ended.popleft(), None)

    async def outcome(self, job: Job) -> Generation:
        """What a sync caller hears: the outputs, or the job's error as the runner said it
        (JobCancelled for a job cancelled through DELETE, DeadlineExceeded once ComfyUI
        confirmed); past the deadline plus CONFIRM_GRACE_S a 504 saying that ComfyUI has
        not confirmed yet and where the job's final status will be."""
        waited = time.time() - float(job.record["created_at"])
        wait_s = max(self.deadline_s + self.confirm_grace_s - waited, 0.0)
        job.sync_waiters += 1
        try:
            return await self._ended_outcome(job, wait_s)
        finally:
            job.sync_waiters -= 1
            self._release_outputs(job)

    async def _ended_outcome(self, job: Job, wait_s: float) -> Generation:
        try:
            await asyncio.wait_for(asyncio.shield(job.ended.wait()), wait_s)
        except TimeoutError:
            late = DeadlineExceeded(
                f"the job did not end within the {self.deadline_s:.0f} s deadline: it is still "
                f"{job.status}; the backend asked ComfyUI to stop it and ComfyUI has not "
                f"confirmed yet; its final status will be at /jobs/{job.id}")
            late.request_id = job.id  # type: ignore[attr-defined]
            raise late from None
        if isinstance(job.outcome, Generation):
            return job.outcome
        if isinstance(job.outcome, BaseException):
            raise job.outcome
        raise RuntimeError(f"job {job.id} ended without an outcome")

    # --- reading ---------------------------------------------------------------------
    def _known(self, job_id: str) -> Job | None:
        if not JOB_ID_RE.fullmatch(job_id):
            return None
        return self._live.get(job_id)

    async def _record(self, job_id: str) -> dict[str, Any]:
        job = self._known(job_id)
        if job is not None:
            return job.record
        if JOB_ID_RE.fullmatch(job_id):
            try:
                return await asyncio.to_thread(self.records.read, job_id)
            except (FileNotFoundError, ValueError):
                pass
        raise NotFound(f"no job {job_id!r}: it never existed here, or its record was removed; "
                       "GET /jobs lists the jobs")

    async def get(self, job_id: str) -> dict[str, Any]:
        return job_view(await self._record(job_id))

    async def list(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        by_id = {str(r["request_id"]): r for r in await asyncio.to_thread(self.records.all)}
        by_id.update({job.id: job.record for job in self._live.values()})
        found = [r for r in by_id.values() if status is None or r.get("status") == status]
        found.sort(key=lambda r: float(r.get("created_at") or r.get("started_at") or 0),
                   reverse=True)
        return [job_view(r) for r in found[:limit]]

    async def output(self, job_id: str, n: int) -> tuple[Path, str]:
        """(path, media type) of output `n`, as the sync route would have sent it."""
        record = await self._record(job_id)
        paths = record.get("outputs") or []
        if not 0 <= n < len(paths):
            raise NotFound(f"job {job_id} has no output {n}: it has {len(paths)} "
                           f"(status {record.get('status')})", field="n")
        types = record.get("content_types") or []
        media = (types[n] if n < len(types) else None) or mimetypes.guess_type(paths[n])[0] \
            or "application/octet-stream"
        return Path(paths[n]), media

    async def cancel(self, job_id: str) -> dict[str, Any]:
        record = await self._record(job_id)
        if record.get("status") in ENDED:
            raise JobAlreadyEnded(f"job {job_id} has already ended: {record.get('status')}; "
                                  "its status stays")
        job = self._known(job_id)
        if job is None:
            raise JobAlreadyEnded(
                f"job {job_id} was started by an earlier backend process; this one is settling "
                "it from ComfyUI's history and cannot cancel it", field="id")
        job.cancel.set()  # the runner stops it in ComfyUI and waits for ComfyUI's word
        return job_view(job.record)

    async def events(self, job_id: str, after: int) -> AsyncIterator[JobEvent]:
        job = self._known(job_id)
        if job is not None:
            async for event in job.follow(after):
                yield event
            return
        record = await self._record(job_id)
        sent_status = None
        while record.get("status") not in ENDED:
            # an earlier process's job that recovery is settling: follow its record
            if record.get("status") != sent_status:
                sent_status = record.get("status")
                for event in _disk_events(record):
                    yield event
            await asyncio.sleep(DISK_POLL_S)
            record = await self._record(job_id)
        for event in _disk_events(record):
            if event.id > after:
                yield event

    async def aclose(self) -> None:
        """Wait for records being written; running jobs stay recorded as they are."""
        if self._writes:
            await asyncio.gather(*self._writes.values(), return_exceptions=True)


def parse_list_query(status: str | None, limit: str | None) -> tuple[str | None, int]:
    """GET /jobs's query, checked: a bad value is a 400 naming the parameter."""
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}; got {status!r}",
                             field="status")
    if limit is None:
        return status, LIST_LIMIT_DEFAULT
    if not limit.isdigit() or not 1 <= int(limit) <= LIST_LIMIT_MAX:
        raise InvalidRequest(f"limit must be a whole number from 1 to {LIST_LIMIT_MAX}; "
                             f"got {limit!r}", field="limit")
    return status, int(limit)


def parse_last_event_id(value: str | None) -> int:
    if value is None or not value.strip():
        return 0
    if not value.strip().isdigit():
        raise InvalidRequest(f"the Last-Event-ID header must be an event id this stream sent "
                             f"(a whole number); got {value!r}", field="Last-Event-ID")
    return int(value.strip())


def prefers_async(prefer: str | None) -> bool:
    """RFC 7240: `Prefer` holds comma-separated preferences, each `token[=value]` with
    optional `;` parameters; names are case-insensitive."""
    if not prefer:
        return False
    names = {item.split(";", 1)[0].split("=", 1)[0].strip().lower() for item in prefer.split(",")}
    return "respond-async" in names


__all__ = ["CONFIRM_GRACE_S", "ENDED", "STATUSES", "Job", "JobEvent", "JobManager", "job_view", "parse_last_event_id",
           "parse_list_query", "prefers_async"]
