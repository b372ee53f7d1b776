"""The progress display of `ryla`'s jobs on a terminal (rich), or nothing.

One line per job in flight: its bar over the whole graph (`fraction`), the sampler step
(n of N), the image (k of M) and an ETA from the step times measured here; "waiting for
the GPU…" while the job is queued. Commands that run several jobs (`ryla sheet`) add an
overall line, images k of M, with an ETA from the images finished so far.

The display is on only when both stdout and stderr are terminals and `--json` is not
given; otherwise every method does nothing, so the output stays as it is without it.
It draws on stderr: stdout keeps only the results.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from ui.client import StepPace

WAITING = "waiting for the GPU…"


def wanted(as_json: bool) -> bool:
    """A bar only for a person at a terminal: not with --json, not into a pipe or file."""
    return not as_json and sys.stdout.isatty() and sys.stderr.isatty()


def clock_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


@dataclass
class JobState:
    """What the events of one job said, and the pace of its sampler's steps (for the ETA)."""

    label: str
    status: str = "queued"
    fraction: float = 0.0
    step: int | None = None
    steps: int | None = None
    images_done: int = 0
    images_total: int | None = None
    pace: StepPace = field(default_factory=StepPace)

    def apply(self, event: str, data: Any, now: float) -> None:
        if not isinstance(data, dict):
            return
        if event == "status":
            self.status = str(data.get("status") or self.status)
        elif event == "done":
            self.status = str(data.get("status") or self.status)
            self._progress(data.get("progress") or {}, now)
            if self.status == "succeeded" and self.steps:
                self.step = self.steps  # its sampler ran to the end
        elif event == "progress":
            self._progress(data, now)

    def _progress(self, data: dict[str, Any], now: float) -> None:
        self.fraction = float(data.get("fraction") or self.fraction)
        self.images_done = int(data.get("images_done") or 0)
        self.images_total = data.get("images_total") or self.images_total
        step, steps = data.get("step"), data.get("steps")
        if step is not None and steps:
            if self.step is not None and step < self.step:
                self.pace = StepPace()  # a new sampler (a second pass): time it afresh
            self.pace.heard(self.label, int(step), now)
            self.step, self.steps = int(step), int(steps)
        elif step is None and self.step is not None and self.steps:
            self.step = self.steps  # a node after the sampler runs: the sampler ended

    def seconds_left(self) -> float | None:
        """The sampler's remaining steps at the pace measured over its steps so far."""
        if not self.steps or self.step is None:
            return None
        return self.pace.seconds_left(self.steps - self.step)

    def detail(self) -> str:
        if self.status == "queued":
            return WAITING
        parts = []
        if self.step is not None and self.steps:
            parts.append(f"step {self.step} of {self.steps}")
        if self.images_total:
            parts.append(f"image {min(self.images_done + 1, self.images_total)} of {self.images_total}"
                         if self.status == "running" else
                         f"images {self.images_done} of {self.images_total}")
        left = self.seconds_left() if self.status == "running" else None
        if left is not None:
            parts.append(f"ETA {clock_text(left)}")
        if self.status not in ("running", "queued"):
            parts.append(self.status)
        return " · ".join(parts)


class JobDisplay:
    """Bars of jobs on stderr while they run; a no-op when `enabled` is false.

    Thread-safe: events arrive on the threads that follow the jobs' event streams.
    """

    def __init__(self, enabled: bool, *, total_images: int | None = None,
                 console: Console | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, JobState] = {}
        self._tasks: dict[str, TaskID] = {}
        self._total_images = total_images
        self._images_done = 0
        self._started = clock()
        self._overall: TaskID | None = None
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=30),
                TextColumn("{task.percentage:>3.0f}%"), TextColumn("{task.fields[detail]}"),
                console=console or Console(stderr=True), transient=False)
            # While the bars are drawn, rich prints the command's own stdout lines (a sheet's
            # per-image lines) above them, through this stderr console: on a terminal, where
            # alone the bars are drawn, they read the same.

    def __enter__(self) -> JobDisplay:
        if self._progress is not None:
            self._progress.start()
            if self._total_images and self._total_images > 1:
                self._overall = self._progress.add_task(
                    "all", total=self._total_images, detail=self._overall_detail())
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()

    def print(self, message: str) -> None:
        """A line on stderr, above the bars when they are shown."""
        if self._progress is not None and self._progress.live.is_started:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=sys.stderr, flush=True)

    def add(self, job_id: str, label: str) -> None:
        if self._progress is None:
            return
        with self._lock:
            state = self._states[job_id] = JobState(label)
            self._tasks[job_id] = self._progress.add_task(label, total=1.0, detail=state.detail())

    def on_event(self, job_id: str, event: str, data: Any) -> None:
        if self._progress is None:
            return
        with self._lock:
            state = self._states.get(job_id)
            if state is None:
                return
            state.apply(event, data, self._clock())
            self._progress.update(self._tasks[job_id], completed=state.fraction,
                                  detail=state.detail())
            if self._overall is not None:  # its ETA counts down between images too
                self._progress.update(self._overall, detail=self._overall_detail())

    def finished(self, job_id: str) -> None:
        """The job ended: a command of several jobs drops its line and counts the image."""
        if self._progress is None:
            return
        with self._lock:
            self._images_done += 1
            if self._overall is not None:
                task = self._tasks.pop(job_id, None)
                if task is not None:
                    self._progress.remove_task(task)
                self._progress.update(self._overall, completed=self._images_done,
                                      detail=self._overall_detail())

    def _overall_detail(self) -> str:
        total = self._total_images or 0
        text = f"images {self._images_done} of {total}"
        if 0 < self._images_done < total:
            per_image = (self._clock() - self._started) / self._images_done
            text += f" · ETA {clock_text(per_image * (total - self._images_done))}"
        return text
