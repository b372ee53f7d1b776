"""The Modal web tier's GraphRunner: validate here, on the CPU container; run on a GPU
function; tell /health whether a GPU is warm from heartbeats, never by asking one.

While a job runs, a `JobChannel` joins the two tiers: the GPU side publishes ComfyUI's
progress and previews on it (and a liveness beat), which the web tier relays to the job;
the web tier puts a cancel request on it, which the GPU side turns into the stop that
ComfyUIClient.run confirms with ComfyUI. So the GPU call's own return value says how the
job ended (cancelled, stopped by its deadline, or finished anyway with `stopped_late`),
and the web tier cancels the call itself (FunctionCall.cancel) only when the GPU side
has gone silent, reporting that outcome as unconfirmed.

Modal-free on purpose: backend/modal_app.py plugs Modal's objects into the small
interfaces below (`GpuFunction`, `PendingCall`, `Heartbeats`, `JobChannel`), and the tests
plug fakes into them (tests/modal/test_dispatch.py, tests/modal/test_job_channel.py,
tests/modal/test_warm.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from backend.comfyui_client import JobEventSink
from backend.errors import (ApiError, ComfyUIJobFailed, ComfyUIUnavailable, DeadlineExceeded,
                            JobCancelled)
from backend.graph_job import GraphJob, event_from_wire, result_from_wire
from backend.graph_runner import GraphResult
from backend.snapshot_validation import SnapshotValidator

log = logging.getLogger(__name__)

# The web tier asks for the result in slices, so that a job stuck past its deadline is
# noticed and cancelled even if the GPU side never answers.
POLL_SLICE_S = 30.0
# The GPU side enforces the deadline itself (it stops the ComfyUI prompt and answers with
# ComfyUI's word); the web tier starts to wait for that word this much later.
RESULT_GRACE_S = 15.0
CANCEL_TIMEOUT_S = 5.0
# The channel. The GPU side publishes a liveness beat when it has published nothing else
# for ALIVE_INTERVAL_S (and one at once, when the job reaches its container). Once a stop
# is asked (a cancel, or the deadline passed), the web tier waits for the call's answer
# while the GPU side is heard: at least STOP_ANSWER_S, then until it has been silent for
# SILENCE_S (before its first word, until its container could have cold-started twice);
# only then does it cancel the call and report the outcome as unconfirmed.
ALIVE_INTERVAL_S = 5.0
SILENCE_S = 4 * ALIVE_INTERVAL_S
STOP_ANSWER_S = 10.0
RELAY_WAIT_S = 5.0  # one read of the channel waits this long for events (a long poll)
RELAY_RETRY_S = 1.0  # after a failed read
ALIVE = "alive"  # the kind of a liveness beat
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


class JobChannel(Protocol):
    """One job's two-way channel between the GPU container and the web tier, by its
    key (GraphJob.channel_key). Events are backend.graph_job's event dicts."""

    async def publish(self, job_key: str, events: list[dict[str, Any]]) -> None:
        """GPU side: append events, in order."""

    async def events(self, job_key: str, wait_s: float) -> list[dict[str, Any]]:
        """Web tier: the events published since the last read, in order; waits up to
        `wait_s` for the first one ([] if none came; 0: do not wait)."""

    async def request_cancel(self, job_key: str) -> None:
        """Web tier: ask the GPU side to stop the job."""

    async def cancel_requested(self, job_key: str, wait_s: float) -> bool:
        """GPU side: whether a cancel was asked, waiting up to `wait_s` for one."""

    def forget(self, job_key: str) -> None:
        """Web tier: the job has ended; drop what is kept for it (if anything)."""


