"""Progress and stopping, checked against a real upstream ComfyUI (issue 22) with graphs
that really execute on its CPU without model weights: EmptyImage, ImageBlur,
ImageAddNoise, SaveImage, SaveAnimatedPNG.

Needs RYLA_REAL_COMFYUI_URL (a ComfyUI started with tools/upstream-comfyui.sh).
Each graph gets a fresh colour and seed, so ComfyUI's cache of earlier runs does not skip
its nodes. Tests wait on ComfyUI's own messages, never on time.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import requests

from backend.comfyui_client import ComfyUIClient, JobPreview, JobProgress
from backend.errors import DeadlineExceeded, JobCancelled
from tests.builders import BLUR_CHAIN_SAVE as SAVE
from tests.builders import blur_chain
from tests.contract.conftest import REAL_COMFYUI_SCRIPT, REAL_URL_ENV

pytestmark = pytest.mark.real_comfyui

GUARD_S = 300.0  # a guard against a stuck ComfyUI, never a measurement


@pytest.fixture
def real_url() -> str:
    url = os.environ.get(REAL_URL_ENV, "").rstrip("/")
    if not url:
        pytest.skip(f"no real ComfyUI: set {REAL_URL_ENV} to one started with "
                    f"{REAL_COMFYUI_SCRIPT}")
    return url


def run_with_client(url: str, tmp_path: Path,
                    body: Callable[[ComfyUIClient], Awaitable[None]]) -> None:
    async def go() -> None:
        client = ComfyUIClient(url, models_dir=tmp_path, lora_dir=tmp_path)
        try:
            await body(client)
        finally:
            await client.aclose()

    asyncio.run(go())


def fresh_color() -> int:
    """A colour no earlier run used: ComfyUI's cache would skip nodes it ran before."""
    return secrets.randbelow(1 << 24)


