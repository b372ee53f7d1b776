"""Hand-made bodies that once made a 500 (issue 13): each is now a 400 with the contract's
error shape, and the keep-alive connection that carried it stays usable."""

from __future__ import annotations

import json
import shutil
import struct

import httpx
import pytest

from tests.backend.helpers import SMALL, error_of
from workflows.validate import MAX_LINK_DEPTH

EMPTY_IMAGE = {"class_type": "EmptyImage",
               "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}


def _save(images: object, prefix: object = "x") -> dict:
    return {"class_type": "SaveImage", "inputs": {"images": images, "filename_prefix": prefix}}


def _chain(length: int) -> dict:
    graph = {"0": EMPTY_IMAGE}
    for i in range(1, length):
        graph[str(i)] = {"class_type": "ImageInvert", "inputs": {"image": [str(i - 1), 0]}}
    graph["save"] = _save([str(length - 1), 0])
    return graph


def _nested(depth: int) -> object:
    value: object = []
    for _ in range(depth):
        value = [value]
    return value


# Raw JSON text: \ud800 and NaN cannot be written by httpx's json= (it refuses both).
SURROGATE_WORKFLOW = ('{"workflow": {"1": {"class_type": "SaveImage", "inputs": {"images": '
                      '["2", 0], "filename_prefix": "\\ud800"}}, "2": '
                      + json.dumps(EMPTY_IMAGE) + "}}")
SURROGATE_KEY_WORKFLOW = SURROGATE_WORKFLOW.replace('"filename_prefix": "\\ud800"',
                                                    '"filename_prefix": "x", "\\udc00": 1')
NAN_WORKFLOW = ('{"workflow": {"1": {"class_type": "SaveImage", "inputs": {"images": '
                '["2", 0], "filename_prefix": NaN}}, "2": ' + json.dumps(EMPTY_IMAGE) + "}}")
SURROGATE_IMAGE_NAME = '{"workflow": {"1": {}}, "images": {"\\ud800": "eA=="}}'

BAD_WORKFLOWS = {
    "class_type is a number": {"1": {"class_type": 5, "inputs": {}}},
    "class_type is a list": {"1": {"class_type": ["SaveImage"], "inputs": {}}},
    "class_type is an object": {"1": {"class_type": {"a": 1}, "inputs": {}}},
    "inputs is a list": {"1": {"class_type": "SaveImage", "inputs": [1]}},
    "inputs is a string": {"1": {"class_type": "SaveImage", "inputs": "x"}, "2": EMPTY_IMAGE},
    "_meta is a string": {"1": {"class_type": "NoSuchNode", "inputs": {}, "_meta": "x"}},
    "_meta.title is a list": {"1": {"class_type": "NoSuchNode", "_meta": {"title": [1]}}},
    "link source is a list": {"1": _save([["2"], 0]), "2": EMPTY_IMAGE},
    "link source is an object": {"1": _save([{"id": "2"}, 0]), "2": EMPTY_IMAGE},
    "link source is null": {"1": _save([None, 0]), "2": EMPTY_IMAGE},
    "link index is a string": {"1": _save(["2", "0"]), "2": EMPTY_IMAGE},
    "a node is a list": {"1": ["SaveImage"]},
    "chain of hundreds of nodes": _chain(MAX_LINK_DEPTH + 100),
    "input nested hundreds deep": {"1": _save(["2", 0], _nested(400)), "2": EMPTY_IMAGE},
}
RAW_BODIES = {
    "lone surrogate in a string input": SURROGATE_WORKFLOW,
    "lone surrogate in an input name": SURROGATE_KEY_WORKFLOW,
    "NaN in an input": NAN_WORKFLOW,
    "lone surrogate in an image name": SURROGATE_IMAGE_NAME,
    "body nested thousands deep": '{"workflow": ' + "[" * 5000 + "]" * 5000 + "}",
    "integer of thousands of digits": '{"workflow": {"1": ' + "9" * 5000 + "}}",
}


@pytest.fixture(scope="module")
def pooled(backend_server_session):
    """One keep-alive connection for every request: an error must not break it."""
    with httpx.Client(base_url=backend_server_session.url, timeout=30,
                      limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)) as client:
        yield client


def _assert_400_then_usable(client: httpx.Client, response: httpx.Response) -> dict:
    assert response.status_code == 400, response.text
    err = error_of(response)
    assert err["code"] in ("invalid_request", "invalid_workflow"), err
    # the same pooled connection answers the next request
    assert client.get("/health").status_code == 200
    return err


@pytest.mark.parametrize("name", BAD_WORKFLOWS)
def test_pathological_workflow_is_400_and_connection_survives(pooled, name):
    err = _assert_400_then_usable(pooled, pooled.post("/workflow", json={"workflow": BAD_WORKFLOWS[name]}))
    assert err["field"] == "workflow"


@pytest.mark.parametrize("name", RAW_BODIES)
def test_pathological_json_text_is_400_and_connection_survives(pooled, name):
    response = pooled.post("/workflow", content=RAW_BODIES[name].encode("utf-8", "surrogatepass"),
                           headers={"content-type": "application/json"})
    err = _assert_400_then_usable(pooled, response)
    err["message"].encode("utf-8")  # the error itself is valid text