class InMemoryJobChannel:
    """A JobChannel inside one process and event loop: for a GPU function called
    in-process (benchmarks/rehearsal/stack.py) and for the tests."""

    def __init__(self) -> None:
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._arrived: dict[str, asyncio.Event] = {}
        self._cancels: dict[str, asyncio.Event] = {}

    def _arrival(self, job_key: str) -> asyncio.Event:
        return self._arrived.setdefault(job_key, asyncio.Event())

    async def publish(self, job_key: str, events: list[dict[str, Any]]) -> None:
        self._events.setdefault(job_key, []).extend(events)
        self._arrival(job_key).set()

    async def events(self, job_key: str, wait_s: float) -> list[dict[str, Any]]:
        arrived = self._arrival(job_key)
        if not self._events.get(job_key) and wait_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), wait_s)
        arrived.clear()
        return self._events.pop(job_key, [])

    def _cancel(self, job_key: str) -> asyncio.Event:
        return self._cancels.setdefault(job_key, asyncio.Event())

    async def request_cancel(self, job_key: str) -> None:
        self._cancel(job_key).set()

    async def cancel_requested(self, job_key: str, wait_s: float) -> bool:
        asked = self._cancel(job_key)
        if not asked.is_set() and wait_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asked.wait(), wait_s)
        return asked.is_set()

    def forget(self, job_key: str) -> None:
        for kept in (self._events, self._arrived, self._cancels):
            kept.pop(job_key, None)


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


