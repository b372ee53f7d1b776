"""The optional bearer token: every route but /health needs it when it is set."""

from __future__ import annotations

import httpx
import pytest

from tests.backend.helpers import SMALL, error_of

TOKEN = "s3cret-token"


@pytest.fixture
def secured(backend_server_factory, comfyui_double_session):
    return backend_server_factory(comfyui_double_session, api_token=TOKEN)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}])
def test_missing_or_wrong_token_is_401(secured, headers):
    for method, path in (("GET", "/loras"), ("GET", "/models"), ("POST", "/flux-dev")):
        r = httpx.request(method, f"{secured.url}{path}", headers=headers,
                          json={"prompt": "x", **SMALL})
        assert r.status_code == 401, (path, r.text)
        err = error_of(r)
        assert err["code"] == "unauthorized" and "Bearer" in err["message"]
        assert TOKEN not in r.text


def test_right_token_passes_and_health_stays_open(secured):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{secured.url}/loras", headers=auth).status_code == 200
    r = httpx.post(f"{secured.url}/flux-dev", headers=auth, json={"prompt": "x", **SMALL}, timeout=30)
    assert r.status_code == 200, r.text
    assert httpx.get(f"{secured.url}/health").json()["status"] == "ok"


def test_settings_repr_hides_secrets(secured):
    assert TOKEN not in repr(secured.settings)
