"""Each generation route end to end: the app over real sockets against the double."""

from __future__ import annotations

import base64
import io
import json

import httpx
from PIL import Image

from tests.backend.helpers import (
    SMALL,
    data_url,
    error_of,
    image_bytes,
    job_with_seed,
    output_of,
    records,
    texts_of,
)
from tests.builders import safetensors_bytes


def test_flux_dev_returns_the_double_image_with_headers_and_a_record(backend_server_session):
    server = backend_server_session
    r = httpx.post(f"{server.url}/flux-dev", json={"prompt": "a lighthouse", "seed": 1234, **SMALL},
                   timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-seed"] == "1234"
    assert int(r.headers["x-generation-time-ms"]) >= 0
    job = job_with_seed(server.double, 1234)
    assert r.content == output_of(server.double, job)
    assert "a lighthouse" in texts_of(job)
    record = records(server.data_dir)[r.headers["x-request-id"]]
    assert record["status"] == "succeeded"
    assert record["endpoint"] == "/flux-dev"
    assert record["request"]["prompt"] == "a lighthouse"
    saved = [open(p, "rb").read() for p in record["outputs"]]
    assert saved == [r.content]


def test_seed_is_random_when_absent_and_echoed(backend_server_session):
    server = backend_server_session
    seeds = set()
    for _ in range(2):
        r = httpx.post(f"{server.url}/flux", json={"prompt": "fast", **SMALL}, timeout=30)
        assert r.status_code == 200, r.text
        seed = int(r.headers["x-seed"])
        job_with_seed(server.double, seed)  # the graph was run with the echoed seed
        seeds.add(seed)
    assert len(seeds) == 2
    # Below 2**53: a browser shows and sends back such a seed exactly (drawn up to 2**63,
    # two seeds would both land below it once in a million runs).
    assert all(seed < 2**53 for seed in seeds)


def test_jpeg_is_the_default_format(backend_server_session):
    body = {k: v for k, v in SMALL.items() if k != "format"}
    r = httpx.post(f"{backend_server_session.url}/flux-dev", json={"prompt": "jpeg please", **body},
                   timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).format == "JPEG"


def test_json_mode(backend_server_session):
    server = backend_server_session
    r = httpx.post(f"{server.url}/flux-dev", json={"prompt": "json", "seed": 77, **SMALL},
                   headers={"Accept": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["seed"] == 77
    assert body["request_id"] == r.headers["x-request-id"]
    assert {"total_ms", "comfyui_ms"} <= set(body["timings"])
    image = base64.b64decode(body["images"][0])
    assert image == output_of(server.double, job_with_seed(server.double, 77))


def test_flux_lora_uses_the_stored_lora_and_its_trigger_word(backend_server_session):
    server = backend_server_session
    up = httpx.post(f"{server.url}/loras", data={"id": "route-anna", "trigger_word": "ANNA_V1"},
                    files={"file": ("anna.safetensors", safetensors_bytes())}, timeout=30)
    assert up.status_code == 200, up.text
    r = httpx.post(f"{server.url}/flux-lora", json={"prompt": "portrait in a garden",
                                                    "lora_id": "route-anna", "seed": 991, **SMALL},
                   timeout=30)
    assert r.status_code == 200, r.text
    job = job_with_seed(server.double, 991)
    lora_nodes = [n for n in job.graph.values() if n["_meta"]["title"] == "lora"]
    assert [n["inputs"]["lora_name"] for n in lora_nodes] == ["character-route-anna.safetensors"]
    assert "ANNA_V1, portrait in a garden" in texts_of(job)
    # a prompt that already holds the trigger word is left alone
    r = httpx.post(f"{server.url}/flux-lora", json={"prompt": "ANNA_V1 on a beach",
                                                    "lora_id": "route-anna", "seed": 992, **SMALL},
                   timeout=30)
    assert r.status_code == 200, r.text
    assert "ANNA_V1 on a beach" in texts_of(job_with_seed(server.double, 992))


def test_flux_lora_unknown_id_is_404(backend_server_session):
    r = httpx.post(f"{backend_server_session.url}/flux-lora",
                   json={"prompt": "x", "lora_id": "nobody-here", **SMALL}, timeout=30)
    assert r.status_code == 404
    err = error_of(r)
    assert err["code"] == "lora_not_found" and err["field"] == "lora_id"
    assert "nobody-here" in err["message"]


def test_instantid_and_pulid_upload_the_reference_under_a_content_name(backend_server_session):
    server = backend_server_session
    # EXIF orientation 6 (rotate 90): the upload must be the upright image
    ref = image_bytes("JPEG", size=(40, 20), exif_orientation=6)
    for method, seed in (("instantid", 501), ("pulid", 502)):
        r = httpx.post(f"{server.url}/flux-instantid",
                       json={"prompt": "a portrait", "reference_image": data_url(ref, "image/jpeg"),
                             "method": method, "seed": seed, **SMALL}, timeout=30)
        assert r.status_code == 200, r.text
        job = job_with_seed(server.double, seed)
        names = [n["inputs"]["image"] for n in job.graph.values() if n["class_type"] == "LoadImage"]
        assert len(names) == 1 and names[0].startswith("ryla-") and names[0].endswith(".png")
        with Image.open(server.double.input_dir / names[0]) as uploaded:
            assert uploaded.format == "PNG"
            assert uploaded.size == (20, 40)  # rotated upright


def test_z_image_runs_its_graph_with_turbo_defaults_and_the_usual_headers(backend_server_session):
    server = backend_server_session
    body = {"prompt": "a fox, quick draft", "negative_prompt": "blurry", "seed": 8080,
            "width": 256, "height": 384, "format": "png"}
    r = httpx.post(f"{server.url}/z-image", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-seed"] == "8080" and r.headers["x-request-id"]
    assert int(r.headers["x-generation-time-ms"]) >= 0
    job = job_with_seed(server.double, 8080)
    assert r.content == output_of(server.double, job)
    nodes = {n["class_type"]: n["inputs"] for n in job.graph.values()}
    assert nodes["UNETLoader"]["unet_name"] == "z_image_turbo_bf16.safetensors"
    assert nodes["CLIPLoader"] == {**nodes["CLIPLoader"], "clip_name": "qwen_3_4b.safetensors",
                                   "type": "lumina2"}
    sampler = nodes["KSampler"]
    assert (sampler["steps"], sampler["cfg"], sampler["sampler_name"]) == (8, 1.0, "res_multistep")
    assert (nodes["EmptySD3LatentImage"]["width"], nodes["EmptySD3LatentImage"]["height"]) == (256, 384)
    assert sorted(texts_of(job)) == ["a fox, quick draft", "blurry"]
    record = records(server.data_dir)[r.headers["x-request-id"]]
    assert record["endpoint"] == "/z-image" and record["status"] == "succeeded"
    assert record["request"]["steps"] == 8


def test_z_image_json_mode(backend_server_session):
    server = backend_server_session
    r = httpx.post(f"{server.url}/z-image", json={"prompt": "json draft", "seed": 8181, **SMALL},
                   headers={"Accept": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["seed"], body["request_id"]) == (8181, r.headers["x-request-id"])
    assert base64.b64decode(body["images"][0]) == output_of(server.double, job_with_seed(server.double, 8181))


def test_wan2_returns_video_bytes(backend_server_session):
    server = backend_server_session
    r = httpx.post(f"{server.url}/wan2", json={"prompt": "waves", "width": 256, "height": 256,
                                               "frames": 5, "steps": 1, "seed": 4242}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/webp"
    assert r.headers["x-seed"] == "4242"
    with Image.open(io.BytesIO(r.content)) as video:
        assert getattr(video, "n_frames", 1) == 5


def test_workflow_runs_a_user_graph_with_images(backend_server_session):
    server = backend_server_session
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "face.png"}},
             "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
             "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "wf"}}}
    ref = image_bytes("PNG", size=(16, 8), colour=(10, 20, 30))
    r = httpx.post(f"{server.url}/workflow", json={"workflow": graph, "images": {"face.png": data_url(ref)}},
                   timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["x-seed"] == "-1"
    with Image.open(io.BytesIO(r.content)) as out:
        assert out.size == (16, 8)
        assert out.convert("RGB").getpixel((5, 5)) == (245, 235, 225)  # inverted
    record = records(server.data_dir)[r.headers["x-request-id"]]
    assert record["request"]["images"]["face.png"].startswith("<")  # no image data kept
    assert json.dumps(record).count("base64") == 0


def test_fast_mode_reaches_comfyui_as_fp8_weights_and_a_compiled_model(backend_server_session):
    server = backend_server_session
    r = httpx.post(f"{server.url}/flux-dev", json={"prompt": "fast one", "seed": 4321, "mode": "fast", **SMALL},
                   timeout=30)
    assert r.status_code == 200, r.text
    graph = job_with_seed(server.double, 4321).graph
    loaders = [n for n in graph.values() if n["class_type"] == "UNETLoader"]
    assert [n["inputs"]["weight_dtype"] for n in loaders] == ["fp8_e4m3fn_fast"]
    assert [n["inputs"]["backend"] for n in graph.values() if n["class_type"] == "TorchCompileModel"] == ["inductor"]
    assert records(server.data_dir)[r.headers["x-request-id"]]["request"]["mode"] == "fast"


def test_an_unknown_mode_is_a_400_naming_the_field(backend_server_session):
    r = httpx.post(f"{backend_server_session.url}/flux-dev", json={"prompt": "x", "mode": "turbo", **SMALL},
                   timeout=30)
    assert r.status_code == 400, r.text
    error = error_of(r)
    assert error["field"] == "mode"
    assert "standard" in error["message"] and "fast" in error["message"]
