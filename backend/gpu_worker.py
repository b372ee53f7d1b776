"""The GPU side, without Modal: start ComfyUI, run one filled graph through the
backend's ComfyUI client, hand back the outputs' bytes and timings. On a job's channel
(backend/modal_dispatch.py `JobChannel`) it publishes ComfyUI's progress and previews
and watches for the web tier's cancel, which it hands to ComfyUIClient.run: the answer
then says what ComfyUI confirmed.

backend/modal_app.py's GPU class is a thin shell around `GpuWorker` and
backend/deploy/comfyui.py's `ComfyUIProcess`; the same code runs on any GPU machine
without the `modal` package:

    python -m backend.gpu_worker --comfyui-dir /opt/ComfyUI --pipeline flux-dev \
        --prompt "a lighthouse at dusk" --repeat 3 --out /tmp/gpu-out

prints one JSON line per run (timings in ms, output sizes) and writes the outputs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backend.comfyui_client import ComfyUIClient, JobPreview, JobProgress
from backend.deploy.comfyui import ComfyUIProcess
from backend.deploy.layout import ContainerLayout, write_extra_model_paths
from backend.errors import ApiError, DeadlineExceeded
from backend.graph_job import GraphJob, error_to_wire, event_to_wire, result_to_wire
from backend.graph_runner import ComfyUIRunner
from backend.modal_dispatch import ALIVE, ALIVE_INTERVAL_S, JobChannel

log = logging.getLogger(__name__)

# Events go out in batches at most this often: ComfyUI sends an `executing` per node (a
# 10,000-node graph is 10,000 of them), and each batch is one write to the channel.
# Progress within a batch is coalesced to its latest value (all it says); previews are
# throttled already (comfyui_client.PREVIEW_INTERVAL_S), each a small JPEG.
EVENT_BATCH_S = 0.25
PUBLISH_TIMEOUT_S = 5.0
# One wait for a cancel request: a long poll, answered as soon as one is put.
CANCEL_WAIT_S = 2.0
CANCEL_RETRY_S = 0.5  # after a failed read


class JobEventPublisher:
    """The GPU side of a job's events: `sink` is the ComfyUI client's event sink (on the
    event loop, never blocks); a task publishes what it collected, in order, a batch at
    a time, and a liveness beat when nothing else went out for `alive_s` (the first at
    once: the job reached its container). A failed publish is logged, never fails the job."""

    def __init__(self, channel: JobChannel, job_key: str, *, batch_s: float = EVENT_BATCH_S,
                 alive_s: float = ALIVE_INTERVAL_S) -> None:
        self.channel = channel
        self.job_key = job_key
        self.batch_s = batch_s
        self.alive_s = alive_s
        self._pending: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    def sink(self, event: JobProgress | JobPreview) -> None:
        wire = event_to_wire(event)
        if wire["kind"] == "progress" and self._pending and self._pending[-1]["kind"] == "progress":
            self._pending[-1] = wire
        else:
            self._pending.append(wire)
        self._arrived.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._publish_until_closed())

    async def _publish_until_closed(self) -> None:
        beat = True
        while True:
            if beat and not self._pending:
                self._pending.append({"kind": ALIVE})
            await self._flush()
            if self._closed:
                await self._flush()  # what came while the last batch went out
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), self.alive_s)
                beat = False
            except TimeoutError:
                beat = True
            if not self._closed:
                await asyncio.sleep(self.batch_s)  # what comes meanwhile joins the batch

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await asyncio.wait_for(self.channel.publish(self.job_key, batch), PUBLISH_TIMEOUT_S)
        except Exception as exc:  # the web tier misses these; the job goes on
            log.warning("%d event(s) of job %s not published: %s", len(batch), self.job_key, exc)

    async def close(self) -> None:
        """Publish what is left, then stop (before the job's answer is returned, so that the
        web tier has every event before it hears the end)."""
        self._closed = True
        self._arrived.set()
        if self._task is not None:
            await self._task

    def abort(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def watch_for_cancel(channel: JobChannel, job_key: str, cancel: asyncio.Event) -> None:
    """Set `cancel` once the web tier asks for it on the job's channel; until cancelled."""
    while not cancel.is_set():
        try:
            if await channel.cancel_requested(job_key, CANCEL_WAIT_S):
                log.info("job %s: the web tier asked to cancel it", job_key)
                cancel.set()
        except Exception as exc:  # Modal's Queue: asked again shortly
            log.warning("could not read the cancel requests of job %s: %s", job_key, exc)
            await asyncio.sleep(CANCEL_RETRY_S)


