"""The generation subcommands against ryla-backend over the ComfyUI test double."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.builders import free_port, safetensors_bytes
from tests.cli.conftest import Run
from ui.client import sniff_content_type
from workflows.render import render_workflow
from workflows.request_models import FluxSchnellRequest


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()  # decodes every byte: a truncated file fails here
        return image.size


def test_flux_dev_writes_a_timestamped_jpeg_under_outputs(ryla: Callable[..., Run], backend_server_session) -> None:
    result = ryla("flux-dev", "--backend-url", backend_server_session.url, "--prompt", "A beach at sunset",
                  "--width", "512", "--height", "384", "--steps", "2")
    assert result.code == 0, result.err
    files = list(Path("outputs").iterdir())
    assert len(files) == 1
    assert re.fullmatch(r"flux-dev-\d{8}-\d{6}\.jpg", files[0].name)
    assert image_size(files[0]) == (512, 384)
    assert str(files[0]) in result.out


def test_json_output_parses_and_names_the_file(ryla: Callable[..., Run], backend_server_session,
                                               tmp_path: Path) -> None:
    target = tmp_path / "out" / "cat.png"
    result = ryla("flux", "--backend-url", backend_server_session.url, "--prompt", "A cat", "--seed", "1234",
                  "--format", "png", "--width", "256", "--height", "256", "--output", str(target), "--json")
    assert result.code == 0, result.err
    payload = result.json()
    assert payload["files"] == [str(target)]
    assert payload["seed"] == 1234
    assert payload["route"] == "/flux"
    assert payload["content_type"] == "image/png"
    assert payload["request_id"]
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert image_size(target) == (256, 256)


def test_output_directory_gets_a_timestamped_file(ryla: Callable[..., Run], backend_server_session,
                                                  tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    first = ryla("flux", "--backend-url", backend_server_session.url, "--prompt", "A", "--width", "256",
                 "--height", "256", "--output", str(folder), "--json")
    second = ryla("flux", "--backend-url", backend_server_session.url, "--prompt", "B", "--width", "256",
                  "--height", "256", "--output", str(folder), "--json")
    assert first.code == second.code == 0
    paths = {first.json()["files"][0], second.json()["files"][0]}
    assert len(paths) == 2  # two runs in the same second do not overwrite each other
    assert all(Path(p).parent == folder and Path(p).is_file() for p in paths)


def test_flux_instantid_reads_the_reference_file(ryla: Callable[..., Run], backend_server_session,
                                                 reference_face: Path) -> None:
    result = ryla("flux-instantid", "--backend-url", backend_server_session.url, "--prompt", "A headshot",
                  "--reference-image", str(reference_face), "--method", "pulid", "--width", "512",
                  "--height", "512", "--steps", "2", "--json")
    assert result.code == 0, result.err
    assert image_size(Path(result.json()["files"][0])) == (512, 512)
    # The reference reached ComfyUI as an input image for the LoadImage node.
    assert backend_server_session.double.input_images()


def test_z_image_writes_a_draft_with_its_own_defaults(ryla: Callable[..., Run], backend_server_session,
                                                      tmp_path: Path) -> None:
    target = tmp_path / "fox.png"
    result = ryla("z-image", "--backend-url", backend_server_session.url, "--prompt", "A red fox, draft",
                  "--negative-prompt", "blurry", "--seed", "90417", "--width", "256", "--height", "320",
                  "--format", "png", "--output", str(target), "--json")
    assert result.code == 0, result.err
    payload = result.json()
    assert (payload["route"], payload["seed"], payload["files"]) == ("/z-image", 90417, [str(target)])
    assert image_size(target) == (256, 320)
    (job,) = [j for j in backend_server_session.double.jobs  # the double is shared: match both
              if any(n["inputs"].get("seed") == 90417 for n in j.graph.values())
              and any(n["inputs"].get("text") == "A red fox, draft" for n in j.graph.values())]
    sampler = next(n["inputs"] for n in job.graph.values() if n["class_type"] == "KSampler")
    assert (sampler["steps"], sampler["cfg"]) == (8, 1.0)  # the request model's default, no guidance


def test_wan2_writes_a_video(ryla: Callable[..., Run], backend_server_session) -> None:
    result = ryla("wan2", "--backend-url", backend_server_session.url, "--prompt", "Waves", "--width", "256",
                  "--height", "256", "--frames", "5", "--steps", "2", "--json")
    assert result.code == 0, result.err
    path = Path(result.json()["files"][0])
    data = path.read_bytes()
    assert sniff_content_type(data) in ("image/webp", "video/mp4", "video/webm")
    assert path.suffix in (".webp", ".mp4", ".webm")
    assert result.json()["content_type"] == sniff_content_type(data)


def test_workflow_runs_an_api_format_graph(ryla: Callable[..., Run], backend_server_session,
                                           tmp_path: Path) -> None:
    graph = render_workflow("flux-schnell", FluxSchnellRequest(prompt="A lighthouse", width=256, height=256),
                            seed=5)
    graph_file = tmp_path / "graph.json"
    graph_file.write_text(json.dumps(graph))
    result = ryla("workflow", "--backend-url", backend_server_session.url, "--workflow", str(graph_file), "--json")
    assert result.code == 0, result.err
    assert image_size(Path(result.json()["files"][0])) == (256, 256)


def test_workflow_in_ui_format_is_bad_usage(ryla: Callable[..., Run], tmp_path: Path) -> None:
    graph_file = tmp_path / "ui.json"
    graph_file.write_text(json.dumps({"nodes": [], "links": []}))
    result = ryla("workflow", "--workflow", str(graph_file), "--backend-url", "http://127.0.0.1:9")
    assert result.code == 2
    assert "Save (API Format)" in result.err


def test_flux_lora_with_an_uploaded_lora(ryla: Callable[..., Run], backend_server, tmp_path: Path) -> None:
    lora = tmp_path / "anna.safetensors"
    lora.write_bytes(safetensors_bytes())
    upload = ryla("loras", "upload", str(lora), "--id", "anna", "--trigger-word", "ryla_anna",
                  "--backend-url", backend_server.url, "--json")
    assert upload.code == 0, upload.err
    listed = ryla("loras", "--backend-url", backend_server.url, "--json")
    assert listed.code == 0
    assert [item["id"] for item in listed.json()] == ["anna"]
    table = ryla("loras", "list", "--backend-url", backend_server.url)
    assert "anna" in table.out and "ryla_anna" in table.out
    result = ryla("flux-lora", "--backend-url", backend_server.url, "--prompt", "ryla_anna in a cafe",
                  "--lora-id", "anna", "--width", "256", "--height", "256", "--steps", "2", "--json")
    assert result.code == 0, result.err
    assert image_size(Path(result.json()["files"][0])) == (256, 256)


def test_unknown_lora_exits_1_and_names_it(ryla: Callable[..., Run], backend_server_session) -> None:
    result = ryla("flux-lora", "--backend-url", backend_server_session.url, "--prompt", "x",
                  "--lora-id", "nobody_here", "--width", "256", "--height", "256")
    assert result.code == 1
    assert "nobody_here" in result.err
    assert "lora_not_found" in result.err
    assert "Traceback" not in result.err + result.out
    assert not Path("outputs").exists()


def test_unknown_lora_with_json_prints_the_error_object(ryla: Callable[..., Run], backend_server_session) -> None:
    result = ryla("flux-lora", "--backend-url", backend_server_session.url, "--prompt", "x",
                  "--lora-id", "ghost", "--json")
    assert result.code == 1
    error = result.json()["error"]
    # the job failed; its error carries what the synchronous route would have answered
    assert (error["status"], error["code"], error["field"]) == (404, "lora_not_found", "lora_id")
    assert "ghost" in error["message"]


def test_a_failed_comfyui_job_exits_1_with_its_message(ryla: Callable[..., Run], backend_server) -> None:
    backend_server.double.fail_next("CUDA out of memory while sampling")
    result = ryla("flux", "--backend-url", backend_server.url, "--prompt", "x", "--width", "256", "--height", "256")
    assert result.code == 1
    assert "CUDA out of memory while sampling" in result.err
    assert "Traceback" not in result.err


def test_unreachable_backend_exits_1_without_a_traceback(ryla: Callable[..., Run]) -> None:

    result = ryla("flux", "--backend-url", f"http://127.0.0.1:{free_port()}", "--retry-budget", "0.3",
                  "--prompt", "x")
    assert result.code == 1
    assert "backend_unreachable" in result.err and "ryla-backend" in result.err
    assert "Traceback" not in result.err


def test_token_from_the_environment_is_sent_and_never_printed(
        ryla: Callable[..., Run], backend_server_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "tok-5f2c9a-very-secret"
    server = backend_server_factory(api_token=token)
    refused = ryla("flux", "--backend-url", server.url, "--prompt", "x", "--width", "256", "--height", "256")
    assert refused.code == 1 and "unauthorized" in refused.err
    monkeypatch.setenv("RYLA_API_TOKEN", token)
    allowed = ryla("flux", "--backend-url", server.url, "--prompt", "x", "--width", "256", "--height", "256",
                   "--json")
    assert allowed.code == 0, allowed.err
    wrong = "tok-wrong-one"
    monkeypatch.setenv("RYLA_API_TOKEN", wrong)
    denied = ryla("models", "--backend-url", server.url)
    assert denied.code == 1
    for run in (refused, allowed, denied):
        assert token not in run.out + run.err and wrong not in run.out + run.err


def test_backend_url_from_the_environment(ryla: Callable[..., Run], backend_server_session,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RYLA_BACKEND_URL", backend_server_session.url)
    result = ryla("flux", "--prompt", "x", "--width", "256", "--height", "256", "--json")
    assert result.code == 0, result.err
