"""ComfyUI failing, hanging, dropping its socket, or missing a model: the right status,
within the deadline, and no finished image lost."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.backend.helpers import (SHORT_DEADLINE_S, SMALL, data_url, error_of, image_bytes,
                                   job_with_seed, output_of, records, warm_up)

# The client waits longer than any deadline here, so a 504 proves the server gave up itself.
CLIENT_TIMEOUT_S = 30


def test_failed_job_is_502_with_comfyuis_message(backend_server):
    backend_server.double.fail_next("CUDA out of memory (simulated)")
    r = httpx.post(f"{backend_server.url}/flux-dev", json={"prompt": "x", **SMALL},
                   timeout=CLIENT_TIMEOUT_S)
    assert r.status_code == 502
    err = error_of(r)
    assert err["code"] == "comfyui_job_failed"
    assert "CUDA out of memory (simulated)" in err["message"]
    assert "KSampler" in err["message"]
    record = records(backend_server.data_dir)[r.headers["x-request-id"]]
    assert record["status"] == "failed" and record["error"]["code"] == "comfyui_job_failed"


def test_hung_job_is_504_and_interrupted(backend_server_factory, comfyui_double):
    server = backend_server_factory(comfyui_double, deadline_s=SHORT_DEADLINE_S)
    warm_up(server)  # the deadline covers queueing, not a first object_info fetch under load
    comfyui_double.hang_next()
    result: dict = {}

    def call() -> None:
        result["r"] = httpx.post(f"{server.url}/flux-dev", json={"prompt": "x", "seed": 5, **SMALL},
                                 timeout=CLIENT_TIMEOUT_S)

    caller = threading.Thread(target=call)
    caller.start()
    # while the job hangs, its record already holds the request (queued, or running once
    # the backend heard ComfyUI start it)
    while not comfyui_double.jobs or comfyui_double.jobs[0].status != "running":
        assert caller.is_alive(), "the request ended before the job ran"
        time.sleep(0.01)
    live = [rec for rec in records(server.data_dir).values()
            if rec["status"] in ("queued", "running")]
    assert len(live) == 1 and live[0]["request"]["prompt"] == "x"
    caller.join(CLIENT_TIMEOUT_S)
    r = result["r"]
    assert r.status_code == 504
    err = error_of(r)
    assert err["code"] == "deadline_exceeded" and "cancelled" in err["message"]
    assert comfyui_double.jobs[0].status == "interrupted"
    # the queue is free again: the next job runs
    r = httpx.post(f"{server.url}/flux-dev", json={"prompt": "y", **SMALL}, timeout=CLIENT_TIMEOUT_S)
    assert r.status_code == 200, r.text


def test_pending_job_past_the_deadline_is_taken_off_the_queue(backend_server_factory,
                                                              comfyui_double):
    probe = httpx.post(f"{comfyui_double.url}/queue", json={"delete": []})
    if probe.status_code != 200:  # upstream ComfyUI has it; the double may not yet
        pytest.skip("the ComfyUI double does not implement POST /queue {'delete': [...]}")
    patient = backend_server_factory(comfyui_double, deadline_s=CLIENT_TIMEOUT_S)
    # warmed up, so that its deadline passes with the job queued, not while preparing it
    hasty = backend_server_factory(comfyui_double, deadline_s=SHORT_DEADLINE_S)
    warm_up(hasty)
    comfyui_double.hang_next()
    first = threading.Thread(target=httpx.post, args=(f"{patient.url}/flux-dev",),
                             kwargs={"json": {"prompt": "a", "seed": 1, **SMALL},
                                     "timeout": CLIENT_TIMEOUT_S})
    first.start()
    while not comfyui_double.jobs:
        time.sleep(0.01)
    r = httpx.post(f"{hasty.url}/flux-dev", json={"prompt": "b", "seed": 2, **SMALL},
                   timeout=CLIENT_TIMEOUT_S)
    assert r.status_code == 504
    waiting = job_with_seed(comfyui_double, 2)
    assert waiting not in comfyui_double.pending  # deleted from the queue, not interrupted
    assert job_with_seed(comfyui_double, 1).status == "running"  # the other job untouched
    comfyui_double.interrupt()
    first.join(CLIENT_TIMEOUT_S)
    assert waiting.status == "pending"  # it never ran


def test_dropped_socket_falls_back_to_history(backend_server):
    backend_server.double.drop_socket_next()
    r = httpx.post(f"{backend_server.url}/flux-dev", json={"prompt": "x", "seed": 31, **SMALL},
                   timeout=CLIENT_TIMEOUT_S)
    assert r.status_code == 200, r.text
    double = backend_server.double
    assert r.content == output_of(double, job_with_seed(double, 31))


def test_missing_model_is_503_naming_the_file_and_how_to_install(backend_server):
    double = backend_server.double
    double.set_installed({folder: files for folder, files in double.installed.items()
                          if folder != "vae"})
    r = httpx.post(f"{backend_server.url}/flux-dev", json={"prompt": "x", **SMALL},
                   timeout=CLIENT_TIMEOUT_S)
    assert r.status_code == 503
    err = error_of(r)
    assert err["code"] == "model_not_installed"
    assert "ae.safetensors" in err["message"] and "models/vae" in err["message"]
    assert "hf download" in err["message"]
    assert not double.jobs


@pytest.mark.parametrize(("method", "folder", "name", "listed"), [
    ("instantid", "insightface", "models/antelopev2/1k3d68.onnx", False),
    ("pulid", "insightface", "models/antelopev2/glintr100.onnx", False),
    ("pulid", "text_encoders", "EVA02_CLIP_L_336_psz14_s6B.pt", True),
    ("pulid", "facexlib", "parsing_bisenet.pth", True),
])
def test_missing_face_model_file_is_503_naming_it(backend_server, method, folder, name, listed):
    # Files the face nodes open without naming them: ComfyUI lists the .pt/.pth ones in
    # GET /models/<folder>, never the .onnx ones, which the backend finds on the models
    # directory it shares with ComfyUI.
    double = backend_server.double
    double.set_installed({f: [n for n in files if n != name]
                          for f, files in double.installed.items()})
    r = httpx.post(f"{backend_server.url}/flux-instantid",
                   json={"prompt": "x", "reference_image": data_url(image_bytes()),
                         "method": method, **SMALL}, timeout=CLIENT_TIMEOUT_S)
    assert r.status_code == 503, r.text
    err = error_of(r)
    assert err["code"] == "model_not_installed" and err["field"] == folder
    assert repr(name) in err["message"] and f"models/{folder}" in err["message"]
    assert "hf download" in err["message"]
    # where the backend looked, for the files only the shared directory can tell about
    assert ("RYLA_MODELS_DIR" in err["message"]) is not listed
    assert not double.jobs


def test_user_workflow_needing_a_missing_model_is_503(backend_server):
    graph = {"1": {"class_type": "VAELoader", "inputs": {"vae_name": "not-there.safetensors"}},
             "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1,
                                                          "color": 0}},
             "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["2", 0], "vae": ["1", 0]}},
             "4": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["1", 0]}},
             "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "x"}}}
    r = httpx.post(f"{backend_server.url}/workflow", json={"workflow": graph},
                   timeout=CLIENT_TIMEOUT_S)
    assert r.status_code == 503
    err = error_of(r)
    assert err["code"] == "model_not_installed" and "not-there.safetensors" in err["message"]