def test_chain_within_the_link_limit_runs(pooled):
    r = pooled.post("/workflow", json={"workflow": _chain(20)})
    assert r.status_code == 200, r.text


def test_chain_past_the_link_limit_names_the_limit(pooled):
    r = pooled.post("/workflow", json={"workflow": _chain(MAX_LINK_DEPTH + 100)})
    assert r.status_code == 400
    assert f"more than {MAX_LINK_DEPTH} links" in error_of(r)["message"]


def _safetensors_with_header(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


@pytest.mark.parametrize("header", [
    b'{"__metadata__": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # nested too deep to parse
    b'{"a": {"dtype": "F16", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 0]}}',
    b'{"\\ud800": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}}',
    b'{"a": {"dtype": "F16", "shape": [1e400], "data_offsets": [0, 2]}}',
    b'{"a": {"dtype": "F16", "shape": [1], "data_offsets": [NaN, 2]}}',
    b'[' * 50 + b']' * 50,
], ids=["deep", "huge-int", "surrogate", "infinite", "nan", "array"])
def test_pathological_safetensors_header_is_400(pooled, header):
    r = pooled.post("/loras", data={"id": "weird"},
                    files={"file": ("w.safetensors", _safetensors_with_header(header, b"\0\0"))})
    err = _assert_400_then_usable(pooled, r)
    assert err["field"] == "file"


def test_unexpected_error_is_500_in_spec_shape_and_keeps_the_connection(backend_server,
                                                                         monkeypatch):
    """The last resort: a bug still answers the contract's shape and leaves the connection open."""
    from backend.generation import Generator

    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(Generator, "generate", broken)
    with httpx.Client(base_url=backend_server.url, timeout=30,
                      limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)) as client:
        r = client.post("/flux-dev", json={"prompt": "x", **SMALL})
        assert r.status_code == 500
        assert error_of(r)["code"] == "internal_error"
        assert client.get("/health").status_code == 200


# --- contract gaps -----------------------------------------------------------------------

@pytest.mark.parametrize("route, body, field", [
    ("/flux-dev", {"prompt": "x", "seed": False}, "seed"),
    ("/flux-dev", {"prompt": "x", "seed": True}, "seed"),
    ("/flux", {"prompt": "x", "steps": True}, "steps"),
    ("/wan2", {"prompt": "x", "seed": False}, "seed"),
    ("/flux-dev", {"prompt": "x", "guidance": True}, "guidance"),
])
def test_booleans_are_not_numbers(pooled, route, body, field):
    r = pooled.post(route, json=body)
    assert r.status_code == 400
    err = error_of(r)
    assert err["field"] == field and "true/false" in err["message"]


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_wan2_refuses_a_blank_prompt_like_flux(pooled, prompt):
    for route in ("/wan2", "/flux-dev"):
        r = pooled.post(route, json={"prompt": prompt})
        assert r.status_code == 400, route
        assert error_of(r)["field"] == "prompt"


@pytest.mark.parametrize("method, path, allow", [
    ("GET", "/flux-dev", "POST"),
    ("PUT", "/workflow", "POST"),
    ("DELETE", "/loras", "GET, POST"),
    ("POST", "/health", "GET, HEAD"),
])
def test_wrong_method_is_405_with_allow_and_spec_shape(pooled, method, path, allow):
    r = pooled.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allow
    err = error_of(r)
    assert err["code"] == "method_not_allowed" and method in err["message"]
    assert pooled.get("/health").status_code == 200


def test_openapi_documents_400_and_media_types_not_422(pooled):
    schema = pooled.get("/openapi.json").json()
    text = json.dumps(schema)
    assert '"422"' not in text and "HTTPValidationError" not in text
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]["error"]["required"]) == {"code", "message", "field"}
    for path, media in [("/flux-dev", {"image/jpeg", "image/png"}),
                        ("/flux-instantid", {"image/jpeg", "image/png"}),
                        ("/wan2", {"image/webp"})]:
        responses = schema["paths"][path]["post"]["responses"]
        assert media <= set(responses["200"]["content"]), path
        assert responses["200"]["content"]["image/png" if "image/png" in media else "image/webp"][
            "schema"]["format"] == "binary"
        for status in ("400", "413", "502", "503", "504"):
            assert responses[status]["content"]["application/json"]["schema"]["$ref"] \
                == "#/components/schemas/Error", (path, status)
    assert "400" in schema["paths"]["/loras"]["post"]["responses"]


def test_data_dir_removed_while_running_is_recreated(backend_server):
    with httpx.Client(base_url=backend_server.url, timeout=30) as client:
        assert client.post("/flux-dev", json={"prompt": "before", **SMALL}).status_code == 200
        shutil.rmtree(backend_server.data_dir)
        r = client.post("/flux-dev", json={"prompt": "after", **SMALL})
        assert r.status_code == 200, r.text
    request_id = r.headers["x-request-id"]
    record = json.loads((backend_server.data_dir / "jobs" / f"{request_id}.json").read_text())
    assert record["status"] == "succeeded"
    assert (backend_server.data_dir / "outputs").is_dir() and record["outputs"]
