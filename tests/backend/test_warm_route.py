"""POST /warm and /health's `gpu` on `ryla-backend`: it does not start ComfyUI, so /warm
reports whether the ComfyUI it talks to answers (warm) or not (cold, ready time unknown),
and runs nothing there."""

from __future__ import annotations

import httpx

from tests.backend.helpers import error_of
from tests.builders import free_port

TOKEN = "s3cret-token"


def test_warm_reports_a_reachable_comfyui_as_warm_and_queues_nothing(backend_server) -> None:
    response = httpx.post(f"{backend_server.url}/warm")
    assert response.status_code == 202
    assert response.json() == {"gpu": "warm", "ready_in_s": 0}
    assert httpx.get(f"{backend_server.url}/health").json()["gpu"] == "warm"
    assert backend_server.double.jobs == []  # only asked, never ran a prompt


def test_warm_reports_an_unreachable_comfyui_as_cold(backend_server_factory,
                                                    comfyui_double_session) -> None:
    server = backend_server_factory(comfyui_double_session,
                                    comfyui_url=f"http://127.0.0.1:{free_port()}")
    response = httpx.post(f"{server.url}/warm")
    assert response.status_code == 202
    assert response.json() == {"gpu": "cold", "ready_in_s": None}
    assert httpx.get(f"{server.url}/health").json()["gpu"] == "cold"


def test_warm_needs_the_token_as_other_routes_do(backend_server_factory,
                                                 comfyui_double_session) -> None:
    server = backend_server_factory(comfyui_double_session, api_token=TOKEN)
    refused = httpx.post(f"{server.url}/warm")
    assert refused.status_code == 401 and error_of(refused)["code"] == "unauthorized"
    allowed = httpx.post(f"{server.url}/warm", headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 202 and allowed.json()["gpu"] == "warm"


def test_get_on_warm_is_405_naming_post(backend_server_session) -> None:
    response = httpx.get(f"{backend_server_session.url}/warm")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert error_of(response)["code"] == "method_not_allowed"
