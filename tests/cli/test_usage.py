"""Bad usage exits 2 with a message naming the option, before anything is sent."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.builders import free_port
from tests.cli.conftest import Run
from ui.cli.parser import build_parser
from ui.cli.runs import latency_stats
from workflows.registry import ROUTES

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def nowhere() -> str:
    """A URL nothing listens on: exit 2 (not 1) proves validation ran before any request."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(("argv", "option", "detail"), [
    (["flux-dev", "--prompt", "x", "--width", "100"], "--width", "256"),
    (["flux-dev", "--prompt", "x", "--height", "300"], "--height", "multiple of 16"),
    (["flux", "--prompt", "x", "--steps", "101"], "--steps", "100"),
    (["flux-dev", "--prompt", "x", "--guidance", "25"], "--guidance", "20"),
    (["flux-dev", "--prompt", "x", "--seed", "-1"], "--seed", "0"),
    (["flux-dev", "--prompt", "   "], "--prompt", "blank"),
    (["flux-lora", "--prompt", "x", "--lora-id", "a b"], "--lora-id", "pattern"),
    (["flux-lora", "--prompt", "x", "--lora-id", "a", "--lora-strength", "1.5"], "--lora-strength", "1.0"),
    (["wan2", "--prompt", "x", "--frames", "6"], "--frames", "4k+1"),
    (["z-image", "--prompt", "x", "--steps", "51"], "--steps", "50"),
])
def test_out_of_range_fields_exit_2_naming_field_and_range(
        ryla: Callable[..., Run], nowhere: str, argv: list[str], option: str, detail: str) -> None:
    result = ryla(*argv, "--backend-url", nowhere, "--retry-budget", "0")
    assert result.code == 2, result.err
    line = next(line for line in result.err.splitlines() if "error:" in line and option in line)
    assert detail in line
    assert "usage:" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("argv", [
    ["flux-dev"],                                        # --prompt is required
    ["flux-dev", "--prompt", "x", "--steps", "many"],    # not a number
    ["flux-dev", "--prompt", "x", "--format", "gif"],    # not a choice
    ["flux-dev", "--prompt", "x", "--no-such-option"],
    ["flux-lora", "--prompt", "x"],                      # --lora-id is required
    ["flux-instantid", "--prompt", "x"],                 # --reference-image is required
    ["z-image", "--prompt", "x", "--guidance", "3"],     # Z-Image-Turbo has no guidance
    ["bench", "--concurrency", "0"],
    ["sheet", "--reference", "r.jpg", "--threshold", "3"],
    ["no-such-command"],
    [],
])
def test_argparse_errors_exit_2(ryla: Callable[..., Run], argv: list[str]) -> None:
    result = ryla(*argv)
    assert result.code == 2
    assert "error:" in result.err


def test_missing_reference_file_is_bad_usage(ryla: Callable[..., Run], nowhere: str) -> None:
    result = ryla("flux-instantid", "--prompt", "x", "--reference-image", "no/such/face.jpg",
                  "--backend-url", nowhere)
    assert result.code == 2
    assert "no/such/face.jpg" in result.err


def test_success_rate_checks_fields_against_the_endpoint(ryla: Callable[..., Run], nowhere: str) -> None:
    result = ryla("success-rate", "--endpoint", "flux", "--lora-id", "anna", "--backend-url", nowhere)
    assert result.code == 2
    assert "--lora-id" in result.err and "not an option" in result.err


def test_empty_prompts_file_is_bad_usage(ryla: Callable[..., Run], nowhere: str, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# only a comment\n\n")
    result = ryla("success-rate", "--prompts", str(prompts), "--backend-url", nowhere)
    assert result.code == 2
    assert "holds no prompts" in result.err


def test_every_command_has_help_with_an_example(ryla: Callable[..., Run]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {route.command for route in ROUTES.values()} | {"loras", "models", "success-rate", "bench", "sheet", "score", "jobs"} == set(commands)
    for name in commands:
        result = ryla(name, "--help")
        assert result.code == 0
        assert "example:" in result.out and f"ryla {name}" in result.out.split("example:")[1]
        assert "--json" in result.out


def test_console_script_reports_bad_usage_without_a_traceback(nowhere: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ui.cli", "flux-dev", "--prompt", "x", "--width", "100",
         "--backend-url", nowhere],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert "--width" in completed.stderr and "Traceback" not in completed.stderr


def test_latency_stats_nearest_rank_p95() -> None:
    samples = [float(i) for i in range(20, 0, -1)]  # 1..20, unsorted
    stats = latency_stats(samples)
    assert stats["min"] == 1.0 and stats["max"] == 20.0
    assert stats["mean"] == pytest.approx(10.5)
    assert stats["median"] == pytest.approx(10.5)
    assert stats["p95"] == 19.0  # ceil(0.95 * 20) = 19th smallest
    assert latency_stats([2.5])["p95"] == 2.5
    assert latency_stats([])["mean"] is None
