"""backend/gpu_worker.py, the Modal GPU method's body, without Modal: its rehearsal
command against the ComfyUI test double, and the heartbeat the web tier reads."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from backend.deploy.comfyui import ComfyUIProcess, comfyui_command
from backend.deploy.layout import ContainerLayout
from backend.gpu_worker import Heartbeat
from tests.comfyui_double import ComfyUIDouble

ROOT = Path(__file__).resolve().parents[2]

# The rehearsal runs on a GPU machine that has no `modal` package: make importing it fail.
NO_MODAL = "import sys; sys.modules['modal'] = None; import runpy; sys.argv[0] = 'gpu_worker'; " \
           "runpy.run_module('backend.gpu_worker', run_name='__main__')"


def test_the_rehearsal_command_runs_a_graph_without_modal(comfyui_double: ComfyUIDouble,
                                                          tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", NO_MODAL, "--comfyui-url", comfyui_double.url,
         "--pipeline", "flux-schnell", "--width", "256", "--height", "256", "--steps", "2",
         "--repeat", "2", "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    runs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["run"] for r in runs] == [0, 1]
    for run in runs:
        assert {"upload_ms", "queue_ms", "comfyui_ms", "gpu_ms"} <= set(run["timings"])
        assert run["output_bytes"][0] > 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == 2 and written[0].startswith("run0-0-")
    assert len(comfyui_double.jobs) == 2
    sizes = {(n["inputs"]["width"], n["inputs"]["height"]) for n in comfyui_double.jobs[0].graph.values()
             if "width" in n.get("inputs", {})}
    assert sizes == {(256, 256)}


def test_the_rehearsal_command_reports_a_failed_job_and_exits_1(comfyui_double: ComfyUIDouble) -> None:
    comfyui_double.fail_next("out of memory")
    out = subprocess.run(
        [sys.executable, "-c", NO_MODAL, "--comfyui-url", comfyui_double.url,
         "--pipeline", "flux-schnell", "--width", "256", "--height", "256", "--steps", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    [run] = [json.loads(line) for line in out.stdout.splitlines()]
    assert run["error"]["code"] == "comfyui_job_failed" and "out of memory" in run["error"]["message"]


def test_comfyui_process_reports_an_early_exit(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("import sys; sys.exit(3)\n")
    command = comfyui_command(ContainerLayout(comfyui_dir=tmp_path, comfyui_port=1))
    assert command[1:4] == [f"{tmp_path}/main.py", "--listen", "127.0.0.1"]
    process = ComfyUIProcess(command, cwd=tmp_path, url="http://127.0.0.1:1")
    try:
        process.start(10.0)
    except RuntimeError as exc:
        assert "exited with code 3" in str(exc)
    else:
        raise AssertionError("a ComfyUI that exits must not count as started")


def test_heartbeat_beats_marks_busy_and_removes_itself() -> None:
    store: dict[str, dict] = {}
    written = threading.Event()

    def put(key: str, value: dict) -> None:
        store[key] = value
        written.set()

    beat = Heartbeat(put, store.pop, "container-1", interval_s=0.05)
    beat.start()
    assert store["container-1"]["busy"] is False
    first = store["container-1"]["at"]
    written.clear()
    assert written.wait(2) and store["container-1"]["at"] >= first  # the thread keeps beating
    beat.set_busy(True)
    assert store["container-1"]["busy"] is True
    beat.set_busy(False)
    assert store["container-1"]["busy"] is False and store["container-1"]["at"] <= time.time()
    beat.stop()
    assert "container-1" not in store


def test_heartbeat_survives_a_store_that_fails() -> None:
    def broken(key: str, value: object = None) -> None:
        raise ConnectionError("dict unreachable")

    beat = Heartbeat(broken, broken, "c", interval_s=0.05)
    beat.start()
    beat.set_busy(True)  # a missed beat is logged, the job goes on
    beat.stop()
