"""A tab's long action (a Flux or LoRA batch, a character sheet) as jobs on the backend.

The jobs belong to the backend, not to the page: an `Action` submits them, follows each
one's events in a worker thread (`follow_job`, ui/client/jobs.py), and keeps what the
page shows while they run: the image (k of M), the sampler step (n of N), an ETA from the
step pace it measured (`StepPace`), the latest live preview, and "GPU starting, ~N s" while a job waits for a cold
GPU. The page's generator only reads `view()`; a closed tab stops the generator, not the
action, whose worker still saves every image into the history.

`stop()` is the Stop button: DELETE for every job still queued or running, then each
job's end as ComfyUI confirmed it (cancelled / finished anyway, kept / unknown).
"""

from __future__ import annotations

import html
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from pydantic import BaseModel

from ui.client import (CANCELLED, ENDED, FAILED, FINISHED_ANYWAY, BackendError,
                       GenerationResult, RylaClient, StepPace, ask_to_cancel, follow_job,
                       stop_outcome, wait_for_ends)
from ui.studio.warm import GpuState

# How long Stop waits for ComfyUI's word on each job before it says "unknown".
STOP_CONFIRM_S = 30.0


class Stopped(BackendError):
    """An image of the action that was never submitted: Stop came first."""

    def __init__(self) -> None:
        super().__init__(409, "stopped", "stopped before it started")


@dataclass
class JobState:
    """One job of the action as its events told it."""

    id: str
    index: int  # 1-based, in the action's order
    status: str = "queued"
    step: int | None = None
    steps: int | None = None
    fraction: float = 0.0
    preview: str | None = None  # base64 JPEG, the latest
    job: dict[str, Any] = field(default_factory=dict)  # the last job object heard
    stop_asked: bool = False
    submitted_at: float = 0.0
    round_trip_s: float | None = None  # submit to image fetched

    @property
    def ended(self) -> bool:
        return self.status in ENDED


