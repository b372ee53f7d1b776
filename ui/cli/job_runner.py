"""Generation through the jobs API, with Ctrl-C that stops the jobs on the backend.

`JobRunner.generate(request)` submits the request as a job (`Prefer: respond-async`),
follows its events (the progress display, ui/cli/progress.py) and returns its outputs as
the synchronous call would have (`job_result`, ui/client/jobs.py): a `GenerationResult`, or a `BackendError` when the job
failed. It is thread-safe, so `ryla sheet` makes each image of a sheet with it
(ui/sheet.py's `run_item`).

Ctrl-C, while a runner is open (`with JobRunner(...)`):
- the first says at once how many jobs it cancels, asks the backend to cancel each
  (`ask_to_cancel`), starts no new job, waits (up to `CONFIRM_WAIT_S`, `wait_for_ends`)
  for what the backend confirms, and reports it for each job (`stop_outcome`): cancelled, finished anyway (its outputs
  are saved as usual), or not confirmed. The command then ends with exit code 130
  (`Interrupted`, raised when the runner closes);
- a second exits at once, saying that the jobs may still run on the backend.

The events are followed on a thread of their own per job, so that the command's wait is an
`Event.wait`, which Ctrl-C interrupts at once and which can be given up on.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from pydantic import BaseModel

from ui.cli.progress import JobDisplay, wanted
from ui.client import (CANCELLED, FAILED, FINISHED_ANYWAY, BackendError, GenerationResult,
                       RylaClient, ask_to_cancel, job_result, stop_outcome, wait_for_ends)
from workflows.registry import ROUTE_OF_MODEL

# How long a Ctrl-C waits for the backend to confirm each cancel before it says "unknown".
CONFIRM_WAIT_S = 30.0
INTERRUPTED_EXIT = 130


class Interrupted(Exception):
    """Ctrl-C stopped the command; what became of its jobs was reported (exit 130)."""


@dataclass
class _Tracked:
    job_id: str
    label: str
    ended: threading.Event = field(default_factory=threading.Event)
    final: dict[str, Any] | None = None  # the job object of its `done` event
    error: BaseException | None = None  # the event stream could not be followed
    outcome: str | None = None  # the report line after a Ctrl-C
    cancel_problem: str | None = None  # why the backend could not be asked to cancel it


def request_label(request: BaseModel) -> str:
    """A job's name on its bar: the route's command, the sheet's method, the prompt."""
    command = ROUTE_OF_MODEL[type(request)].command
    method = getattr(request, "method", None)
    prompt = str(getattr(request, "prompt", "") or "")
    head = f"{command} {method}" if method else command
    return f"{head}: {prompt[:24]}…" if len(prompt) > 24 else f"{head}: {prompt}" if prompt else head


