"""The GPU rehearsal's driver (benchmarks/rehearsal/measure.py), run against the backend
over the ComfyUI test double: every route is requested through ryla's own client and
each request becomes a result record with the fields the results files promise."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.rehearsal import measure
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
        ("/flux-instantid", "instantid"), ("/workflow", None), ("/wan2", None)}
    assert all(r["status"] == 200 and r["output_bytes"][0] > 0 for r in per_request)
    assert rows[0]["first_image_s"] == rows[0]["wall_s"]
    assert next(r for r in per_request if r["route"] == "/wan2")["content_type"].startswith("image/webp")
    # the mixed sequence marks each change of model family as a switch
    mixed = [r for r in per_request if r["label"].startswith("mixed first")]
    assert [r["switch"] for r in mixed][1:] == ["schnell", "lora:rehearsal-a", "lora:rehearsal-b", "pulid", "dev"]
