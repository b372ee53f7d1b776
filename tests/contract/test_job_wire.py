"""What the ComfyUI client relies on for previews and outputs, answered alike by the test
double and a real ComfyUI (RYLA_REAL_COMFYUI_URL): the feature-flag handshake that makes
previews carry their prompt id, and a save outside the output folder refused."""

from __future__ import annotations

import json
import secrets
import uuid

import requests
import websocket

from tests.builders import BLUR_CHAIN_SAVE, blur_chain
from tests.contract.conftest import Target

GUARD_S = 60  # a guard against a stuck server, not a measurement
TERMINAL = {"execution_success", "execution_error", "execution_interrupted"}


def _socket(target: Target, client_id: str) -> websocket.WebSocket:
    socket = websocket.create_connection(f"{target.ws_url}?clientId={client_id}",
                                         timeout=GUARD_S)
    assert json.loads(socket.recv())["type"] == "status"
    return socket


def _next_json(socket: websocket.WebSocket) -> dict:
    while isinstance(raw := socket.recv(), bytes):
        pass  # a preview frame
    return json.loads(raw)


def test_feature_flags_asking_for_preview_metadata_are_answered(target: Target) -> None:
    socket = _socket(target, uuid.uuid4().hex)
    try:
        socket.send(json.dumps({"type": "feature_flags",
                                "data": {"supports_preview_metadata": True}}))
        while (message := _next_json(socket))["type"] != "feature_flags":
            pass
    finally:
        socket.close()
    assert message["data"]["supports_preview_metadata"] is True


def test_a_save_outside_the_output_folder_is_refused(target: Target) -> None:
    prefix = f"../ryla-escape-{secrets.token_hex(4)}"
    client_id = uuid.uuid4().hex
    socket = _socket(target, client_id)
    try:
        graph = blur_chain(0, 8, prefix, secrets.randbelow(1 << 24))
        response = requests.post(f"{target.url}/prompt", timeout=GUARD_S,
                                 json={"prompt": graph, "client_id": client_id})
        assert response.status_code == 200, response.text  # refused while running, not before
        prompt_id = response.json()["prompt_id"]
        while not ((message := _next_json(socket))["type"] in TERMINAL
                   and message["data"].get("prompt_id") == prompt_id):
            pass
    finally:
        socket.close()
    assert message["type"] == "execution_error"
    assert message["data"]["node_id"] == BLUR_CHAIN_SAVE
    assert message["data"]["exception_message"].startswith(
        "**** ERROR: Saving image outside the output folder is not allowed.")
