"""The GPU rehearsal's driver (benchmarks/rehearsal/measure.py), run against the backend
over the ComfyUI test double: every route is requested through ryla's own client and
each request becomes a result record with the fields the results files promise."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.rehearsal import measure
from workflows.registry import ROUTES
from tests.builders import safetensors_bytes

REQUIRED = {"route", "method", "status", "wall_s", "gpu", "comfyui_ready_s", "first_image_s",
            "switch", "mode"}


def test_every_route_is_requested_and_recorded(backend_server, faces: Path, tmp_path: Path) -> None:
    loras = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(safetensors_bytes())
        loras.append(path)
    out = tmp_path / "results.json"
    code = measure.main(["--backend-url", backend_server.url, "--out", str(out), "--gpu", "test double",
                         "--comfyui-ready-s", "1.5", "--reference", str(faces / "obama_1.jpg"),
                         "--lora", str(loras[0]), "--lora", str(loras[1])])
    rows = json.loads(out.read_text())
    assert code == 0, [r for r in rows if r["status"] != 200]
    per_request = [r for r in rows if "requests" not in r]
    assert all(REQUIRED <= set(r) for r in per_request)
    assert {(r["route"], r["method"]) for r in per_request} == {
        ("/flux-dev", None), ("/flux", None), ("/flux-lora", None), ("/flux-instantid", "pulid"),
        ("/flux-instantid", "instantid"), ("/workflow", None), ("/wan2", None)} | (
        {("/z-image", None)} if "/z-image" in ROUTES else set())
    assert all(r["status"] == 200 and r["output_bytes"][0] > 0 for r in per_request)
    assert rows[0]["first_image_s"] == rows[0]["wall_s"]
    assert next(r for r in per_request if r["route"] == "/wan2")["content_type"].startswith("image/webp")
    # the mixed sequence marks each change of model family as a switch
    mixed = [r for r in per_request if r["label"].startswith("mixed first")]
    assert [r["switch"] for r in mixed][1:] == ["schnell", "lora:rehearsal-a", "lora:rehearsal-b", "pulid", "dev"]


def test_fast_mode_phase_asks_for_fast_mode_through_the_routes(backend_server, faces: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "fast.json"
    code = measure.main(["--backend-url", backend_server.url, "--out", str(out), "--gpu", "test double",
                         "--reference", str(faces / "obama_1.jpg"), "--phase", "fast-mode"])
    rows = json.loads(out.read_text())
    assert code == 0, [r for r in rows if r["status"] != 200]
    fast_labels = [r["label"] for r in rows if r["label"].startswith("flux-dev fast")]
    assert len(fast_labels) == 6 and {r["route"] for r in rows} == {"/flux-dev", "/flux"}
    compiled = [job for job in backend_server.double.jobs
                if any(n["class_type"] == "TorchCompileModel" for n in job.graph.values())]
    assert len(compiled) == len(fast_labels)
    assert [r["switch"] for r in rows].count("dev-fast") == 3  # into fast mode, back, after Schnell
    assert {r["label"] for r in rows if r["request_mode"] == "fast"} == set(fast_labels)


def test_summary_names_the_card_and_every_request(tmp_path: Path) -> None:
    from benchmarks.rehearsal.summarize import summarize

    rows = [{"label": "flux-dev first (cold)", "route": "/flux-dev", "method": None, "status": 200,
             "wall_s": 38.07, "gpu": "NVIDIA H100 80GB HBM3", "mode": "default", "switch": None,
             "comfyui_ready_s": 26.1, "first_image_s": 38.07},
            {"label": "flux first", "route": "/flux", "method": None, "status": 503, "wall_s": 0.3,
             "gpu": "NVIDIA H100 80GB HBM3", "mode": "default", "switch": "schnell"}]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(rows))
    text = summarize(path)
    assert "NVIDIA H100 80GB HBM3" in text and "comfyui_ready_s 26.1" in text
    assert "| flux-dev first (cold) | /flux-dev |  | 200 | 38.07 |  |" in text
    assert "| flux first | /flux |  | 503 | 0.30 | schnell |" in text
