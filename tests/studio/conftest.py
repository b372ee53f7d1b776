"""Studio fixtures: the Gradio app launched on a free loopback port, against the
ryla-backend fixture (over the ComfyUI test double) or against no backend at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.builders import free_port, safetensors_bytes
from tests.shared_files import REPO_ROOT
from ui.studio.app import build_app, launch_options
from ui.client import RylaClient
from ui.studio.history import History

OUTPUT_DIR = REPO_ROOT / "test-output" / "studio"


@dataclass
class Studio:
    url: str
    history: History
    client: RylaClient




def closed_port_url() -> str:
    """A loopback URL where nothing listens: a backend that is down."""
    return f"http://127.0.0.1:{free_port()}"


# Gradio's launch() asks the new server for its page (a HEAD, 5 tries of 3 s) and gives up
# with this ValueError when a loaded machine answers later; the server itself is fine, so
# the launch is asked again a few times before the test fails.
LAUNCH_TRIES = 3


def launch_on_a_free_port(app: Any, history: History) -> int:
    for attempt in range(1, LAUNCH_TRIES + 1):
        port = free_port()
        try:
            app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                       quiet=True, **launch_options(history))
            return port
        except ValueError as exc:
            if "localhost is not accessible" not in str(exc) or attempt == LAUNCH_TRIES:
                raise
            app.close()
    raise AssertionError("unreachable")


@contextmanager
def running_studio(backend_url: str, data_dir: Path, **build: Any) -> Iterator[Studio]:
    # A short retry budget, as ryla-studio uses, so that "backend down" answers quickly.
    client = RylaClient(backend_url, retry_budget=1.0, timeout=120.0)
    history = History(data_dir)
    app = build_app(client, history, status_every=5.0, **build)
    app.queue()
    port = launch_on_a_free_port(app, history)
    try:
        yield Studio(f"http://127.0.0.1:{port}/", history, client)
    finally:
        app.close()
        client.close()


@pytest.fixture(scope="module")
def studio(backend_server_session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    with running_studio(backend_server_session.url, tmp_path_factory.mktemp("studio-data")) as s:
        yield s


@pytest.fixture(scope="module")
def offline_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    with running_studio(closed_port_url(), tmp_path_factory.mktemp("studio-offline")) as s:
        yield s


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR


def write_safetensors(path: Path) -> Path:
    """A small, well-formed safetensors file at `path`."""
    path.write_bytes(safetensors_bytes(1))
    return path