def slow_save(prefix: str) -> dict:
    """A last node ComfyUI cannot interrupt, taking seconds on a CPU: SaveAnimatedPNG
    compressing a batch of noisy frames at level 9."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {
            "width": 512, "height": 512, "batch_size": 8, "color": fresh_color()}},
        "2": {"class_type": "ImageAddNoise", "inputs": {
            "image": ["1", 0], "seed": secrets.randbelow(1 << 32), "strength": 0.5}},
        SAVE: {"class_type": "SaveAnimatedPNG", "inputs": {
            "images": ["2", 0], "filename_prefix": prefix, "fps": 6.0, "compress_level": 9}},
    }


def history_entry(url: str, prompt_id: str) -> dict:
    return requests.get(f"{url}/history/{prompt_id}", timeout=30).json()[prompt_id]


def prompt_of(url: str, prefix: str) -> str:
    """The prompt id of the newest history entry whose graph saves under `prefix`."""
    history = requests.get(f"{url}/history", params={"max_items": 20}, timeout=30).json()
    return next(prompt_id for prompt_id, entry in reversed(list(history.items()))
                if entry["prompt"][2].get(SAVE, {}).get("inputs", {}).get("filename_prefix")
                == prefix)


def saved_file_exists(url: str, prefix: str, extension: str) -> bool:
    response = requests.get(f"{url}/view", timeout=30, params={
        "filename": f"{prefix}_00001_.{extension}", "type": "output"})
    return response.status_code == 200


def assert_ending_matches_history(url: str, prefix: str, outcome: dict) -> None:
    """`outcome` holds the run's "result" or the error it "stopped" with: outputs returned
    when ComfyUI wrote them, a confirmed stop only when nothing was written."""
    on_disk = saved_file_exists(url, prefix, "png")
    entry = history_entry(url, prompt_of(url, prefix))
    if "result" in outcome:
        [output] = outcome["result"].outputs
        assert output.filename == f"{prefix}_00001_.png"
        assert on_disk and entry["status"]["status_str"] == "success"
    else:
        assert outcome["stopped"].confirmed
        assert not on_disk and entry["outputs"] == {}


def test_model_free_graph_shows_rising_progress(real_url: str, tmp_path: Path) -> None:
    events: list[JobProgress | JobPreview] = []

    async def body(client: ComfyUIClient) -> None:
        result = await client.run(blur_chain(5, 256, f"ryla-progress-{secrets.token_hex(4)}", fresh_color()),
                                  GUARD_S, on_event=events.append)
        assert len(result.outputs) == 1 and not result.stopped_late

    run_with_client(real_url, tmp_path, body)
    fractions = [e.fraction for e in events if isinstance(e, JobProgress)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # ComfyUI says `executing` for each of the seven nodes: the fraction steps through them
    assert len({f for f in fractions if 0 < f < 1}) >= 5
    nodes = [e.node for e in events if isinstance(e, JobProgress) and e.node is not None]
    assert list(dict.fromkeys(nodes)) == ["1", "2", "3", "4", "5", "6", SAVE]


def test_cancel_in_the_middle_leaves_no_output(real_url: str, tmp_path: Path) -> None:
    prefix = f"ryla-cancel-{secrets.token_hex(4)}"
    cancel = asyncio.Event()

    def stop_at_the_fourth_node(event: JobProgress | JobPreview) -> None:
        if isinstance(event, JobProgress) and event.node == "4":
            cancel.set()

    async def body(client: ComfyUIClient) -> None:
        with pytest.raises(JobCancelled) as stopped:
            # 1024 px blurs take a moment each on a CPU: the save is far off
            await client.run(blur_chain(10, 1024, prefix, fresh_color()), GUARD_S,
                             on_event=stop_at_the_fourth_node, cancel=cancel)
        assert stopped.value.confirmed and "interrupted at node" in stopped.value.message

    run_with_client(real_url, tmp_path, body)
    entry = history_entry(real_url, prompt_of(real_url, prefix))
    assert entry["status"]["status_str"] == "error"
    assert "execution_interrupted" in [m[0] for m in entry["status"]["messages"]]
    assert entry["outputs"] == {}
    assert not saved_file_exists(real_url, prefix, "png")


def test_an_uninterruptible_last_node_never_ends_cancelled_with_its_output_on_disk(
        real_url: str, tmp_path: Path) -> None:
    """Cancelled as the slow save starts: ComfyUI either stops before the save checks for
    an interrupt (cancelled, nothing written) or, as it usually does, finishes the save
    (succeeded, the outputs kept). Never "cancelled" with a file on disk."""
    prefix = f"ryla-late-{secrets.token_hex(4)}"
    cancel = asyncio.Event()
    outcome: dict = {}

    def stop_when_the_save_starts(event: JobProgress | JobPreview) -> None:
        if isinstance(event, JobProgress) and event.node == SAVE:
            cancel.set()

    async def body(client: ComfyUIClient) -> None:
        try:
            result = await client.run(slow_save(prefix), GUARD_S,
                                      on_event=stop_when_the_save_starts, cancel=cancel)
            outcome["result"] = result
        except JobCancelled as stopped:
            outcome["stopped"] = stopped

    run_with_client(real_url, tmp_path, body)
    assert_ending_matches_history(real_url, prefix, outcome)
    if "result" in outcome:
        assert outcome["result"].stopped_late


def test_a_deadline_during_the_slow_save_keeps_what_comfyui_wrote(real_url: str,
                                                                  tmp_path: Path) -> None:
    """The issue's case: a deadline that passes while the save runs. Whenever it passes,
    the ending matches ComfyUI's history: outputs returned when ComfyUI wrote them,
    deadline_exceeded (confirmed) only when nothing was written."""
    prefix = f"ryla-deadline-{secrets.token_hex(4)}"
    outcome: dict = {}

    async def body(client: ComfyUIClient) -> None:
        try:
            outcome["result"] = await client.run(slow_save(prefix), 3.0)
        except DeadlineExceeded as stopped:
            outcome["stopped"] = stopped

    run_with_client(real_url, tmp_path, body)
    assert_ending_matches_history(real_url, prefix, outcome)
