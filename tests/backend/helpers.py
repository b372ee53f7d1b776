"""Builders the backend tests share: images, safetensors files, lookups in the double."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.comfyui_double import ComfyUIDouble, Job

SMALL = {"width": 256, "height": 256, "steps": 2, "format": "png"}
# A deadline that a warmed-up backend (see warm_up) meets for preparing and queueing a
# small job on a loaded 2-core machine, and short enough for a test to wait out.
SHORT_DEADLINE_S = 3.0


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (48, 32),
                colour: tuple[int, int, int] = (200, 40, 90), exif_orientation: int | None = None) -> bytes:
    img = Image.new("RGB", size, colour)
    img.putpixel((0, 0), (0, 255, 0))  # a marker pixel, to see where rotation put it
    out = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"




def warm_up(server: Any) -> None:
    """Fill a fresh backend's cache of ComfyUI's object_info, the slow part of a first
    request, with a graph refused at validation (nothing is queued): a short deadline
    then covers preparing and queueing a job, not that first fetch."""
    r = httpx.post(f"{server.url}/workflow", timeout=60,
                   json={"workflow": {"1": {"class_type": "NoSuchNode", "inputs": {}}}})
    assert r.status_code == 400, r.text


def job_with_seed(double: ComfyUIDouble, seed: int) -> Job:
    found = [job for job in double.jobs
             if any(isinstance(n, dict) and n.get("inputs", {}).get("seed") == seed
                    for n in job.graph.values())]
    assert len(found) == 1, f"expected one job with seed {seed}, found {len(found)}"
    return found[0]


def output_of(double: ComfyUIDouble, job: Job) -> bytes:
    """The bytes of the first file the double saved for `job`."""
    outputs = double.history[job.prompt_id]["outputs"]
    for node_id in job.graph:
        for item in outputs.get(node_id, {}).get("images", []):
            return (double.output_dir / item["subfolder"] / item["filename"]).read_bytes()
    raise AssertionError(f"job {job.prompt_id} saved nothing")


def texts_of(job: Job) -> list[str]:
    return [n["inputs"]["text"] for n in job.graph.values()
            if n.get("class_type") == "CLIPTextEncode"]


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}, body
    return body["error"]


def records(data_dir: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in (data_dir / "jobs").glob("*.json")}
