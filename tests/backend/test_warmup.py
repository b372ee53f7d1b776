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
