"""Each request recorded from a real ComfyUI gets the same answer (status, content type,
JSON shape and error details) from the target: the test double, or a real ComfyUI."""

from __future__ import annotations

import copy
import io
import json
import re
import time
import uuid
from typing import Any

import pytest
import requests
import websocket
from PIL import Image

from tests.contract.conftest import Target
from tests.contract.recording import API_EXAMPLES, Exchange, exchange, load_exchanges
from tests.contract.shapes import assert_same_shape

HTTP_TIMEOUT = 30  # a guard against a stuck server, not a measurement
TERMINAL = {"execution_success", "execution_error", "execution_interrupted"}


def _recorded_prompt_posts() -> list[str]:
    if not API_EXAMPLES.is_file():
        return ["(recording missing)"]
    return [e.title for e in load_exchanges()
            if e.method == "POST" and e.path == "/prompt" and e.status != 200]


def _graph_for(item: Exchange, exchanges: list[Exchange]) -> Any:
    """The recorded request body; the recording abbreviates one graph in words."""
    body = copy.deepcopy(item.request_json)
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        match = re.fullmatch(r"\(flux graph with node (\w+) class_type (\w+)\)", prompt)
        assert match, f"unknown abbreviation in the recording: {prompt}"
        flux = exchange("Valid Flux Dev graph", exchanges).request_json["prompt"]
        body["prompt"] = copy.deepcopy(flux)
        body["prompt"][match.group(1)]["class_type"] = match.group(2)
    return body


def _content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "")


def _assert_answer(item: Exchange, response: requests.Response) -> None:
    assert response.status_code == item.status, response.text[:500]
    assert _content_type(response) == item.content_type
    if item.answer is not None:
        assert_same_shape(item.answer, response.json(), item.answer_complete)
    elif item.answer_text and item.content_type.startswith("text/"):
        assert response.text.strip() == item.answer_text.strip()


@pytest.mark.parametrize("title", _recorded_prompt_posts())
def test_rejected_prompt_gets_the_recorded_answer(target: Target, title: str) -> None:
    exchanges = load_exchanges()
    item = exchange(title, exchanges)
    if item.raw_body is not None:
        response = requests.post(f"{target.url}/prompt", data=item.raw_body.encode(),
                                 timeout=HTTP_TIMEOUT)
    else:
        response = requests.post(f"{target.url}/prompt", json=_graph_for(item, exchanges),
                                 timeout=HTTP_TIMEOUT)
    _assert_answer(item, response)


def _png(size: tuple[int, int]) -> bytes:
    image = Image.new("RGB", size)
    image.putdata([(x * 7 % 256, y * 11 % 256, (x + y) % 256)
                   for y in range(size[1]) for x in range(size[0])])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _upload(target: Target, name: str, data: bytes) -> requests.Response:
    return requests.post(f"{target.url}/upload/image",
                         files={"image": (name, data, "image/png")},
                         data={"overwrite": "true"}, timeout=HTTP_TIMEOUT)


def _run_recorded_job(target: Target, job: Exchange) -> tuple[str, list[dict]]:
    """Queue the recorded graph with a fresh client id; (prompt id, messages to the end)."""
    client_id = str(uuid.uuid4())
    socket = websocket.create_connection(f"{target.ws_url}?clientId={client_id}",
                                         timeout=HTTP_TIMEOUT)
    try:
        messages = [json.loads(socket.recv())]
        body = {"prompt": job.request_json["prompt"], "client_id": client_id}
        response = requests.post(f"{target.url}/prompt", json=body, timeout=HTTP_TIMEOUT)
        _assert_answer(job, response)
        prompt_id = response.json()["prompt_id"]
        while not (messages[-1]["type"] in TERMINAL
                   and messages[-1]["data"].get("prompt_id") == prompt_id):
            raw = socket.recv()
            if isinstance(raw, str):  # binary frames are previews
                messages.append(json.loads(raw))
    finally:
        socket.close()
    return prompt_id, messages