class Action:
    """The jobs of one click. Thread-safe: workers write, the page's generator reads."""

    def __init__(self, client: RylaClient, total: int, gpu: GpuState | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.total, self.gpu, self.clock = client, total, gpu, clock
        self.jobs: list[JobState] = []
        self.stopping = threading.Event()
        self.changed = threading.Event()  # set on every event: the page redraws
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)
        self._pace = StepPace()
        self._started = clock()
        self._asked = 0  # submissions begun: each job's index, also when they run in parallel
        self._preview_of: str | None = None
        self.on_submit: Callable[[JobState], None] | None = None

    # -- running -------------------------------------------------------------------------

    def submit(self, request: BaseModel) -> JobState:
        """Start one job on the backend (raises Stopped once Stop was pressed)."""
        with self._lock:
            if self.stopping.is_set():
                raise Stopped()
            self._asked += 1
            index = self._asked
        job = self.client.submit(request)
        state = JobState(id=str(job["id"]), index=index, job=job,
                         status=str(job.get("status", "queued")), submitted_at=self.clock())
        with self._lock:
            self.jobs.append(state)
            self.jobs.sort(key=lambda s: s.index)
        if self.on_submit is not None:
            self.on_submit(state)
        self.changed.set()
        return state

    def follow(self, state: JobState) -> GenerationResult:
        """Follow a job to its end; its image, or BackendError saying why there is none."""
        result = follow_job(self.client, state.id,
                            on_event=lambda event, data: self._heard(state, event, data),
                            on_end=lambda final: self._end(state, final or {"status": "unknown"}))
        state.round_trip_s = self.clock() - state.submitted_at
        return result

    def run(self, request: BaseModel) -> GenerationResult:
        return self.follow(self.submit(request))

    def _heard(self, state: JobState, event: str, data: Any) -> None:
        now = self.clock()
        with self._lock:
            if event == "status" and isinstance(data, dict):
                state.status = str(data.get("status", state.status))
            elif event == "progress" and isinstance(data, dict):
                state.fraction = float(data.get("fraction") or 0.0)
                state.steps = data.get("steps") or state.steps
                step = data.get("step")
                if isinstance(step, int):
                    self._pace.heard(state.id, step, now)
                    state.step = step
            elif event == "preview" and isinstance(data, dict) and data.get("image"):
                state.preview = str(data["image"])
                self._preview_of = state.id
        self.changed.set()

    def _end(self, state: JobState, final: dict[str, Any]) -> None:
        with self._lock:
            state.job = final or state.job
            state.status = str(final.get("status") or "unknown")
            if state.status not in ENDED:
                state.status = "unknown"
            self._ended.notify_all()
        self.changed.set()

    # -- stop ----------------------------------------------------------------------------

    def stop(self, confirm_s: float = STOP_CONFIRM_S) -> list[tuple[JobState, str]]:
        """Cancel every job still queued or running, wait for ComfyUI's word on each, and
        say it: (job, "cancelled" | "finished anyway, kept" | "failed: ..." | "unknown")."""
        self.stopping.set()
        with self._lock:
            live = [s for s in self.jobs if not s.ended]
        for state in live:
            state.stop_asked = True
            problem = ask_to_cancel(self.client, state.id)
            if problem is not None:
                state.job = {**state.job, "error": {"message": problem.message}}
        # A job nobody follows (its worker gone with a closed page) is asked directly.
        ends = wait_for_ends(self.client, [s.id for s in live], self._heard_end, confirm_s)
        for state in live:
            end = ends[state.id]
            if not state.ended and end is not None:
                self._end(state, end)
        self.changed.set()
        return [(s, verdict(s)) for s in live]

    def _heard_end(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """The job's end once its worker heard it, within `timeout` seconds; None at once
        when its worker lost the events (the backend is asked instead)."""
        with self._ended:
            state = next(s for s in self.jobs if s.id == job_id)
            self._ended.wait_for(lambda: state.ended or state.status == "unknown", timeout)
            return state.job if state.ended else None

    def _stopped_html(self, jobs: list[JobState], made: int | None = None) -> str:
        """What Stop found, per job it asked to stop; said by the page's generator and by
        the Stop button alike, so that whichever lands last tells the same."""
        asked = [s for s in jobs if s.stop_asked]
        head = (f"Stopped: {made} of {self.total} images made, kept in History."
                if made is not None else "Stopping: asked ComfyUI to stop every job still running.")
        if not asked:
            return f'<div class="ryla-progress ryla-stopped">{head}</div>'
        rows = "".join(f"<li>image {s.index}: {html.escape(verdict(s))}</li>" for s in asked)
        return (f'<div class="ryla-progress ryla-stopped">{head} What ComfyUI confirmed:'
                f"<ul>{rows}</ul></div>")

    # -- what the page shows ---------------------------------------------------------------

    def view(self) -> str:
        """The progress line and the live preview, as HTML; once stopped, what ComfyUI
        confirmed for each job."""
        if self.stopping.is_set():
            with self._lock:
                return self._stopped_html(list(self.jobs))
        with self._lock:
            jobs = list(self.jobs)
            done = sum(s.ended for s in jobs)
            running = [s for s in jobs if s.status == "running"]
            preview = next((s.preview for s in jobs if s.id == self._preview_of), None)
            eta = self._eta(jobs)
        current = running[0] if running else None  # one GPU: the oldest runs first
        parts = [f"Image {min(done + 1, self.total)} of {self.total}"]
        if current is not None and current.step is not None and current.steps:
            parts.append(f"step {current.step} of {current.steps}")
        elif current is not None:
            parts.append(f"{current.fraction * 100:.0f} %")
        elif jobs and done < len(jobs):
            parts.append(self._waiting_text())
        if eta is not None:
            parts.append(f"ETA ~{_seconds(eta)}")
        line = f'<div class="ryla-progress">{html.escape(" · ".join(parts))}</div>'
        image = (f'<img class="ryla-preview" alt="live preview" src="data:image/jpeg;base64,{preview}">'
                 if preview else "")
        return line + image

    def _waiting_text(self) -> str:
        starting = self.gpu.starting_in() if self.gpu is not None else None
        if starting is not None:
            return f"GPU starting, ~{_seconds(starting)}"
        return f"queued {_seconds(self.clock() - self._started)}: waiting for the GPU"

    def _eta(self, jobs: list[JobState]) -> float | None:
        known = [s.steps for s in jobs if s.steps]
        steps_each = known[-1] if known else None
        if steps_each is None:
            return None
        remaining = 0
        for state in jobs:
            if not state.ended:
                remaining += (state.steps or steps_each) - (state.step or 0)
        remaining += steps_each * max(0, self.total - len(jobs))
        return self._pace.seconds_left(remaining) if remaining > 0 else None

    def final_text(self, made: int) -> str:
        """The panel's last word once every job has ended."""
        if self.stopping.is_set():
            with self._lock:
                return self._stopped_html(list(self.jobs), made)
        return f'<div class="ryla-progress">Done: {made} of {self.total} images.</div>'


def verdict(state: JobState) -> str:
    """A stopped job's end in a creator's words, only what ComfyUI confirmed."""
    if not state.ended and state.status != "unknown":
        return "waiting for ComfyUI's word…"
    outcome = stop_outcome(state.job if state.ended else None)
    if outcome in (CANCELLED, FINISHED_ANYWAY):
        return outcome
    if outcome == FAILED:
        message = (state.job.get("error") or {}).get("message") or "failed"
        return f"not stopped cleanly: {message}"
    return "unknown: ComfyUI has not said yet (History will show its end)"


def _seconds(value: float) -> str:
    value = max(0.0, value)
    if value < 90:
        return f"{max(1, math.ceil(value))} s"
    return f"{math.ceil(value / 60)} min"


class Running:
    """The action each page is running in one tab, by the page's Gradio session: what
    that page's Stop button stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_session: dict[str, Action] = {}

    def start(self, session: str | None, action: Action) -> None:
        if session:
            with self._lock:
                self._by_session[session] = action

    def finish(self, session: str | None, action: Action) -> None:
        with self._lock:
            if session and self._by_session.get(session) is action:
                del self._by_session[session]

    def stop(self, session: str | None) -> str:
        """Stop this page's action; what ComfyUI confirmed for each of its jobs, as HTML."""
        with self._lock:
            action = self._by_session.get(session or "")
        if action is None:
            return '<div class="ryla-progress">Nothing is running here.</div>'
        action.stop()
        return action.view()


@dataclass
class ActionPanel:
    """A tab's Stop button and progress panel (the line and the live preview)."""

    kind: str
    run: Any
    stop: Any
    progress: Any

    @classmethod
    def build(cls, kind: str, label: str) -> "ActionPanel":
        """The tab's run button (`#<kind>-generate`) with Stop beside it, the panel below."""
        with gr.Row():
            run = gr.Button(label, variant="primary", elem_id=f"{kind}-generate", scale=4)
            stop = gr.Button("Stop", variant="stop", elem_id=f"{kind}-stop", scale=1)
        progress = gr.HTML("", elem_id=f"{kind}-progress", elem_classes=["ryla-job-panel"])
        return cls(kind, run, stop, progress)

    def wire(self, running: Running, generation: Any) -> None:
        """Stop cancels the page's generator (Gradio's `cancels`) and, what matters, the
        backend's jobs (DELETE), then shows what ComfyUI confirmed for each."""
        def stop(request: gr.Request) -> str:
            return running.stop(getattr(request, "session_hash", None))

        self.stop.click(stop, outputs=self.progress, cancels=[generation],
                        api_name=f"stop_{self.kind}", concurrency_limit=None)


class JobsTab:
    """A tab whose action runs as backend jobs: its client, history, fields (the class's
    `FIELDS` unless given), the GPU line's state, and the page's running action."""

    FIELDS: tuple[Any, ...] = ()

    def __init__(self, client: RylaClient, history: Any, fields: tuple[Any, ...] | None = None,
                 gpu: GpuState | None = None) -> None:
        self.client, self.history, self.gpu = client, history, gpu
        self.fields = self.FIELDS if fields is None else fields
        self.running = Running()

    def generate(self, values: dict[str, Any], progress: Any,
                 session: str | None = None) -> Any:
        """The click: the tab's work, with problems shown by their field (problems.py)."""
        from ui.studio.problems import guarded

        yield from guarded(self.fields, self.made, self.notice, self._generate(values, session))