class Heartbeat:
    """Tells the web tier, through a shared store (a modal.Dict on Modal), that this GPU
    container is up and whether it is busy, so that /health can say "warm" or "cold
    start" without waking a GPU. Beats every `interval_s` from a thread, and at once
    when busy changes; `stop` removes this container's entry."""

    def __init__(self, put: Callable[[str, dict[str, Any]], Any], remove: Callable[[str], Any],
                 key: str, interval_s: float) -> None:
        self.put = put
        self.remove = remove
        self.key = key
        self.interval_s = interval_s
        self.busy = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        try:
            self.put(self.key, {"at": time.time(), "busy": self.busy})
        except Exception as exc:  # a missed beat only makes /health say "cold" early
            log.warning("heartbeat not written: %s", exc)

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.beat()

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 1)
        try:
            self.remove(self.key)
        except Exception as exc:
            log.warning("heartbeat entry not removed (it goes stale instead): %s", exc)


class GpuWorker:
    """Runs one graph job (backend.graph_job wire format) on a local ComfyUI. One job at
    a time: ComfyUI runs one prompt at a time, so a second job here would only queue
    (on Modal the autoscaler gives it another container instead)."""

    def __init__(self, comfyui_url: str, *, models_dir: Path, lora_dir: Path,
                 channel: JobChannel | None = None) -> None:
        self.comfyui_url = comfyui_url
        self.models_dir = Path(models_dir)
        self.lora_dir = Path(lora_dir)
        self.channel = channel

    async def run(self, wire_job: dict[str, Any]) -> dict[str, Any]:
        """The job's result, or its API error, as a wire dict; never raises an ApiError.
        A cancel asked on the job's channel stops it in ComfyUI, and the answer is what
        ComfyUI confirmed. When this coroutine is cancelled (Modal's FunctionCall.cancel
        cancels an async method's task), ComfyUIClient.run stops the prompt in ComfyUI
        before the CancelledError goes on, so the next job does not queue behind it."""
        started = time.monotonic()
        job = GraphJob.from_wire(wire_job)
        cancel = asyncio.Event()
        publisher: JobEventPublisher | None = None
        watcher: asyncio.Task[None] | None = None
        if self.channel is not None and job.channel_key:
            publisher = JobEventPublisher(self.channel, job.channel_key)
            publisher.start()
            watcher = asyncio.create_task(watch_for_cancel(self.channel, job.channel_key, cancel))
        try:
            answer = await self._answer(job, started, cancel, publisher)
        except BaseException:
            if publisher is not None:
                publisher.abort()
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
        if publisher is not None:
            await publisher.close()
        return answer

    async def _answer(self, job: GraphJob, started: float, cancel: asyncio.Event,
                      publisher: JobEventPublisher | None) -> dict[str, Any]:
        client = ComfyUIClient(self.comfyui_url, models_dir=self.models_dir, lora_dir=self.lora_dir)
        try:
            timeout_s = job.deadline_at - time.time()
            if timeout_s <= 0:
                raise DeadlineExceeded(
                    f"the job reached a GPU {-timeout_s:.0f} s after its deadline (waiting for a "
                    "container to start); try again, or raise RYLA_DEADLINE_S")
            result = await ComfyUIRunner(client).run(
                job.graph, job.images, user_graph=job.user_graph, timeout_s=timeout_s,
                prompt_id=job.prompt_id or None,
                on_event=publisher.sink if publisher is not None else None, cancel=cancel)
            result.timings["gpu_ms"] = (time.monotonic() - started) * 1000
            return result_to_wire(result)
        except ApiError as exc:
            return error_to_wire(exc)
        finally:
            await client.aclose()

    def run_sync(self, wire_job: dict[str, Any]) -> dict[str, Any]:
        return asyncio.run(self.run(wire_job))


