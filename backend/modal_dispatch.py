"""The Modal web tier's GraphRunner: validate here, on the CPU container; run on a GPU
function; tell /health whether a GPU is warm from heartbeats, never by asking one.

Modal-free on purpose: backend/modal_app.py plugs Modal's objects into the three small
interfaces below (`GpuFunction`, `PendingCall`, `Heartbeats`), and the tests plug fakes
into them (tests/modal/test_dispatch.py, tests/modal/test_warm.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from backend.comfyui_client import JobEventSink
from backend.errors import ApiError, ComfyUIJobFailed, ComfyUIUnavailable, DeadlineExceeded
from backend.graph_job import GraphJob, result_from_wire
from backend.graph_runner import GraphResult
from backend.snapshot_validation import SnapshotValidator

log = logging.getLogger(__name__)

# The web tier asks for the result in slices, so that a job stuck past its deadline is
# noticed and cancelled even if the GPU side never answers.
POLL_SLICE_S = 30.0
# The GPU side enforces the deadline itself (it cancels the ComfyUI prompt and answers
# 504); the web tier waits this much longer for that answer before cancelling the call.
RESULT_GRACE_S = 15.0
CANCEL_TIMEOUT_S = 5.0
# /health must answer in well under a second, heartbeats or not.
HEARTBEAT_READ_TIMEOUT_S = 0.5


class PendingCall(Protocol):
    call_id: str

    async def get(self, timeout_s: float) -> Any:
        """The GPU function's return value; TimeoutError while it is not done."""

    async def cancel(self) -> None: ...


class GpuFunction(Protocol):
    async def spawn(self, wire_job: dict[str, Any]) -> PendingCall:
        """Start the GPU function on one job (backend.graph_job wire format)."""

    async def start_container(self) -> None:
        """Have one GPU container start now, without waiting for it (POST /warm)."""


class Heartbeats(Protocol):
    async def read(self) -> Mapping[str, Mapping[str, Any]]:
        """Container id -> {"at": time.time() of its last beat, "busy": bool}; and, while a
        start asked by /warm may be in flight, STARTING_KEY -> {"since": time.time()}."""

    async def mark_starting(self, since: float) -> bool:
        """Put {"since": since} under STARTING_KEY unless a marker is there already; whether
        it was put (Modal: `Dict.put(..., skip_if_exists=True)`, one winner among web
        containers)."""

    async def clear_starting(self) -> None:
        """Remove the marker, if any."""


# The "a GPU start is in flight" marker lives in the heartbeat store beside the beats, so
# that every web container sees a start another one asked for.
STARTING_KEY = "gpu-starting"
# A start counts as in flight for this many cold starts; a container that has not beaten
# by then did not start, and the next /warm asks again.
STARTING_TTL_COLD_STARTS = 2.0


def _live_beats(beats: Mapping[str, Mapping[str, Any]], now: float,
                stale_after_s: float) -> list[Mapping[str, Any]]:
    return [b for key, b in beats.items() if key != STARTING_KEY and isinstance(b, Mapping)
            and now - float(b.get("at", 0)) <= stale_after_s]


def starting_since(beats: Mapping[str, Mapping[str, Any]]) -> float | None:
    marker = beats.get(STARTING_KEY)
    since = marker.get("since") if isinstance(marker, Mapping) else None
    return float(since) if isinstance(since, (int, float)) else None


def gpu_state(beats: Mapping[str, Mapping[str, Any]], now: float, *, stale_after_s: float,
              cold_start_s: float) -> dict[str, Any]:
    """The `gpu` of /health and /warm: warm (a GPU container beats, idle or busy),
    starting (a start asked within its TTL; `ready_in_s` what is left of a cold start) or
    cold (`ready_in_s` a whole cold start)."""
    if _live_beats(beats, now, stale_after_s):
        return {"gpu": "warm", "ready_in_s": 0}
    since = starting_since(beats)
    elapsed = max(now - since, 0.0) if since is not None else None  # clocks of two containers
    if elapsed is not None and elapsed < STARTING_TTL_COLD_STARTS * cold_start_s:
        return {"gpu": "starting", "ready_in_s": math.ceil(max(cold_start_s - elapsed, 0.0))}
    return {"gpu": "cold", "ready_in_s": math.ceil(cold_start_s)}


