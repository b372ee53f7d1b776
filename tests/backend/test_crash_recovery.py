"""A SIGKILL of the backend mid-job loses no finished image and leaves no record
queued or running after a restart (issue 13). Everything here is a real process: the ComfyUI
double (`python -m tests.comfyui_double`), and `ryla-backend` (`python -m backend.server`),
killed with SIGKILL while ComfyUI works on its job and started again on the same data dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
SETTLE_S = 30.0
STEP_DELAY_S = 0.05  # per node and sampler step of the double: jobs take seconds
DOUBLE_DIR = "comfyui"
NOT_ENDED = ("queued", "running")  # under tmp_path: the double's folders, its models/ included


class Process:
    def __init__(self, args: list[str], log: Path) -> None:
        env = {k: v for k, v in os.environ.items()
               if k not in ("RYLA_API_TOKEN", "POSTHOG_API_KEY", "RYLA_DATA_DIR")}
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT)

    def wait_http(self, url: str) -> None:
        give_up = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.proc.poll() is None, f"exited early; log:\n{self.log.read_text()[-3000:]}"
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet: ask again
            assert time.monotonic() < give_up, f"{url} did not answer; log:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)


@pytest.fixture
def double_process(tmp_path: Path) -> Iterator[tuple[str, Process]]:
    port, folder = free_port(), tmp_path / DOUBLE_DIR
    double = Process(["-m", "tests.comfyui_double", "--port", str(port), "--dir", str(folder),
                      "--step-delay", str(STEP_DELAY_S)], tmp_path / "double.log")
    url = f"http://127.0.0.1:{port}"
    try:
        double.wait_http(f"{url}/system_stats")
        yield url, double
    finally:
        double.stop()


def start_backend(comfyui_url: str, tmp_path: Path) -> tuple[Process, str]:
    port = free_port()
    backend = Process(["-m", "backend.server", "--port", str(port), "--comfyui-url", comfyui_url,
                       "--data-dir", str(tmp_path / "data"),
                       # ComfyUI's models folder, shared as on Modal: the backend looks there
                       # for the files ComfyUI does not list (antelopev2's .onnx)
                       "--models-dir", str(tmp_path / DOUBLE_DIR / "models"),
                       "--log-level", "warning"], tmp_path / "backend.log")
    url = f"http://127.0.0.1:{port}"
    try:
        backend.wait_http(f"{url}/health")
    except BaseException:
        backend.stop()
        raise
    return backend, url


def post_and_forget(url: str, body: dict) -> None:
    """The request whose backend gets killed: its connection just drops."""
    def call() -> None:
        try:
            httpx.post(url, json=body, timeout=SETTLE_S)
        except httpx.HTTPError:
            pass  # expected: the backend is killed under it

    threading.Thread(target=call, daemon=True).start()


def running_prompt(comfyui_url: str) -> str:
    give_up = time.monotonic() + SETTLE_S
    while True:
        running = httpx.get(f"{comfyui_url}/queue", timeout=5).json()["queue_running"]
        if running:
            return running[0][1]
        assert time.monotonic() < give_up, "the job never started in ComfyUI"
        time.sleep(0.02)


def job_records(tmp_path: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (tmp_path / "data" / "jobs").glob("*.json")}


def wait_settled(tmp_path: Path, request_id: str) -> dict:
    give_up = time.monotonic() + SETTLE_S
    while (record := job_records(tmp_path)[request_id])["status"] in NOT_ENDED:
        assert time.monotonic() < give_up, f"record {request_id} is still running: {record}"
        time.sleep(0.1)
    return record


def comfyui_output(comfyui_url: str, prompt_id: str) -> bytes:
    entry = httpx.get(f"{comfyui_url}/history/{prompt_id}", timeout=5).json()[prompt_id]
    (image,) = [i for node in entry["outputs"].values() for i in node.get("images", [])]
    return httpx.get(f"{comfyui_url}/view", params=image, timeout=5).content


def kill_mid_job(comfyui_url: str, tmp_path: Path, seed: int, steps: int) -> tuple[str, str]:
    """Start a backend, send a job, SIGKILL the backend while ComfyUI runs the job.
    Returns (request id, prompt id) from the record the killed backend left."""
    backend, url = start_backend(comfyui_url, tmp_path)
    try:
        post_and_forget(f"{url}/flux-dev", {"prompt": "crash", "seed": seed, "steps": steps,
                                            "width": 256, "height": 256, "format": "png"})
        prompt_id = running_prompt(comfyui_url)
    finally:
        backend.stop(signal.SIGKILL)  # the crash; also no process left behind on a failure
    (request_id, record), = [(k, r) for k, r in job_records(tmp_path).items() if r["seed"] == seed]
    assert record["status"] in NOT_ENDED  # running once the backend heard ComfyUI start it
    assert record["prompt_id"] == prompt_id  # recorded before queueing, as ComfyUI knows it
    return request_id, prompt_id


def test_job_finished_while_backend_was_dead_is_saved_on_restart(double_process, tmp_path):
    comfyui_url, _ = double_process
    request_id, prompt_id = kill_mid_job(comfyui_url, tmp_path, seed=11, steps=10)
    # ComfyUI finishes the job with nobody listening
    give_up = time.monotonic() + SETTLE_S
    while prompt_id not in httpx.get(f"{comfyui_url}/history/{prompt_id}", timeout=5).json():
        assert time.monotonic() < give_up
        time.sleep(0.1)
    # two records a crash could also leave: one never queued, one from an older backend
    jobs = tmp_path / "data" / "jobs"
    for name, extra in [("never-queued", {"prompt_id": str(uuid.uuid4())}), ("no-prompt-id", {})]:
        (jobs / f"{name}.json").write_text(json.dumps(
            {"request_id": name, "endpoint": "/flux-dev", "status": "running", "outputs": [],
             "request": {"prompt": "x"}, **extra}))
    backend, _ = start_backend(comfyui_url, tmp_path)
    try:
        record = wait_settled(tmp_path, request_id)
        assert record["status"] == "succeeded", record
        (saved,) = record["outputs"]
        assert Path(saved).read_bytes() == comfyui_output(comfyui_url, prompt_id)
        for name in ("never-queued", "no-prompt-id"):
            lost = wait_settled(tmp_path, name)
            assert lost["status"] == "failed" and lost["error"]["code"] == "job_lost", lost
            assert "prompt" in lost["error"]["message"]
    finally:
        backend.stop()


def test_job_still_running_at_restart_is_followed_and_saved(double_process, tmp_path):
    comfyui_url, double = double_process
    request_id, prompt_id = kill_mid_job(comfyui_url, tmp_path, seed=12, steps=100)
    # ComfyUI is paused while the backend restarts, however long that takes on a loaded
    # machine, so the job is still running when the new backend first asks about it
    double.proc.send_signal(signal.SIGSTOP)
    try:
        backend, _ = start_backend(comfyui_url, tmp_path)
    finally:
        double.proc.send_signal(signal.SIGCONT)
    try:
        running = httpx.get(f"{comfyui_url}/queue", timeout=5).json()["queue_running"]
        assert [item[1] for item in running] == [prompt_id], "the job ended before the restart"
        assert job_records(tmp_path)[request_id]["status"] in NOT_ENDED
        record = wait_settled(tmp_path, request_id)
        assert record["status"] == "succeeded", record
        assert Path(record["outputs"][0]).read_bytes() == comfyui_output(comfyui_url, prompt_id)
    finally:
        backend.stop()
