"""Where the tests find ../shared (beside the repository, as CI clones it), and the
real face photos in it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
FACES_DIR = SHARED_DIR / "faces"


@pytest.fixture(scope="session")
def faces() -> Path:
    if not (FACES_DIR / "obama_1.jpg").is_file():
        pytest.skip(f"needs the real face photos in {FACES_DIR} (../shared/faces beside the repository)")
    return FACES_DIR
