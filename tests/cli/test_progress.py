"""The progress display of `ryla`: drawn at a terminal, absent with --json or into pipes."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from tests.cli.conftest import Run
from tests.cli.processes import run_on_terminal
from ui.cli.progress import WAITING, JobDisplay, JobState

SMALL = ["--width", "256", "--height", "256", "--steps", "2"]
BAR = "━"


def progress(step: int, steps: int = 8, fraction: float = 0.5) -> dict:
    return {"fraction": fraction, "step": step, "steps": steps, "images_done": 0, "images_total": 1}


def test_a_queued_job_says_it_waits_for_the_gpu_then_counts_steps_with_an_eta() -> None:
    state = JobState("flux-dev")
    state.apply("status", {"status": "queued"}, now=0.0)
    assert state.detail() == WAITING
    state.apply("status", {"status": "running"}, now=1.0)
    for second, step in ((10.0, 1), (12.0, 2), (14.0, 3)):
        state.apply("progress", progress(step), now=second)
    # 2 s a step measured, 5 steps to go
    assert state.detail() == "step 3 of 8 · image 1 of 1 · ETA 0:10"
    state.apply("progress", {**progress(1), "fraction": 0.7}, now=15.0)  # a second sampler pass
    assert state.seconds_left() is None  # timed afresh: one step seen
    state.apply("done", {"status": "succeeded", "progress": {"fraction": 1.0, "step": None,
                                                             "steps": None, "images_done": 1,
                                                             "images_total": 1}}, now=16.0)
    assert state.detail() == "step 8 of 8 · images 1 of 1 · succeeded"


def test_the_bar_renders_steps_and_images_and_ends() -> None:
    screen = io.StringIO()
    clock = iter(float(t) for t in range(100))
    display = JobDisplay(True, total_images=2, clock=lambda: next(clock),
                         console=Console(file=screen, force_terminal=True, width=140))
    with display:
        for job in ("a", "b"):
            display.add(job, f"sheet image {job}")
            display.on_event(job, "status", {"status": "running"})
            for step in (1, 2, 3):
                display.on_event(job, "progress", progress(step, steps=3, fraction=step / 4))
            display.on_event(job, "done", {"status": "succeeded",
                                           "progress": {"fraction": 1.0, "images_done": 1,
                                                        "images_total": 1}})
            display.finished(job)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    last = text.rsplit("\r", 1)[-1]
    assert "images 2 of 2" in last and "100%" in last and BAR in last
    assert text.endswith("\n")  # the display ended, leaving its last state on screen


def test_a_generation_on_a_terminal_shows_the_bar_and_its_result(backend_server_session,
                                                                 tmp_path: Path) -> None:
    code, screen = run_on_terminal(["flux", "--backend-url", backend_server_session.url,
                                    "--prompt", "a lighthouse", *SMALL], tmp_path)
    assert code == 0, screen
    bar_lines = [line for line in re.split(r"[\r\n]+", screen) if BAR in line]
    assert bar_lines, screen
    assert "flux: a lighthouse" in bar_lines[-1] and "100%" in bar_lines[-1]
    assert "images 1 of 1" in bar_lines[-1] and "succeeded" in bar_lines[-1]
    saved = re.search(r"saved (outputs/flux-\S+\.jpg)", screen)
    assert saved and (tmp_path / saved.group(1)).is_file()
    assert screen.index(bar_lines[-1]) < screen.index("saved ")  # the bar ended first


def test_no_bar_with_json_even_on_a_terminal(backend_server_session, tmp_path: Path) -> None:
    code, screen = run_on_terminal(["flux", "--backend-url", backend_server_session.url,
                                    "--prompt", "a lighthouse", *SMALL, "--json"], tmp_path)
    assert code == 0, screen
    assert BAR not in screen and WAITING not in screen
    assert json.loads(screen)["route"] == "/flux"  # nothing but the JSON


def test_no_bar_into_pipes(ryla: Callable[..., Run], backend_server_session) -> None:
    result = ryla("flux", "--backend-url", backend_server_session.url, "--prompt", "x", *SMALL)
    assert result.code == 0, result.err
    assert result.err == ""
    assert [line.split()[0] for line in result.out.splitlines()] == ["saved", "seed"]
