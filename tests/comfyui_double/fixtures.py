"""pytest fixtures for the ComfyUI test double (a test tool only; see __init__.py).

`comfyui_double` is a fresh double for one test; `comfyui_double_session` is one double
shared by the whole session (a test that changes it calls `.reset()` first).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.comfyui_double.server import ComfyUIDouble


@pytest.fixture
def comfyui_double(tmp_path: Path) -> Iterator[ComfyUIDouble]:
    double = ComfyUIDouble(tmp_path / "comfyui").start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture(scope="session")
def comfyui_double_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyUIDouble]:
    double = ComfyUIDouble(tmp_path_factory.mktemp("comfyui")).start()
    try:
        yield double
    finally:
        double.stop()
