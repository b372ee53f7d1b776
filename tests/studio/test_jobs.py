"""The studio's jobs without a browser: a run cut off by a studio that stopped is settled
from the backend (its images fetched, said interrupted), the progress line's ETA and the
GPU line from what the backend said, the prewarm settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from ui.client import RylaClient
from ui.studio.action import Action, JobState
from ui.studio.history import History
from ui.studio.history_tab import HistoryTab
from ui.studio.warm import GpuState, Prewarm, PrewarmSettings
from workflows.request_models import FluxSchnellRequest


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_run_left_running_by_a_stopped_studio_is_settled_from_the_backend(
        backend_server, tmp_path: Path) -> None:
    client = RylaClient(backend_server.url)
    history = History(tmp_path)
    item = history.create("flux", {"prompt": "a lighthouse"})
    job = client.submit(FluxSchnellRequest(prompt="a lighthouse", width=512, height=512))
    item.state, item.jobs = "running", [{"id": job["id"], "status": "queued", "file": None}]
    history.update(item)  # as a studio leaves it when it stops mid-run
    client.wait(job["id"])
    rows, _ = HistoryTab(history, client).list_history()
    settled = history.get(item.id)
    assert settled.state == "interrupted" and len(settled.files) == 1
    assert settled.jobs[0]["status"] == "succeeded"
    assert (settled.folder / settled.files[0]).read_bytes() == client.output(job["id"], 0)
    assert rows[0][-1].startswith("interrupted")


def test_a_run_this_studio_follows_is_left_to_its_worker(backend_server, tmp_path: Path) -> None:
    client = RylaClient(backend_server.url)
    history = History(tmp_path)
    item = history.create("flux", {"prompt": "x"})
    item.state, item.jobs = "running", [{"id": "unknown-job", "status": "queued", "file": None}]
    history.update(item)
    history.followed.add(item.id)
    rows, _ = HistoryTab(history, client).list_history()
    assert history.get(item.id).state == "running" and rows[0][-1].startswith("running")


def test_eta_from_measured_steps_and_gpu_starting_while_queued() -> None:
    clock = Clock()
    gpu = GpuState(clock)
    gpu.heard({"gpu": "starting", "ready_in_s": 50})
    action = Action(RylaClient("http://127.0.0.1:9"), total=2, gpu=gpu, clock=clock)
    first, second = JobState("a", 1), JobState("b", 2)
    action.jobs = [first, second]
    clock.now += 20
    assert "GPU starting, ~30 s" in action.view()
    action._heard(first, "status", {"status": "running"})
    for step in (1, 2, 3):  # 0.5 s a step
        action._heard(first, "progress", {"fraction": step / 10, "step": step, "steps": 10})
        clock.now += 0.5
    line = action.view()
    # 7 steps left of the first image and 10 of the second, at 0.5 s each
    assert "Image 1 of 2 · step 3 of 10 · ETA ~9 s" in line


def test_gpu_line_follows_warm_then_health() -> None:
    clock = Clock()
    gpu = GpuState(clock)
    assert gpu.header_html() == ""
    gpu.heard({"gpu": "starting", "ready_in_s": 56})
    clock.now += 16
    assert "GPU starting, ready in ~40 s" in gpu.header_html()
    gpu.heard({"status": "ok", "gpu": "starting"})  # /health: no ready_in_s, the count goes on
    assert "ready in ~40 s" in gpu.header_html()
    gpu.heard({"status": "ok", "gpu": "warm"})
    assert "GPU ready" in gpu.header_html()


def test_prewarm_asks_once_per_window(backend_server) -> None:
    clock = Clock()
    warm = Prewarm(RylaClient(backend_server.url), GpuState(clock),
                   PrewarmSettings(window_s=300), clock=clock)
    line, asked = warm.warm(None)
    assert asked == clock.now and "GPU ready" in line  # the double answers: warm
    clock.now += 299
    assert warm.warm(asked)[1] == asked  # within the window: not asked again
    clock.now += 2
    assert warm.warm(asked)[1] == clock.now


@pytest.mark.parametrize("env, enabled, window", [
    ({}, True, 300.0),
    ({"RYLA_STUDIO_PREWARM": "0"}, False, 300.0),
    ({"RYLA_MODAL_SCALEDOWN_S": "120"}, True, 120.0),
    ({"RYLA_MODAL_SCALEDOWN_S": "120", "RYLA_STUDIO_PREWARM_WINDOW_S": "60"}, True, 60.0),
])
def test_prewarm_settings_from_the_environment(env: dict, enabled: bool, window: float) -> None:
    settings = PrewarmSettings.from_env(env)
    assert (settings.enabled, settings.window_s) == (enabled, window)


def test_a_prewarm_window_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(SystemExit, match="seconds"):
        PrewarmSettings.from_env({"RYLA_STUDIO_PREWARM_WINDOW_S": "five minutes"})