@dataclass
class _Heard:
    """When (event-loop time) the GPU side last spoke on the job's channel; None: not yet."""
    at: float | None = None


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
                 channel: JobChannel | None = None,
                 poll_slice_s: float = POLL_SLICE_S, grace_s: float = RESULT_GRACE_S,
                 stop_answer_s: float = STOP_ANSWER_S, silence_s: float = SILENCE_S,
                 start_wait_s: float | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.gpu = gpu
        self.heartbeats = heartbeats
        self.validator = validator
        self.cold_start_s = cold_start_s
        self.heartbeat_stale_s = heartbeat_stale_s
        # no channel given: one in this process, which only a GPU function called in
        # this process can hear
        self.channel: JobChannel = channel if channel is not None else InMemoryJobChannel()
        self.poll_slice_s = poll_slice_s
        self.grace_s = grace_s
        self.stop_answer_s = stop_answer_s
        self.silence_s = silence_s
        # before the GPU side's first word, its container may be cold-starting
        self.start_wait_s = (start_wait_s if start_wait_s is not None
                             else STARTING_TTL_COLD_STARTS * cold_start_s)
        self.wall_clock = wall_clock

    async def check(self, graph: dict[str, Any], *, user_graph: bool,
                    input_images: Iterable[str] = ()) -> None:
        await self.validator.check(graph, user_graph=user_graph, input_images=input_images)

    async def run(self, graph: dict[str, Any], images: Mapping[str, bytes], *,
                  user_graph: bool, timeout_s: float, prompt_id: str | None = None,
                  on_event: JobEventSink | None = None,
                  cancel: asyncio.Event | None = None) -> GraphResult:
        # Until the GPU side publishes ComfyUI's first progress, `on_event` hears nothing
        # and the job stays "queued": a cold start reads as queued, and /health's `gpu`
        # ("starting", `ready_in_s`) says how long the start has left.
        loop = asyncio.get_running_loop()
        started = loop.time()
        job = GraphJob(graph, dict(images), user_graph, deadline_at=self.wall_clock() + timeout_s,
                       prompt_id=prompt_id or "", channel_key=uuid.uuid4().hex)
        try:
            call = await self.gpu.spawn(job.to_wire())
        except ApiError:
            raise
        except Exception as exc:  # Modal's control plane, not our code: say so, as a 503
            raise ComfyUIUnavailable(f"the GPU function could not be started "
                                     f"({type(exc).__name__}: {exc}); try again shortly") from exc
        heard = _Heard()
        relay = asyncio.create_task(self._relay(job.channel_key, on_event, heard))
        try:
            try:
                wire = await self._wait(call, job.channel_key, heard, started, timeout_s, cancel)
            except asyncio.CancelledError:  # the caller went away: free the GPU
                await asyncio.shield(self._cancel(call))
                raise
            finally:
                relay.cancel()
                await asyncio.gather(relay, return_exceptions=True)
            try:
                # what the GPU side published before it answered, relayed before the end
                self._deliver(await self.channel.events(job.channel_key, 0), on_event, heard)
            except Exception as exc:  # the outcome is known: a last progress missed is harmless
                log.info("last events of GPU call %s not read: %s", call.call_id, exc)
        finally:
            self.channel.forget(job.channel_key)
        result = result_from_wire(wire)
        result.timings["gpu_wait_ms"] = (loop.time() - started) * 1000
        return result

    async def _relay(self, job_key: str, on_event: JobEventSink | None, heard: _Heard) -> None:
        """Relay the job's events from the channel until cancelled."""
        while True:
            try:
                events = await self.channel.events(job_key, RELAY_WAIT_S)
            except Exception as exc:  # Modal's Queue: the GPU side goes unheard meanwhile
                log.warning("could not read the events of job %s: %s", job_key, exc)
                await asyncio.sleep(RELAY_RETRY_S)
                continue
            self._deliver(events, on_event, heard)

    @staticmethod
    def _deliver(events: list[dict[str, Any]], on_event: JobEventSink | None, heard: _Heard) -> None:
        for wire in events:
            heard.at = asyncio.get_running_loop().time()
            event = event_from_wire(wire)
            if event is None or on_event is None:
                continue  # a liveness beat: it only says the GPU side is there
            try:
                on_event(event)
            except Exception:  # a listener's bug must not end the job
                log.exception("the job's event listener failed on %s", type(event).__name__)

    async def _wait(self, call: PendingCall, job_key: str, heard: _Heard, started: float,
                    timeout_s: float, cancel: asyncio.Event | None) -> Any:
        """The call's answer. A cancel or the deadline asks the GPU side to stop the job
        (the deadline it watches itself), and the answer is still awaited while the GPU
        side is heard; only once it has gone silent is the call cancelled, unconfirmed."""
        loop = asyncio.get_running_loop()
        deadline = started + timeout_s + self.grace_s
        stop: tuple[str, float] | None = None  # ("cancel" | "deadline", when it was asked)
        while True:
            now = loop.time()
            if stop is None and cancel is not None and cancel.is_set():
                stop = ("cancel", now)
                if not await self._ask_cancel(call, job_key):
                    await self._cancel(call)
                    raise JobCancelled(
                        f"the job was cancelled, but the request could not reach the GPU side "
                        f"(GPU call {call.call_id}); the call was cancelled, and whether ComfyUI "
                        "stopped the job or finished it first is not known", confirmed=False)
            elif stop is None and now >= deadline:
                stop = ("deadline", now)
            if stop is not None:
                answer_by = max(stop[1] + self.stop_answer_s,
                                (heard.at + self.silence_s) if heard.at is not None
                                else started + self.start_wait_s)
                if now >= answer_by:
                    await self._cancel(call)
                    raise self._unconfirmed(stop[0], call, timeout_s)
                left = answer_by - now
            else:
                left = deadline - now
            try:
                return await _until_cancelled(call.get(min(self.poll_slice_s, left)),
                                              cancel if stop is None else None)
            except _CancelAsked:
                continue  # the top of the loop asks the GPU side to stop
            except TimeoutError:
                continue
            except ApiError:
                raise
            except Exception as exc:
                raise ComfyUIJobFailed(f"the GPU function failed ({type(exc).__name__}: {exc}); "
                                       f"GPU call {call.call_id}") from exc

    async def _ask_cancel(self, call: PendingCall, job_key: str) -> bool:
        try:
            async with asyncio.timeout(CANCEL_TIMEOUT_S):
                await self.channel.request_cancel(job_key)
            return True
        except Exception as exc:
            log.warning("could not ask the GPU side of call %s to cancel: %s", call.call_id, exc)
            return False

    @staticmethod
    def _unconfirmed(why: str, call: PendingCall, timeout_s: float) -> JobCancelled | DeadlineExceeded:
        unknown = (f"the GPU side (GPU call {call.call_id}) went silent without saying how "
                   "ComfyUI ended it, so the call was cancelled; whether ComfyUI stopped the "
                   "job or finished it first is not known, and no output was kept")
        if why == "cancel":
            return JobCancelled(f"the job was cancelled; {unknown}", confirmed=False)
        return DeadlineExceeded(f"the job did not finish within the {timeout_s:.0f} s deadline; "
                                f"{unknown}", confirmed=False)

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