def generation_status(beats: Mapping[str, Mapping[str, Any]], now: float, *,
                      stale_after_s: float, cold_start_s: float) -> dict[str, Any]:
    """Warm (a GPU container is up and idle), busy (all up ones are working: a new
    request starts another) or cold (none is up: the next generation cold-starts)."""
    live = _live_beats(beats, now, stale_after_s)
    idle = [b for b in live if not b.get("busy")]
    cold = f"cold start on next generation (~{cold_start_s:.0f} s)"
    if idle:
        state, message = "warm", "a GPU is warm: the next generation starts at once"
    elif live:
        state, message = "busy", f"every warm GPU is busy: another one starts, {cold}"
    else:
        state, message = "cold", f"no GPU running: {cold}"
    return {"state": state, "message": message, "gpu_containers": len(live),
            "idle_gpu_containers": len(idle), "cold_start_s": cold_start_s}


class _CancelAsked(Exception):
    """The job's cancel event was set while waiting for the GPU call."""


async def _until_cancelled(awaitable: Any, cancel: asyncio.Event | None) -> Any:
    """`awaitable`'s result, or _CancelAsked as soon as `cancel` is set."""
    if cancel is None:
        return await awaitable
    getting = asyncio.ensure_future(awaitable)
    asked = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({getting, asked}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        asked.cancel()
    if getting.done():
        return getting.result()
    getting.cancel()
    raise _CancelAsked


class ModalGraphRunner:
    def __init__(self, gpu: GpuFunction, heartbeats: Heartbeats, validator: SnapshotValidator, *,
                 cold_start_s: float, heartbeat_stale_s: float,
                 poll_slice_s: float = POLL_SLICE_S, grace_s: float = RESULT_GRACE_S,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.gpu = gpu
        self.heartbeats = heartbeats
        self.validator = validator
        self.cold_start_s = cold_start_s
        self.heartbeat_stale_s = heartbeat_stale_s
        self.poll_slice_s = poll_slice_s
        self.grace_s = grace_s
        self.wall_clock = wall_clock

    async def check(self, graph: dict[str, Any], *, user_graph: bool,
                    input_images: Iterable[str] = ()) -> None:
        await self.validator.check(graph, user_graph=user_graph, input_images=input_images)

    async def run(self, graph: dict[str, Any], images: Mapping[str, bytes], *,
                  user_graph: bool, timeout_s: float, prompt_id: str | None = None,
                  on_event: JobEventSink | None = None,
                  cancel: asyncio.Event | None = None) -> GraphResult:
        # `on_event` hears nothing yet: progress and previews do not cross from the GPU
        # container to the web tier so far (a later task, over a modal.Queue per job).
        loop = asyncio.get_running_loop()
        started = loop.time()
        job = GraphJob(graph, dict(images), user_graph, deadline_at=self.wall_clock() + timeout_s,
                       prompt_id=prompt_id or "")
        try:
            call = await self.gpu.spawn(job.to_wire())
        except ApiError:
            raise
        except Exception as exc:  # Modal's control plane, not our code: say so, as a 503
            raise ComfyUIUnavailable(f"the GPU function could not be started "
                                     f"({type(exc).__name__}: {exc}); try again shortly") from exc
        give_up_at = started + timeout_s + self.grace_s
        try:
            wire = await self._wait(call, give_up_at, timeout_s, cancel)
        except asyncio.CancelledError:  # the caller went away: free the GPU
            await asyncio.shield(self._cancel(call))
            raise
        result = result_from_wire(wire)
        result.timings["gpu_wait_ms"] = (loop.time() - started) * 1000
        return result

    async def _wait(self, call: PendingCall, give_up_at: float, timeout_s: float,
                    cancel: asyncio.Event | None) -> Any:
        loop = asyncio.get_running_loop()
        while True:
            if cancel is not None and cancel.is_set():
                await self._cancel(call)
                # Cancelling the GPU call stops the prompt in that container's ComfyUI, but
                # its word does not reach the web tier yet: the job must not read
                # "cancelled" on a guess, so its outcome is reported as unknown.
                raise ComfyUIUnavailable(
                    f"the GPU call {call.call_id} was cancelled at your request; whether "
                    "ComfyUI stopped the job or finished it first is not known to the web "
                    "tier, so no output was kept")
            left = give_up_at - loop.time()
            if left <= 0:
                await self._cancel(call)
                raise DeadlineExceeded(
                    f"the job did not finish within the {timeout_s:.0f} s deadline (GPU call "
                    f"{call.call_id}); it was cancelled")
            try:
                return await _until_cancelled(call.get(min(self.poll_slice_s, left)), cancel)
            except _CancelAsked:
                continue  # the top of the loop cancels the call
            except TimeoutError:
                continue
            except ApiError:
                raise
            except Exception as exc:
                raise ComfyUIJobFailed(f"the GPU function failed ({type(exc).__name__}: {exc}); "
                                       f"GPU call {call.call_id}") from exc

    async def _cancel(self, call: PendingCall) -> None:
        try:
            async with asyncio.timeout(CANCEL_TIMEOUT_S):
                await call.cancel()
        except Exception as exc:  # the answer is already 504; a failed cancel is only logged
            log.warning("could not cancel GPU call %s: %s", call.call_id, exc)

    async def health(self) -> dict[str, Any]:
        try:
            async with asyncio.timeout(HEARTBEAT_READ_TIMEOUT_S):
                beats = await self.heartbeats.read()
        except Exception as exc:  # `gpu` says the worst: the next generation may cold-start
            return {"gpu": "cold", "generation": {"state": "unknown", "cold_start_s": self.cold_start_s,
                                   "message": f"GPU state unknown ({type(exc).__name__}); a "
                                              f"cold start takes ~{self.cold_start_s:.0f} s"}}
        now = self.wall_clock()
        return {"gpu": self._gpu_state(beats, now)["gpu"],
                "generation": generation_status(beats, now, stale_after_s=self.heartbeat_stale_s,
                                                cold_start_s=self.cold_start_s)}

    def _gpu_state(self, beats: Mapping[str, Mapping[str, Any]], now: float) -> dict[str, Any]:
        return gpu_state(beats, now, stale_after_s=self.heartbeat_stale_s,
                         cold_start_s=self.cold_start_s)

    async def warm(self) -> dict[str, Any]:
        """Start one GPU container unless one beats or a start is in flight (the marker,
        put by one web container only). Never waits for the container."""
        try:
            async with asyncio.timeout(HEARTBEAT_READ_TIMEOUT_S):
                beats = await self.heartbeats.read()
                now = self.wall_clock()
                state = self._gpu_state(beats, now)
                if state["gpu"] != "cold":
                    return state
                if starting_since(beats) is not None:  # expired: that start failed or was lost
                    await self.heartbeats.clear_starting()
                if not await self.heartbeats.mark_starting(now):
                    # another web container asked between this read and this write
                    return {"gpu": "starting", "ready_in_s": math.ceil(self.cold_start_s)}
        except Exception as exc:  # Modal's Dict, not our code: nothing was started
            raise ComfyUIUnavailable(f"the GPU state could not be read ({type(exc).__name__}: "
                                     f"{exc}); no GPU was started, try again shortly") from exc
        try:
            await self.gpu.start_container()
        except Exception as exc:
            await self._forget_start()  # so that the next /warm tries again
            raise ComfyUIUnavailable(f"a GPU container could not be started ({type(exc).__name__}: "
                                     f"{exc}); try again shortly") from exc
        return {"gpu": "starting", "ready_in_s": math.ceil(self.cold_start_s)}

    async def _forget_start(self) -> None:
        try:
            async with asyncio.timeout(HEARTBEAT_READ_TIMEOUT_S):
                await self.heartbeats.clear_starting()
        except Exception as exc:  # the marker then expires after its TTL
            log.warning("could not clear the GPU start marker: %s", exc)

    def loras_changed(self) -> None:
        """Nothing cached here: the validator lists the LoRA directory on every check."""

    async def aclose(self) -> None:
        """Nothing held open: every GPU call ends with its request."""
