"""Helpers for the `ryla` tests: run the CLI in-process and capture what it printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ui.cli.main import main


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def ryla(capsys: pytest.CaptureFixture[str], tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """`ryla(*argv)` in a scratch working directory (outputs/ lands there), without the
    developer's RYLA_* environment leaking in."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RYLA_BACKEND_URL", raising=False)
    monkeypatch.delenv("RYLA_API_TOKEN", raising=False)

    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run




@pytest.fixture
def reference_face(faces: Path) -> Path:
    return faces / "obama_1.jpg"
