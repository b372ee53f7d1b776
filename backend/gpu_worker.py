"""The GPU side, without Modal: start ComfyUI, run one filled graph through the
backend's ComfyUI client, hand back the outputs' bytes and timings.

backend/modal_app.py's GPU class is a thin shell around `ComfyUIProcess` and
`GpuWorker`; the same code runs on any GPU machine without the `modal` package:

    python -m backend.gpu_worker --comfyui-dir /opt/ComfyUI --pipeline flux-dev \
        --prompt "a lighthouse at dusk" --repeat 3 --out /tmp/gpu-out

prints one JSON line per run (timings in ms, output sizes) and writes the outputs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backend.comfyui_client import ComfyUIClient
from backend.errors import ApiError, DeadlineExceeded
from backend.graph_job import GraphJob, error_to_wire, result_to_wire
from backend.graph_runner import ComfyUIRunner

log = logging.getLogger(__name__)


def comfyui_command(comfyui_dir: str | Path, port: int, *, extra_model_paths: str | None = None,
                    extra_args: Sequence[str] = ()) -> list[str]:
    """ComfyUI's server on loopback only: nothing but this process talks to it."""
    # this interpreter: ComfyUI's requirements are installed beside the backend's
    command = [sys.executable, f"{comfyui_dir}/main.py", "--listen", "127.0.0.1", "--port", str(port),
               "--disable-auto-launch"]
    if extra_model_paths:
        command += ["--extra-model-paths-config", extra_model_paths]
    return command + list(extra_args)


def wait_for_comfyui(proc: subprocess.Popen[bytes], url: str, timeout_s: float) -> None:
    """Return once ComfyUI answers GET /system_stats; raise if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ComfyUI exited with code {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/system_stats", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise TimeoutError(f"ComfyUI did not answer on {url} within {timeout_s:.0f} s")


class ComfyUIProcess:
    """A ComfyUI server started as a child process."""

    def __init__(self, command: Sequence[str], cwd: str | Path, url: str) -> None:
        self.command = list(command)
        self.cwd = str(cwd)
        self.url = url.rstrip("/")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float) -> float:
        """Start ComfyUI and wait until it answers; returns the seconds that took."""
        started = time.monotonic()
        self.proc = subprocess.Popen(self.command, cwd=self.cwd)
        self.wait_ready(ready_timeout_s)
        return time.monotonic() - started

    def wait_ready(self, timeout_s: float) -> None:
        if self.proc is None:
            raise RuntimeError("ComfyUI was not started")
        wait_for_comfyui(self.proc, self.url, timeout_s)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


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

    def __init__(self, comfyui_url: str, *, models_dir: Path, lora_dir: Path) -> None:
        self.comfyui_url = comfyui_url
        self.models_dir = Path(models_dir)
        self.lora_dir = Path(lora_dir)

    async def run(self, wire_job: dict[str, Any]) -> dict[str, Any]:
        """The job's result, or its API error, as a wire dict; never raises an ApiError."""
        started = time.monotonic()
        job = GraphJob.from_wire(wire_job)
        client = ComfyUIClient(self.comfyui_url, models_dir=self.models_dir, lora_dir=self.lora_dir)
        try:
            timeout_s = job.deadline_at - time.time()
            if timeout_s <= 0:
                raise DeadlineExceeded(
                    f"the job reached a GPU {-timeout_s:.0f} s after its deadline (waiting for a "
                    "container to start); try again, or raise RYLA_DEADLINE_S")
            result = await ComfyUIRunner(client).run(job.graph, job.images,
                                                     user_graph=job.user_graph, timeout_s=timeout_s,
                                                     prompt_id=job.prompt_id or None)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.gpu_worker",
        description="Run the Modal GPU function's body on this machine: start ComfyUI (or use "
                    "a running one), run a graph N times, print timings as JSON lines.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--comfyui-dir", help="start ComfyUI from this checkout")
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
    args = parser.parse_args(argv)

    graph = _graph_from_args(args)
    process = None
    url = args.comfyui_url or f"http://127.0.0.1:{args.port}"
    models_dir = Path(args.models_dir or (Path(args.comfyui_dir or ".") / "models"))
    lora_dir = Path(args.lora_dir or models_dir / "loras")
    if args.comfyui_dir:
        process = ComfyUIProcess(comfyui_command(args.comfyui_dir, args.port,
                                                 extra_args=args.comfyui_arg),
                                 cwd=args.comfyui_dir, url=url)
        print(json.dumps({"comfyui_start_s": round(process.start(600.0), 2)}), flush=True)
    worker = GpuWorker(url, models_dir=models_dir, lora_dir=lora_dir)
    failed = 0
    try:
        for run in range(args.repeat):
            job = GraphJob(graph, {}, user_graph=bool(args.graph),
                           deadline_at=time.time() + args.deadline_s, request_id=f"run{run}")
            wall = time.monotonic()
            answer = worker.run_sync(job.to_wire())
            line: dict[str, Any] = {"run": run, "wall_s": round(time.monotonic() - wall, 3)}
            if "error" in answer:
                failed += 1
                line["error"] = answer["error"]
            else:
                line["timings"] = {k: round(v, 1) for k, v in answer["timings"].items()}
                line["output_bytes"] = [len(o["data"]) for o in answer["outputs"]]
                if args.out:
                    out = Path(args.out)
                    out.mkdir(parents=True, exist_ok=True)
                    for i, o in enumerate(answer["outputs"]):
                        (out / f"run{run}-{i}-{o['filename']}").write_bytes(o["data"])
            print(json.dumps(line), flush=True)
    finally:
        if process is not None:
            process.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
