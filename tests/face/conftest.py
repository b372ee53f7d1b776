"""Fixtures for the face-consistency tests: the shared real photos and one loaded scorer."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ui.face.consistency import FaceScorer

@pytest.fixture(scope="session")
def scorer() -> FaceScorer:
    # Loading the dlib models takes about a second: once per test session.
    return FaceScorer()


@pytest.fixture()
def no_face_png(tmp_path: Path) -> Path:
    """A generated image with no face in it: a gradient with a flat block."""
    img = Image.linear_gradient("L").resize((1024, 1024)).convert("RGB")
    img.paste((30, 120, 200), (300, 300, 700, 700))
    path = tmp_path / "no_face.png"
    img.save(path)
    return path