# -- a rehearsal on a GPU machine without Modal ----------------------------------------


def _graph_from_args(args: argparse.Namespace) -> dict[str, Any]:
    if args.graph:
        return json.loads(Path(args.graph).read_text())
    from workflows.registry import PIPELINES
    from workflows.render import render_workflow

    fields = {"prompt": args.prompt, "width": args.width, "height": args.height}
    if args.steps:
        fields["steps"] = args.steps
    request = PIPELINES[args.pipeline].request_model(**{k: v for k, v in fields.items() if v is not None})
    return render_workflow(args.pipeline, request, seed=args.seed)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m backend.gpu_worker",
        description="Run the Modal GPU function's body on this machine: start ComfyUI (or use "
                    "a running one), run a graph N times, print timings as JSON lines.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--comfyui-dir", help="start ComfyUI from this checkout, with the GPU "
                                             "container's command line (its extra_model_paths.yaml "
                                             "is written beside the checkout)")
    where.add_argument("--comfyui-url", help="use a ComfyUI that is already running")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--comfyui-arg", action="append", default=[],
                        help="extra argument for ComfyUI's main.py (repeatable)")
    parser.add_argument("--models-dir", default=None, help="default: <comfyui-dir>/models")
    parser.add_argument("--lora-dir", default=None, help="default: <models-dir>/loras")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--graph", help="a filled API-format graph (JSON file)")
    what.add_argument("--pipeline", choices=("flux-dev", "flux-schnell", "wan2"))
    parser.add_argument("--prompt", default="a lighthouse at dusk")
    parser.add_argument("--width", type=int)
    parser.add_argument("--height", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--deadline-s", type=float, default=600.0)
    parser.add_argument("--out", default=None, help="write each run's outputs here")
    return parser


def _start_comfyui(args: argparse.Namespace, lora_dir: Path) -> ComfyUIProcess:
    layout = ContainerLayout(comfyui_dir=Path(args.comfyui_dir), lora_dir=lora_dir, comfyui_port=args.port)
    write_extra_model_paths(layout)
    process = ComfyUIProcess.for_layout(layout, args.comfyui_arg)
    print(json.dumps({"comfyui_start_s": round(process.start(600.0), 2)}), flush=True)
    return process


def _run_once(worker: GpuWorker, job: GraphJob, run: int, out: Path | None) -> dict[str, Any]:
    """One run's JSON line; its outputs written under `out`."""
    wall = time.monotonic()
    answer = worker.run_sync(job.to_wire())
    line: dict[str, Any] = {"run": run, "wall_s": round(time.monotonic() - wall, 3)}
    if "error" in answer:
        line["error"] = answer["error"]
        return line
    line["timings"] = {k: round(v, 1) for k, v in answer["timings"].items()}
    line["output_bytes"] = [len(o["data"]) for o in answer["outputs"]]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for i, o in enumerate(answer["outputs"]):
            (out / f"run{run}-{i}-{o['filename']}").write_bytes(o["data"])
    return line


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    graph = _graph_from_args(args)
    url = args.comfyui_url or f"http://127.0.0.1:{args.port}"
    models_dir = Path(args.models_dir or (Path(args.comfyui_dir or ".") / "models"))
    lora_dir = Path(args.lora_dir or models_dir / "loras")
    process = _start_comfyui(args, lora_dir) if args.comfyui_dir else None
    worker = GpuWorker(url, models_dir=models_dir, lora_dir=lora_dir)
    failed = 0
    try:
        for run in range(args.repeat):
            job = GraphJob(graph, {}, user_graph=bool(args.graph),
                           deadline_at=time.time() + args.deadline_s, request_id=f"run{run}")
            line = _run_once(worker, job, run, Path(args.out) if args.out else None)
            failed += "error" in line
            print(json.dumps(line), flush=True)
    finally:
        if process is not None:
            process.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