class JobRunner:
    def __init__(self, client: RylaClient, display: JobDisplay, *,
                 confirm_wait_s: float = CONFIRM_WAIT_S) -> None:
        self.client = client
        self.display = display
        self.confirm_wait_s = confirm_wait_s
        # re-entrant: the Ctrl-C handler runs on the main thread, maybe inside a `with`
        self._lock = threading.RLock()
        self._submitted = threading.Condition(self._lock)
        self._tracked: list[_Tracked] = []
        self._submitting = 0
        self._stopping = threading.Event()
        self._reported = threading.Event()
        self._previous_handler: Any = None

    # -- the command's side ------------------------------------------------------------

    def __enter__(self) -> JobRunner:
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> bool:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
        if self._stopping.is_set():
            self._reported.wait()
            # a job's BackendError (cancelled, not started) is the interruption itself
            if exc_type is None or issubclass(exc_type, BackendError):
                raise Interrupted() from exc
        return False

    @property
    def interrupted(self) -> bool:
        return self._stopping.is_set()

    def generate(self, request: BaseModel) -> GenerationResult:
        """Submit, follow, fetch: the job's result, or its BackendError."""
        with self._lock:
            if self._stopping.is_set():
                raise BackendError(0, "cancelled", "not started: the command was interrupted")
            self._submitting += 1
        try:
            job = self.client.submit(request)
        finally:
            with self._lock:
                self._submitting -= 1
                self._submitted.notify_all()
        tracked = _Tracked(str(job["id"]), request_label(request))
        with self._lock:
            self._tracked.append(tracked)
            late = self._stopping.is_set()  # Ctrl-C came while it was being submitted
        self.display.add(tracked.job_id, tracked.label)
        threading.Thread(target=self._follow, args=(tracked,), daemon=True,
                         name=f"job-{tracked.job_id[:8]}").start()
        if late:
            self._cancel(tracked)
        tracked.ended.wait()
        if self._stopping.is_set():
            self._reported.wait()  # the report comes before the command's own lines
        if tracked.final is None:
            if isinstance(tracked.error, BackendError):
                raise BackendError(
                    tracked.error.status, tracked.error.code,
                    f"lost the events of job {tracked.job_id} ({tracked.error.code}); the job "
                    f"goes on: `ryla jobs watch {tracked.job_id}` follows it, "
                    f"`ryla jobs fetch {tracked.job_id}` saves its outputs") from tracked.error
            if tracked.error is not None:
                raise tracked.error
            raise BackendError(0, "cancel_unconfirmed", f"job {tracked.job_id}: {tracked.outcome}")
        return job_result(self.client, tracked.final)

    # -- the job's own thread ----------------------------------------------------------

    def _follow(self, tracked: _Tracked) -> None:
        try:
            tracked.final = self.client.wait(
                tracked.job_id,
                on_event=lambda event, data: self.display.on_event(tracked.job_id, event, data))
        except BaseException as exc:  # noqa: BLE001 - handed to the command's thread
            tracked.error = exc
        finally:
            self.display.finished(tracked.job_id)
            tracked.ended.set()

    # -- Ctrl-C ------------------------------------------------------------------------

    def _on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping.is_set():
            self.display.close()
            with self._lock:
                ids = [t.job_id for t in self._tracked if not t.ended.is_set()]
            print("interrupted again: exiting now; "
                  + (f"these jobs may still run on the backend: {', '.join(ids)} "
                     "(`ryla jobs` lists them)" if ids else "the jobs may still run on the backend "
                                                          "(`ryla jobs` lists them)"),
                  file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(INTERRUPTED_EXIT)
        self._stopping.set()
        with self._lock:
            pending = [t for t in self._tracked if not t.ended.is_set()]
            count = len(pending) + self._submitting
        noun = "job" if count == 1 else "jobs"
        self.display.print(f"cancelling {count} {noun}… (Ctrl-C again to exit at once)"
                           if count else "interrupted: no job is running")
        threading.Thread(target=self._stop_all, daemon=True, name="cancel-jobs").start()

    def _stop_all(self) -> None:
        try:
            with self._lock:
                ended_before = {t.job_id for t in self._tracked if t.ended.is_set()}
                pending = [t for t in self._tracked if t.job_id not in ended_before]
            for tracked in pending:
                self._cancel(tracked)
            # a job being submitted at the Ctrl-C is cancelled by its own thread once it is
            # known; wait for it, so that the report names it
            with self._submitted:
                self._submitted.wait_for(lambda: self._submitting == 0, self.confirm_wait_s)
                stopped = [t for t in self._tracked if t.job_id not in ended_before]
            by_id = {t.job_id: t for t in stopped}
            ends = wait_for_ends(self.client, list(by_id),
                                 lambda job_id, timeout: self._heard_end(by_id[job_id], timeout),
                                 self.confirm_wait_s)
            for tracked in stopped:
                if tracked.final is None:
                    tracked.final = ends[tracked.job_id]  # the backend's word, asked directly
                tracked.outcome = _outcome(tracked)
                tracked.ended.set()  # the command stops waiting for it
                self.display.print(f"job {tracked.job_id} ({tracked.label}): {tracked.outcome}")
        finally:
            self._reported.set()

    @staticmethod
    def _heard_end(tracked: _Tracked, timeout: float) -> dict[str, Any] | None:
        return tracked.final if tracked.ended.wait(timeout) else None

    def _cancel(self, tracked: _Tracked) -> None:
        problem = ask_to_cancel(self.client, tracked.job_id)
        if problem is not None:
            tracked.cancel_problem = f"could not ask the backend to cancel it: {problem}"


def _outcome(tracked: _Tracked) -> str:
    """What the backend confirmed for a job after a Ctrl-C, in the CLI's words."""
    outcome = stop_outcome(tracked.final)
    if outcome == CANCELLED:
        return "cancelled"
    if outcome == FINISHED_ANYWAY:
        return "finished anyway before the cancel reached it; its outputs are saved"
    if outcome == FAILED:
        error = (tracked.final or {}).get("error") or {}
        return f"failed: {error.get('code')}: {error.get('message')}"
    if tracked.cancel_problem is not None:
        return tracked.cancel_problem
    if tracked.error is not None:
        return f"unknown: its events were lost ({tracked.error}); `ryla jobs show {tracked.job_id}`"
    return ("the backend has not confirmed the cancel; it may still run: "
            f"`ryla jobs show {tracked.job_id}`")


@contextmanager
def job_runner(client: RylaClient, *, as_json: bool,
               total_images: int | None = None) -> Iterator[JobRunner]:
    """A runner with its progress display (on at a terminal, without --json)."""
    display = JobDisplay(wanted(as_json), total_images=total_images)
    with display, JobRunner(client, display) as runner:
        yield runner
