"""Start-up work (backend/warmup.py): prefetching a pipeline's files and the one-step
warm-up prompt that loads its models."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from backend.comfyui_client import ComfyUIClient
from backend.warmup import BackgroundPrefetch, pipeline_files, prefetch, warm_up
from workflows.manifest import files_for


def _install(models_dir: Path, pipeline: str, size: int) -> list[Path]:
    paths = []
    for entry in files_for(pipeline):
        path = models_dir / entry.folder / entry.local_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x01" * size)
        paths.append(path)
    return paths


def test_pipeline_files_are_the_installed_manifest_files(tmp_path: Path) -> None:
    installed = _install(tmp_path, "flux-schnell", 10)
    (tmp_path / "diffusion_models" / "flux1-dev.safetensors").write_bytes(b"not schnell's")
    installed[0].unlink()  # a missing file is skipped, not an error
    assert sorted(pipeline_files("flux-schnell", tmp_path)) == sorted(installed[1:])


def test_prefetch_reads_every_byte_of_every_file(tmp_path: Path) -> None:
    paths = _install(tmp_path, "flux-dev", 3 * 1024 * 1024 + 17)
    report = prefetch(paths, threads=3)
    assert report.files == len(paths)
    assert report.bytes_read == sum(p.stat().st_size for p in paths)


def test_warm_up_runs_the_smallest_prompt_of_the_pipeline(comfyui_double, tmp_path: Path) -> None:
    async def go() -> float:
        comfy = ComfyUIClient(comfyui_double.url, models_dir=tmp_path, lora_dir=tmp_path)
        try:
            return await warm_up(comfy, "flux-dev", timeout_s=30)
        finally:
            await comfy.aclose()

    assert asyncio.run(go()) > 0
    (job,) = comfyui_double.jobs
    samplers = [n["inputs"] for n in job.graph.values() if n["class_type"] == "KSampler"]
    latents = [n["inputs"] for n in job.graph.values() if n["class_type"] == "EmptySD3LatentImage"]
    assert samplers[0]["steps"] == 1 and (latents[0]["width"], latents[0]["height"]) == (256, 256)
    assert any(n["class_type"] == "UNETLoader" and n["inputs"]["unet_name"] == "flux1-dev.safetensors"
               for n in job.graph.values())


def test_background_prefetch_reports_once_joined(tmp_path: Path) -> None:
    paths = _install(tmp_path, "flux-schnell", 1024 * 1024)
    report = BackgroundPrefetch(["flux-schnell"], tmp_path).join()
    assert report is not None and report.bytes_read == sum(p.stat().st_size for p in paths)


def test_fast_warm_up_compiles_at_the_size_users_ask_for(comfyui_double, tmp_path: Path) -> None:
    from backend.settings import names_list
    from backend.warmup import warm_up_comfyui, warm_up_names, warm_up_pipelines

    names = warm_up_names(names_list(" flux-dev , flux-dev-fast"))
    assert warm_up_pipelines(names) == ["flux-dev"]  # one set of files to read ahead
    _install(tmp_path, "flux-dev", 1)
    seconds = warm_up_comfyui(comfyui_double.url, tmp_path, tmp_path, names, timeout_s=30)
    assert list(seconds) == ["flux-dev", "flux-dev-fast"]
    fast = comfyui_double.jobs[-1].graph
    assert any(n["class_type"] == "TorchCompileModel" for n in fast.values())
    latents = [n["inputs"] for n in fast.values() if n["class_type"] == "EmptySD3LatentImage"]
    assert (latents[0]["width"], latents[0]["height"]) == (1024, 1024)


def test_an_unknown_warm_up_is_named_with_the_known_ones() -> None:
    from backend.warmup import UnknownWarmUp, warm_up_names

    with pytest.raises(UnknownWarmUp, match="flux-dev-fast"):
        warm_up_names(["flux-dev", "flux-turbo"])


def test_warm_up_names_follow_the_requests_mode() -> None:
    from backend.warmup import WARM_UP_REQUESTS, compiles

    assert set(WARM_UP_REQUESTS) == {"flux-dev", "flux-schnell", "flux-dev-fast"}
    assert WARM_UP_REQUESTS["flux-dev-fast"][1].mode == "fast"
    assert compiles("flux-dev-fast") and not compiles("flux-dev")


def test_a_warm_up_whose_files_are_missing_is_skipped_and_named(comfyui_double, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    from backend.warmup import warm_up_comfyui

    # a team that downloaded only Schnell (or whose gated Flux Dev download failed)
    _install(tmp_path, "flux-schnell", 1)
    with caplog.at_level("WARNING", logger="backend.warmup"):
        seconds = warm_up_comfyui(comfyui_double.url, tmp_path, tmp_path,
                                  ["flux-dev", "flux-dev-fast", "flux-schnell"], timeout_s=30)
    assert list(seconds) == ["flux-schnell"]
    assert len(comfyui_double.jobs) == 1  # Flux Dev's prompt never reached ComfyUI
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2 and all("diffusion_models/flux1-dev.safetensors" in m for m in skipped)


def test_a_failing_warm_up_is_logged_and_the_container_still_starts(comfyui_double, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    from backend.warmup import warm_up_comfyui

    _install(tmp_path, "flux-dev", 1)
    _install(tmp_path, "flux-schnell", 1)
    comfyui_double.fail_next("CUDA out of memory")
    with caplog.at_level("WARNING", logger="backend.warmup"):
        seconds = warm_up_comfyui(comfyui_double.url, tmp_path, tmp_path, ["flux-dev", "flux-schnell"],
                                  timeout_s=30)
    assert list(seconds) == ["flux-schnell"]
    assert any("flux-dev failed" in r.getMessage() and "out of memory" in r.getMessage()
               for r in caplog.records)


def test_pipeline_readiness_compares_the_manifest_with_the_models_dir(tmp_path: Path) -> None:
    from backend.warmup import missing_files, pipeline_readiness

    assert not any(pipeline_readiness(tmp_path).values())
    _install(tmp_path, "flux-schnell", 1)
    ready = pipeline_readiness(tmp_path)
    assert ready["flux-schnell"] is True and ready["flux-dev"] is False
    assert "diffusion_models/flux1-dev.safetensors" in missing_files("flux-dev", tmp_path)
    assert all(not m.startswith("loras/") for m in missing_files("flux-lora", tmp_path))