def _assert_messages(recorded: list[dict], actual: list[dict]) -> None:
    assert [m["type"] for m in actual] == [m["type"] for m in recorded]
    for want, got in zip(recorded, actual):
        assert_same_shape(want, got, complete=True, path=want["type"])


def _history(target: Target, prompt_id: str) -> requests.Response:
    """GET /history/<id> once the entry is there: upstream's worker sends the job's last
    message before it files the job in the history (main.py: execute, then
    task_done), so right after execution_success the entry may not exist yet."""
    give_up = time.monotonic() + HTTP_TIMEOUT
    while True:
        response = requests.get(f"{target.url}/history/{prompt_id}", timeout=HTTP_TIMEOUT)
        if response.status_code != 200 or response.json() or time.monotonic() > give_up:
            return response
        time.sleep(0.05)


def _assert_history(target: Target, recorded: Exchange, prompt_id: str) -> dict:
    response = _history(target, prompt_id)
    assert response.status_code == recorded.status
    assert _content_type(response) == recorded.content_type
    (recorded_entry,) = recorded.answer.values()
    assert list(response.json()) == [prompt_id]
    entry = response.json()[prompt_id]
    # prompt = [number, prompt_id, graph, extra, outputs]: the first two differ per run.
    number, entry_id = entry["prompt"][:2]
    assert isinstance(number, int) and entry_id == prompt_id
    compared = copy.deepcopy(entry)
    compared["prompt"][:2] = recorded_entry["prompt"][:2]
    assert_same_shape(recorded_entry, compared, complete=True)
    return entry


def test_recorded_job_runs_as_recorded(target: Target) -> None:
    exchanges = load_exchanges()
    upload = exchange("Upload an input image", exchanges)
    source = _png((32, 24))
    _assert_answer(upload, _upload(target, "ref.png", source))

    view = exchange("Read the uploaded image back", exchanges)
    response = requests.get(f"{target.url}{view.path}", timeout=HTTP_TIMEOUT)
    assert (response.status_code, _content_type(response)) == (view.status, view.content_type)
    assert response.content == source

    prompt_id, messages = _run_recorded_job(target, exchange("Queue a model-free graph",
                                                             exchanges))
    _assert_messages(exchange("WebSocket messages for that job", exchanges).messages, messages)
    entry = _assert_history(target, exchange("History of the finished job", exchanges),
                            prompt_id)

    image = entry["outputs"]["3"]["images"][0]
    fetch = exchange("Fetch the output", exchanges)
    response = requests.get(f"{target.url}/view", timeout=HTTP_TIMEOUT, params={
        "filename": image["filename"], "subfolder": image["subfolder"], "type": image["type"]})
    assert (response.status_code, _content_type(response)) == (fetch.status, fetch.content_type)
    output = Image.open(io.BytesIO(response.content)).convert("RGB")
    original = Image.open(io.BytesIO(source)).convert("RGB")
    assert output.size == (32, 24)
    # ImageInvert really ran on the uploaded pixels.
    assert output.getpixel((5, 3)) == tuple(255 - c for c in original.getpixel((5, 3)))


def test_failing_job_reports_as_recorded(target: Target) -> None:
    exchanges = load_exchanges()
    # Cut inside the IHDR chunk: PIL fails opening it with "Truncated File Read".
    assert _upload(target, "corrupt.png", _png((8, 8))[:20]).status_code == 200
    prompt_id, messages = _run_recorded_job(target, exchange("A job that fails while executing",
                                                             exchanges))
    _assert_messages(exchange("WebSocket messages for the failing job", exchanges).messages,
                     messages)
    _assert_history(target, exchange("History of the failed job", exchanges), prompt_id)


@pytest.mark.parametrize("title", ["Queue", "Interrupt", "Model folders", "Files in one folder",
                                   "History of an unknown id"])
def test_simple_route_answers_as_recorded(target: Target, title: str) -> None:
    item = exchange(title)
    call = requests.post if item.method == "POST" else requests.get
    response = call(f"{target.url}{item.path}", timeout=HTTP_TIMEOUT)
    _assert_answer(item, response)
    if title == "Interrupt":
        assert response.content == b""
