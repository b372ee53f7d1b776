"""The LoRA store: uploads checked as safetensors, metadata kept, ids kept off paths."""

from __future__ import annotations

import hashlib
import io
import json
import struct

import httpx
import pytest

from backend.errors import InvalidRequest, LoraNotFound
from backend.lora_store import LoraStore, check_safetensors
from tests.backend.helpers import error_of
from tests.builders import safetensors_bytes


def upload(server, lora_id: str, data: bytes, trigger: str = "TRIG"):
    return httpx.post(f"{server.url}/loras", data={"id": lora_id, "trigger_word": trigger},
                      files={"file": ("f.safetensors", data)}, timeout=30)


def test_upload_stores_the_file_and_metadata_and_lists_it(backend_server):
    data = safetensors_bytes(3)
    r = upload(backend_server, "maya_01", data, "MAYA")
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["id"] == "maya_01" and info["trigger_word"] == "MAYA"
    assert info["size_bytes"] == len(data)
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["uploaded_at"]
    stored = backend_server.lora_dir / "character-maya_01.safetensors"
    assert stored.read_bytes() == data
    listed = httpx.get(f"{backend_server.url}/loras").json()
    assert listed == [info]


def test_reupload_replaces(backend_server):
    assert upload(backend_server, "same", safetensors_bytes(1), "OLD").status_code == 200
    assert upload(backend_server, "same", safetensors_bytes(2), "NEW").status_code == 200
    listed = httpx.get(f"{backend_server.url}/loras").json()
    assert [(x["id"], x["trigger_word"]) for x in listed] == [("same", "NEW")]


def _header(obj: object) -> bytes:
    raw = json.dumps(obj).encode()
    return struct.pack("<Q", len(raw)) + raw


@pytest.mark.parametrize("data, words", [
    (b"", "shorter than"),
    (b"PK\x03\x04 a zip file, not safetensors", "header length"),
    (struct.pack("<Q", 5) + b"nope!", "not JSON"),
    (_header([1, 2]), "not a JSON object"),
    (_header({"__metadata__": {}}), "no tensors"),
    (_header({"w": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}) + bytes(4), "dtype"),
    (_header({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 400]}}) + bytes(4), "offsets"),
    (_header({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}) + bytes(9), "cover"),
])
def test_non_safetensors_uploads_are_400(backend_server_session, data, words):
    r = upload(backend_server_session, "bad-file", data)
    assert r.status_code == 400
    err = error_of(r)
    assert err["field"] == "file" and words in err["message"], err["message"]
    assert not (backend_server_session.lora_dir / "character-bad-file.safetensors").exists()


def test_upload_without_a_file_is_400(backend_server_session):
    r = httpx.post(f"{backend_server_session.url}/loras", data={"id": "x"}, timeout=30)
    assert r.status_code == 400 and error_of(r)["field"] == "file"


def test_store_unit(tmp_path):
    store = LoraStore(tmp_path)
    with pytest.raises(LoraNotFound):
        store.get("ghost")
    for bad in ("../x", "/abs", "a.b", "", "x" * 65):
        with pytest.raises(InvalidRequest):
            store.get(bad)
    info = store.save("ok-id", io.BytesIO(safetensors_bytes()), "  TW  ")
    assert info.trigger_word == "TW"
    assert store.get("ok-id") == info
    assert [i.id for i in store.list()] == ["ok-id"]
    assert not list(tmp_path.glob("*.part"))


def test_check_safetensors_accepts_a_real_file():
    data = safetensors_bytes(4)
    check_safetensors(io.BytesIO(data), len(data))
