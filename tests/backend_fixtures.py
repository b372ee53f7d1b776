"""Backend server fixtures: `ryla-backend`'s app served by uvicorn in a thread, on a
free loopback port, against the ComfyUI test double, with temporary data and LoRA dirs.

- `backend_server`: a fresh double and server for one test;
- `backend_server_session`: one shared by the session (fast; tests must not change it);
- `backend_server_factory`: `make(double=None, runner=None, **settings_overrides)` for
  tests that need other settings (a short deadline, a token, a small body limit, the
  data dir of an earlier server) or another GraphRunner (a scripted one).
Each has `.url`, `.data_dir`, `.lora_dir`, `.double`, `.settings`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from backend.api import create_app
from backend.graph_runner import GraphRunner
from backend.server import server_config
from backend.settings import Settings
from tests.comfyui_double import ComfyUIDouble

TEST_DEADLINE_S = 20.0
START_TIMEOUT_S = 30.0


class BackendServer:
    def __init__(self, double: ComfyUIDouble, base_dir: Path, runner: GraphRunner | None = None,
                 **overrides: Any) -> None:
        self.double = double
        self.data_dir = base_dir / "data"
        self.lora_dir = base_dir / "loras"
        # ComfyUI's models directory, shared as on Modal (one Volume, one path for both):
        # the backend reads there the files ComfyUI does not list (antelopev2's .onnx).
        self.models_dir = double.models_dir
        self.settings = Settings(**{"comfyui_url": double.url, "models_dir": self.models_dir,
                                    "lora_dir": self.lora_dir, "data_dir": self.data_dir,
                                    "deadline_s": TEST_DEADLINE_S, **overrides})
        # The double's loras folder lists this LoRA store's files, as the deployed ComfyUI
        # does through extra_model_paths.yaml (several servers may share one double).
        double.add_model_dir("loras", self.settings.lora_dir)
        self.app = create_app(self.settings, runner)
        # served as `ryla-backend` serves it (its limits on request heads)
        config = server_config(self.app, host="127.0.0.1", port=0, log_level="warning",
                               lifespan="on", timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True,
                                        name="backend-server")
        self.url = ""

    def start(self) -> "BackendServer":
        self._thread.start()
        give_up = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > give_up:
                raise RuntimeError("the backend server did not start; see the log above")
            time.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


@pytest.fixture
def backend_server(comfyui_double: ComfyUIDouble, tmp_path: Path) -> Iterator[BackendServer]:
    server = BackendServer(comfyui_double, tmp_path / "backend").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def backend_server_session(comfyui_double_session: ComfyUIDouble,
                           tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendServer]:
    server = BackendServer(comfyui_double_session, tmp_path_factory.mktemp("backend")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def backend_server_factory(request: pytest.FixtureRequest,
                           tmp_path: Path) -> Iterator[Callable[..., BackendServer]]:
    started: list[BackendServer] = []

    def make(double: ComfyUIDouble | None = None, runner: GraphRunner | None = None,
             **overrides: Any) -> BackendServer:
        double = double or request.getfixturevalue("comfyui_double")
        server = BackendServer(double, tmp_path / f"backend{len(started)}", runner,
                               **overrides).start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()
