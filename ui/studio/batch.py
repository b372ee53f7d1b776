"""The generation loop the Flux and LoRA tabs share: a batch of images as jobs on the
backend (ui/studio/action.py), each written to the local history before it is shown."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from ui.client import BackendError, GenerationResult, RylaClient, extension_for
from ui.studio.action import Action, JobState, Running, Stopped
from ui.studio.feedback import GalleryItem, format_timings
from ui.studio.history import History, HistoryItem
from ui.studio.seeds import seed_text
from ui.studio.warm import GpuState

# Generation can take minutes on a cold GPU; more than a few at once only queue on it.
GENERATION_CONCURRENCY = 2
GENERATION_EVENT: dict[str, Any] = {"concurrency_limit": GENERATION_CONCURRENCY,
                                    "concurrency_id": "generation"}
PRIVATE: dict[str, Any] = {"api_visibility": "private"}

# (gallery, seed rows, last seed, the progress panel's HTML)
Batch = Iterator[tuple[list[GalleryItem], list[list[Any]], int | None, str]]
# The page redraws on every event, at most this often while nothing is heard.
REDRAW_S = 0.5


def generate_batch(client: RylaClient, history: History, kind: str,
                   make_request: Callable[[int | None], BaseModel], seed: int | None,
                   batch: int, params: dict[str, Any], running: Running,
                   session: str | None, gpu: GpuState | None = None) -> Batch:
    """Submit `batch` jobs at once (the backend queues them for its GPU) and yield the
    gallery and the progress panel as they run. A worker thread follows the jobs and
    writes each image into the history, so a page closed meanwhile loses nothing. A
    fixed seed gives image i the seed `seed + i`, so a batch is reproducible."""
    batch = max(1, int(batch or 1))
    # pydantic's ValidationError and the backend's errors go to the caller, which shows
    # them by their field or in the tab's notice (ui/studio/problems.py).
    requests_ = [make_request(None if seed is None else seed + i) for i in range(batch)]
    action = Action(client, batch, gpu)
    first = action.submit(requests_[0])  # a request the backend refuses is said at once
    item = history.create(kind, params)
    run = BatchRun(history, item)
    run.submitted(first)
    action.on_submit = run.submitted
    running.start(session, action)
    failures: list[BackendError] = []

    def work() -> None:
        try:
            states = [first]
            try:
                for request in requests_[1:]:
                    states.append(action.submit(request))
            except BackendError as exc:
                failures.append(exc)  # Stopped, or a backend gone: the rest is not asked for
            with ThreadPoolExecutor(max_workers=len(states)) as pool:
                followed = [(state, pool.submit(action.follow, state)) for state in states]
                for state, future in followed:  # in the batch's order
                    try:
                        run.add(state, future.result())
                    except BackendError as exc:
                        run.ended(state)
                        failures.append(exc)
        finally:
            run.finish("stopped" if action.stopping.is_set() else "done")
            running.finish(session, action)
            action.changed.set()

    worker = threading.Thread(target=work, name=f"ryla-{kind}-batch", daemon=True)
    worker.start()
    while worker.is_alive():
        action.changed.wait(timeout=REDRAW_S)
        action.changed.clear()
        yield (*run.shown(), action.view())
    worker.join()
    yield (*run.shown(), action.final_text(len(run.item.files)))
    errors = [exc for exc in failures if not isinstance(exc, Stopped) and exc.code != "cancelled"]
    if errors and not action.stopping.is_set():
        raise errors[0]


class BatchRun:
    """One history item per batch, rewritten as each image lands, so that a batch cut
    short still keeps what it made; its jobs' ids are in it from their submission."""

    def __init__(self, history: History, item: HistoryItem) -> None:
        self.history, self.item = history, item
        self._lock = threading.Lock()
        self._last_seed: int | None = None
        item.state = "running"
        history.followed.add(item.id)

    def submitted(self, state: JobState) -> None:
        with self._lock:
            self.item.jobs.append({"id": state.id, "status": state.status, "file": None})
            self.history.update(self.item)

    def ended(self, state: JobState) -> None:
        with self._lock:
            self._job(state)["status"] = state.status
            self.history.update(self.item)

    def add(self, state: JobState, result: GenerationResult) -> None:
        item = self.item
        assert item.folder is not None
        with self._lock:
            name = f"{len(item.files):03d}{extension_for(result.content_type)}"
            (item.folder / name).write_bytes(result.images[0])
            item.files.append(name)
            timings_text = format_timings(result.timings, state.round_trip_s)
            item.outputs.append({
                "seed": result.seed, "request_id": result.request_id, "job_id": state.id,
                "timings": result.timings, "timings_text": timings_text,
                "round_trip_s": round(state.round_trip_s or 0.0, 3),
                "caption": f"seed {result.seed} · {timings_text}",
            })
            self._job(state).update(status=state.status, file=name)
            item.summary = {"images": len(item.files), "seeds": [o["seed"] for o in item.outputs]}
            self._last_seed = result.seed
            self.history.update(item)

    def finish(self, state: str) -> None:
        with self._lock:
            self.item.state = state
            self.history.update(self.item)
            self.history.followed.discard(self.item.id)

    def _job(self, state: JobState) -> dict[str, Any]:
        return next(job for job in self.item.jobs if job["id"] == state.id)

    def shown(self) -> tuple[list[GalleryItem], list[list[Any]], int | None]:
        with self._lock:
            item = self.item
            gallery = [(str(path), out["caption"]) for path, out in zip(item.paths(), item.outputs)]
            # Seeds as text: a browser rounds numbers above 2**53 (ui/studio/seeds.py).
            rows = [[n + 1, seed_text(out["seed"]), out["timings_text"]]
                    for n, out in enumerate(item.outputs)]
            return gallery, rows, self._last_seed
