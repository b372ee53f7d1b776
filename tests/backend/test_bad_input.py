"""Every bad-input class of the contract (docs/api.md): its status and a message that says what to fix."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from backend.images import to_png
from tests.backend.helpers import SMALL, data_url, error_of, image_bytes
from tests.builders import free_port
from workflows.request_models import FluxDevRequest


def post(server, path: str, **kwargs):
    return httpx.post(f"{server.url}{path}", timeout=30, **kwargs)


@pytest.mark.parametrize("body, field, words", [
    ({}, "prompt", ["prompt", "required"]),
    ({"prompt": "x", "width": 4096}, "width", ["width", "256 to 2048"]),
    ({"prompt": "x", "width": 250}, "width", ["width", "256 to 2048"]),
    ({"prompt": "x", "height": 1000}, "height", ["multiple of 16"]),
    ({"prompt": "x", "steps": 0}, "steps", ["steps", "1 to 100"]),
    ({"prompt": "x", "guidance": 25}, "guidance", ["0.0 to 20.0"]),
    ({"prompt": "x", "seed": -1}, "seed", ["seed", "0 to 9223372036854775807"]),
    ({"prompt": "x", "format": "gif"}, "format", ["'jpeg', 'png'"]),
    ({"prompt": "x", "width": "wide"}, "width", ["whole number, not text", "'wide'"]),
    ({"prompt": "   "}, "prompt", ["blank"]),
    # only zero-width, format, space-separator and control characters: nothing to see
    ({"prompt": "\u200b\u200b"}, "prompt", ["blank"]),
    ({"prompt": "\ufeff\u2060\u00a0\u3000\x00"}, "prompt", ["blank"]),
    # numbers are numbers: text, true/false and 7.0 for a whole number are refused
    ({"prompt": "x", "seed": "7"}, "seed", ["whole number, not text", "'7'"]),
    ({"prompt": "x", "steps": "7"}, "steps", ["whole number, not text", "'7'"]),
    ({"prompt": "x", "steps": 7.0}, "steps", ["whole number, not a fraction", "7.0"]),
    ({"prompt": "x", "steps": True}, "steps", ["whole number, not true/false", "True"]),
    ({"prompt": "x", "guidance": "3.5"}, "guidance", ["number", "'3.5'"]),
    ({"prompt": "x", "colour": "red"}, "colour", ["unknown field", "negative_prompt"]),
])
def test_flux_dev_field_errors_name_the_field_and_range(backend_server_session, body, field, words):
    r = post(backend_server_session, "/flux-dev", json=body)
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "invalid_request"
    assert err["field"] == field
    for word in words:
        assert word in err["message"], err["message"]


def test_whole_numbers_stay_valid_where_a_float_is_expected():
    request = FluxDevRequest(prompt="a\u200bb", guidance=3, steps=7, seed=7)
    assert (request.guidance, request.steps, request.seed) == (3.0, 7, 7)
    assert isinstance(request.guidance, float)


def test_route_specific_ranges(backend_server_session):
    r = post(backend_server_session, "/flux-lora", json={"prompt": "x", "lora_id": "a", "lora_strength": 2})
    assert r.status_code == 400 and "0.0 to 1.0" in error_of(r)["message"]
    r = post(backend_server_session, "/z-image", json={"prompt": "x", "steps": 51})
    assert r.status_code == 400 and error_of(r)["field"] == "steps"
    assert "1 to 50" in error_of(r)["message"]
    # Z-Image-Turbo is distilled without guidance: the field does not exist there.
    r = post(backend_server_session, "/z-image", json={"prompt": "x", "guidance": 3.5})
    assert r.status_code == 400 and error_of(r)["field"] == "guidance"
    assert "unknown field" in error_of(r)["message"]
    r = post(backend_server_session, "/wan2", json={"prompt": "x", "frames": 6})
    assert r.status_code == 400 and "4k+1" in error_of(r)["message"]
    r = post(backend_server_session, "/flux-instantid",
             json={"prompt": "x", "reference_image": "abc", "method": "faceswap"})
    assert r.status_code == 400 and error_of(r)["field"] == "method"
    assert "'instantid', 'pulid'" in error_of(r)["message"]


@pytest.mark.parametrize("lora_id", ["../x", "/etc/passwd", "a/b", "x" * 65, ""])
def test_path_like_lora_ids_are_400(backend_server_session, lora_id):
    r = post(backend_server_session, "/flux-lora", json={"prompt": "x", "lora_id": lora_id})
    assert r.status_code == 400 and error_of(r)["field"] == "lora_id"
    r = post(backend_server_session, "/loras", data={"id": lora_id, "trigger_word": "t"},
             files={"file": ("x.safetensors", b"12345678")})
    assert r.status_code == 400
    assert not list(backend_server_session.lora_dir.parent.rglob("x.safetensors"))


def test_malformed_and_missing_json(backend_server_session):
    r = post(backend_server_session, "/flux-dev", content=b'{"prompt": ',
             headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in error_of(r)["message"]
    r = post(backend_server_session, "/flux-dev")
    assert r.status_code == 400 and "prompt" in error_of(r)["message"]
    r = post(backend_server_session, "/flux-dev", json=["a", "list"])
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_request"


@pytest.mark.parametrize("value, code, words", [
    ("%%%not base64%%%", "invalid_image", ["base64"]),
    (base64.b64encode(b"just some text, no image").decode(), "invalid_image", ["JPEG, PNG or WebP"]),
    (data_url(image_bytes("GIF"), "image/gif"), "invalid_image", ["GIF", "JPEG, PNG or WebP"]),
    (data_url(image_bytes("PNG")[:60]), "invalid_image", ["damaged or truncated"]),
    (data_url(image_bytes("BMP"), "image/bmp"), "invalid_image", ["BMP"]),
])
def test_bad_reference_images_are_400(backend_server_session, value, code, words):
    r = post(backend_server_session, "/flux-instantid",
             json={"prompt": "x", "reference_image": value, **SMALL})
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert err["code"] == code and err["field"] == "reference_image"
    for word in words:
        assert word in err["message"], err["message"]


def test_webp_reference_is_accepted(backend_server_session):
    r = post(backend_server_session, "/flux-instantid",
             json={"prompt": "x", "reference_image": data_url(image_bytes("WEBP"), "image/webp"), **SMALL})
    assert r.status_code == 200, r.text


def test_a_phones_mpo_reference_is_read_by_its_first_picture(backend_server_session):
    first = Image.new("RGB", (64, 48), (200, 40, 90))
    second = Image.new("RGB", (32, 32), (0, 0, 255))  # e.g. a depth map
    mpo = io.BytesIO()
    first.save(mpo, format="MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(mpo.getvalue())).format == "MPO"
    png = to_png(mpo.getvalue(), "reference_image", max_pixels=10**6, max_side=2048)
    with Image.open(io.BytesIO(png)) as decoded:
        assert decoded.size == (64, 48)
        red, green, blue = decoded.getpixel((10, 10))
        assert red > 150 and blue < 150  # the first picture, not the second
    r = post(backend_server_session, "/flux-instantid",
             json={"prompt": "x", "reference_image": data_url(mpo.getvalue(), "image/jpeg"),
                   **SMALL})
    assert r.status_code == 200, r.text


def test_image_over_the_pixel_limit_is_413(backend_server_factory, comfyui_double_session):
    server = backend_server_factory(comfyui_double_session, max_image_pixels=100 * 100)
    r = post(server, "/flux-instantid", json={"prompt": "x", **SMALL,
                                              "reference_image": data_url(image_bytes(size=(200, 120)))})
    assert r.status_code == 413
    err = error_of(r)
    assert err["code"] == "payload_too_large" and "200x120" in err["message"]


def test_body_over_the_limit_is_413_by_content_length(backend_server_factory, comfyui_double_session):
    server = backend_server_factory(comfyui_double_session, max_body_bytes=1000)
    r = post(server, "/flux-dev", json={"prompt": "x" * 2000})
    assert r.status_code == 413
    assert "1000" in error_of(r)["message"]


def test_chunked_body_over_the_limit_is_413(backend_server_factory, comfyui_double_session):
    server = backend_server_factory(comfyui_double_session, max_body_bytes=1000)

    def chunks():
        yield b'{"prompt": "'
        for _ in range(50):
            yield b"x" * 100
        yield b'"}'

    r = post(server, "/flux-dev", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert error_of(r)["code"] == "payload_too_large"


def test_unknown_route_and_wrong_method(backend_server_session):
    r = httpx.get(f"{backend_server_session.url}/no-such-route")
    assert r.status_code == 404
    err = error_of(r)
    assert err["code"] == "not_found" and "/flux-dev" in err["message"]
    r = httpx.get(f"{backend_server_session.url}/flux-dev")
    assert r.status_code == 405 and "GET" in error_of(r)["message"]


def test_bad_workflow_lists_every_problem(backend_server_session):
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 64, "batch_size": 1,
                                                          "color": 0}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
             "3": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 99999,
                                                          "batch_size": 1, "color": 0}},
             "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "y"}}}
    before = len(backend_server_session.double.jobs)
    r = post(backend_server_session, "/workflow", json={"workflow": graph})
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "invalid_workflow" and err["field"] == "workflow"
    assert "2 problem(s)" in err["message"]
    assert "node 1" in err["message"] and "width" in err["message"]
    assert "node 3" in err["message"] and "height" in err["message"]
    assert len(backend_server_session.double.jobs) == before  # never queued


def test_workflow_unknown_node_type_and_no_outputs(backend_server_session):
    r = post(backend_server_session, "/workflow",
             json={"workflow": {"1": {"class_type": "NoSuchSampler", "inputs": {}}}})
    assert r.status_code == 400 and "NoSuchSampler" in error_of(r)["message"]
    r = post(backend_server_session, "/workflow",
             json={"workflow": {"1": {"class_type": "EmptyImage",
                                      "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_workflow"


def test_workflow_image_names_must_be_plain(backend_server_session):
    r = post(backend_server_session, "/workflow",
             json={"workflow": {"1": {"class_type": "LoadImage", "inputs": {"image": "x"}}},
                   "images": {"../evil.png": data_url(image_bytes())}})
    assert r.status_code == 400
    assert error_of(r)["field"] == "images.../evil.png"


def test_comfyui_unreachable_is_503(backend_server_factory, comfyui_double_session):
    closed_port = free_port()
    server = backend_server_factory(comfyui_double_session,
                                    comfyui_url=f"http://127.0.0.1:{closed_port}")
    r = post(server, "/flux-dev", json={"prompt": "x", **SMALL})
    assert r.status_code == 503
    err = error_of(r)
    assert err["code"] == "comfyui_unavailable" and "--comfyui-url" in err["message"]
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["comfyui"]["reachable"] is False


def test_refused_workflow_uploads_nothing(backend_server):
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "me.png"}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}  # no prefix
    r = post(backend_server, "/workflow",
             json={"workflow": graph, "images": {"me.png": data_url(image_bytes(colour=(1, 2, 3)))}})
    assert r.status_code == 400 and "filename_prefix" in error_of(r)["message"]
    assert backend_server.double.input_images() == []
