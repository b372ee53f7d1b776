"""The LoRA store: uploads checked as safetensors, metadata kept, ids kept off paths."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

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
    (b"", "header too small"),
    (b"PK\x03\x04 a zip file, not safetensors", "header too large"),
    (struct.pack("<Q", 5) + b"nope!", "invalid JSON"),
    (_header([1, 2]), "invalid JSON"),
    (_header({"__metadata__": {}}), "no tensors"),
    (_header({"w": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}) + bytes(4), "F99"),
    (_header({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 400]}}) + bytes(4), "offset"),
    (_header({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}) + bytes(9),
     "not fully covered"),
    # a list where a dtype name belongs (was a 500: unhashable type)
    (_header({"a": {"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}}) + bytes(8),
     "invalid JSON"),
    # a shape of 10^24 elements over 8 bytes, and a boolean offset (were accepted)
    (_header({"a": {"dtype": "F32", "shape": [10**12, 10**12], "data_offsets": [0, 8]}})
     + bytes(8), "overflow"),
    (_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [False, 8]}}) + bytes(8),
     "boolean"),
    # a shape that does not fill its data offsets
    (_header({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}) + bytes(8),
     "invalid shape"),
])
def test_non_safetensors_uploads_are_400(backend_server_session, data, words):
    r = upload(backend_server_session, "bad-file", data)
    assert r.status_code == 400
    err = error_of(r)
    assert err["field"] == "file" and words in err["message"], err["message"]
    assert not (backend_server_session.lora_dir / "character-bad-file.safetensors").exists()
    assert not list(backend_server_session.lora_dir.glob(".upload-*"))


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


def test_check_safetensors_accepts_a_real_file(tmp_path):
    path = tmp_path / "real.safetensors"
    path.write_bytes(safetensors_bytes(4))
    check_safetensors(path)


def _assert_metadata_describes_the_stored_file(store: LoraStore, lora_id: str) -> None:
    info = store.get(lora_id)
    stored = (store.directory / info.file).read_bytes()
    assert info.size_bytes == len(stored)
    assert info.sha256 == hashlib.sha256(stored).hexdigest()
    # the trigger word names the upload whose bytes were kept
    assert info.trigger_word == f"T{len(stored)}"


def test_concurrent_uploads_of_one_id_keep_file_and_metadata_together(tmp_path):
    store = LoraStore(tmp_path)
    uploads = [safetensors_bytes(n) for n in range(1, 21)]
    for _ in range(3):
        start = threading.Barrier(len(uploads))

        def upload_one(data: bytes) -> None:
            start.wait()
            store.save("race", io.BytesIO(data), f"T{len(data)}")

        with ThreadPoolExecutor(len(uploads)) as pool:
            for done in [pool.submit(upload_one, data) for data in uploads]:
                done.result()  # raises what the upload raised
        _assert_metadata_describes_the_stored_file(store, "race")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "character-race.json", "character-race.safetensors"]


def test_twenty_concurrent_uploads_over_http_give_no_500(backend_server):
    uploads = [safetensors_bytes(n) for n in range(1, 21)]

    async def upload_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=backend_server.url, timeout=60) as client:
            return await asyncio.gather(*(
                client.post("/loras", data={"id": "race", "trigger_word": f"T{len(data)}"},
                            files={"file": ("f.safetensors", data)})
                for data in uploads))

    responses = asyncio.run(upload_all())
    assert [r.status_code for r in responses] == [200] * len(uploads), \
        [r.text for r in responses if r.status_code != 200]
    _assert_metadata_describes_the_stored_file(LoraStore(backend_server.lora_dir), "race")
    listed = httpx.get(f"{backend_server.url}/loras").json()
    assert listed == [LoraStore(backend_server.lora_dir).get("race").__dict__]
