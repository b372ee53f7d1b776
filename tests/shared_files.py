"""The test data kept in the repository (tests/data/): the real face photos, and what a
real upstream ComfyUI answered (each folder's README says where it came from)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "tests" / "data"
FACES_DIR = DATA_DIR / "faces"
COMFYUI_RECORDING_DIR = DATA_DIR / "comfyui"
API_EXAMPLES = COMFYUI_RECORDING_DIR / "api_examples.md"


@pytest.fixture(scope="session")
def faces() -> Path:
    return FACES_DIR
