"""The contract tests' target: the ComfyUI test double always, and a real ComfyUI when
RYLA_REAL_COMFYUI_URL names one (started with ../shared/tools/real-comfyui.sh)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.comfyui_double.server import ComfyUIDouble
from tests.contract.recording import API_EXAMPLES

REAL_URL_ENV = "RYLA_REAL_COMFYUI_URL"


@dataclass
class Target:
    name: str
    url: str
    ws_url: str


@pytest.fixture(scope="session")
def recording_path() -> Path:
    if not API_EXAMPLES.is_file():
        pytest.skip(f"the ComfyUI recording {API_EXAMPLES} is missing: the contract tests "
                    f"need the shared/ folder cloned beside the repository")
    return API_EXAMPLES


@pytest.fixture(params=["double", pytest.param("real", marks=pytest.mark.real_comfyui)])
def target(request: pytest.FixtureRequest, tmp_path: Path,
           recording_path: Path) -> Iterator[Target]:
    if request.param == "real":
        url = os.environ.get(REAL_URL_ENV, "").rstrip("/")
        if not url:
            pytest.skip(f"no real ComfyUI: set {REAL_URL_ENV} to one started with "
                        "../shared/tools/real-comfyui.sh")
        ws_scheme = "wss" if url.startswith("https") else "ws"
        yield Target("real", url, f"{ws_scheme}://{url.split('://', 1)[1]}/ws")
        return
    double = ComfyUIDouble(tmp_path / "comfyui").start()
    # The recording was made with no model weights installed.
    double.set_installed({})
    try:
        yield Target("double", double.url, double.ws_url)
    finally:
        double.stop()
