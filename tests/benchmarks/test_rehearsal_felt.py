"""The rehearsal's felt-latency phases (benchmarks/rehearsal/measure.py, felt-*) against
the backend over the ComfyUI test double, and what the rehearsal's POST /warm starts
(benchmarks/rehearsal/warm_start.py): the GPU container's warm-up prompt, once."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fastapi.testclient import TestClient

from backend.api import create_app
from backend.gpu_worker import GpuWorker
from backend.modal_dispatch import ModalGraphRunner
from backend.settings import Settings
from backend.snapshot_validation import SnapshotValidator
from backend.warmup import WARM_UP_REQUESTS
from benchmarks.rehearsal import measure
from benchmarks.rehearsal.stack import InProcessGpuFunction
from benchmarks.rehearsal.warm_start import RehearsalHeartbeats, WarmUpOnStart
from workflows.manifest import files_for

TOKEN = "rehearsal"

def _graph_size(graph: dict) -> tuple[int, int]:
    width = next(n["inputs"]["width"] for n in graph.values() if "width" in n["inputs"])
    steps = next(n["inputs"]["steps"] for n in graph.values() if "steps" in n["inputs"])
    return width, steps


def test_felt_phases_record_the_click_to_image_with_and_without_prewarm(
        backend_server, faces: Path, tmp_path: Path) -> None:
    rows = []
    for phase in ("felt-cold", "felt-prewarm"):
        out = tmp_path / f"{phase}.json"
        code = measure.main(["--backend-url", backend_server.url, "--out", str(out), "--gpu", "test double",
                             "--reference", str(faces / "obama_1.jpg"), "--phase", phase, "--typing-s", "0"])
        assert code == 0, out.read_text()
        rows += json.loads(out.read_text())
    assert [(r["prewarm"], r["route"], r["status"]) for r in rows] == [
        (False, "/flux-dev", 200), (True, "/flux-dev", 200)]
    assert all(r["felt_s"] == r["wall_s"] and r["typing_s"] == 0 for r in rows)
    assert rows[0]["warm_answer"] is None
    assert rows[1]["warm_answer"] == {"gpu": "warm", "ready_in_s": 0}  # ryla-backend: ComfyUI answers
    # the two clicks, Flux Dev 1024/28, and nothing else: a local /warm runs no prompt
    assert [_graph_size(job.graph) for job in backend_server.double.jobs] == [(1024, 28)] * 2


def test_the_rehearsals_warm_runs_the_warm_up_prompt_once(comfyui_double, tmp_path: Path) -> None:
    settings = Settings(api_token=TOKEN, models_dir=tmp_path / "models", lora_dir=tmp_path / "loras",
                        data_dir=tmp_path / "data")
    for entry in files_for("flux-dev"):  # the web tier checks names only
        path = settings.models_dir / entry.folder / entry.local_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    beats = RehearsalHeartbeats()
    worker = GpuWorker(comfyui_double.url, models_dir=tmp_path / "gpu-models", lora_dir=settings.lora_dir)
    gpu = WarmUpOnStart(InProcessGpuFunction(worker), comfyui_double.url, beats,
                        models_dir=tmp_path / "gpu-models", lora_dir=settings.lora_dir)
    runner = ModalGraphRunner(gpu, beats, SnapshotValidator(settings.models_dir, settings.lora_dir),
                              cold_start_s=40.0, heartbeat_stale_s=60.0)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(settings, runner)) as client:  # one event loop: the load runs on
        assert client.get("/health").json()["gpu"] == "cold"
        first = client.post("/warm", headers=auth)
        assert first.status_code == 202 and first.json() == {"gpu": "starting", "ready_in_s": 40}
        give_up = time.monotonic() + 60
        while client.get("/health").json()["gpu"] != "warm":  # the warm-up prompt ran
            assert time.monotonic() < give_up, "the warm-up never finished"
            time.sleep(0.05)
        assert client.post("/warm", headers=auth).json() == {"gpu": "warm", "ready_in_s": 0}
        generated = client.post("/flux-dev", headers=auth, json={"prompt": "a fox", "width": 256,
                                                                  "height": 256, "steps": 2})
        assert generated.status_code == 200, generated.text
    warm_up = WARM_UP_REQUESTS["flux-dev"][1]
    assert [_graph_size(job.graph) for job in comfyui_double.jobs] == [
        (warm_up.width, warm_up.steps), (256, 2)]  # one warm-up, then the click
