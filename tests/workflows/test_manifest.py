"""The model manifest: complete for every graph, consistent, and readable from disk."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workflows.manifest import (
    MODEL_MANIFEST,
    USER_FOLDERS,
    files_for,
    find,
    installed_by_folder,
)
from workflows.object_info import load_object_info
from tests.shared_files import API_EXAMPLES
from tests.workflows.graph_files import graph_model_files
from workflows.registry import PIPELINES
from workflows.render import load_template


def test_every_pipeline_has_its_files() -> None:
    for pipeline in PIPELINES:
        assert files_for(pipeline), pipeline


def test_unknown_pipeline_is_named_in_the_error() -> None:
    with pytest.raises(KeyError, match="flux-pro"):
        files_for("flux-pro")


def test_entries_are_unique_and_well_formed() -> None:
    keys = [(e.folder, e.local_name) for e in MODEL_MANIFEST]
    assert len(keys) == len(set(keys))
    for entry in MODEL_MANIFEST:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", entry.repo_id), entry
        assert entry.size_bytes > 1_000_000, entry  # every weight here is over 1 MB
        assert entry.filename.rsplit("/", 1)[-1] and entry.local_name
        assert set(entry.pipelines) <= set(PIPELINES), entry
        assert entry.folder not in USER_FOLDERS
        assert entry.url.startswith(f"https://huggingface.co/{entry.repo_id}/resolve/")


def test_only_flux_dev_weights_are_gated() -> None:
    gated = {e.repo_id for e in MODEL_MANIFEST if e.gated}
    assert gated == {"black-forest-labs/FLUX.1-dev"}
    # Schnell and Z-Image-Turbo must run without a Hugging Face token.
    assert not any(e.gated for e in files_for("flux-schnell"))
    assert not any(e.gated for e in files_for("z-image"))


def test_z_image_shares_the_flux_vae_and_brings_its_own_model_and_encoder() -> None:
    by_folder = {e.folder: e for e in files_for("z-image")}
    assert set(by_folder) == {"diffusion_models", "text_encoders", "vae"}
    assert by_folder["vae"] is find("vae", "ae.safetensors")
    assert "flux-schnell" in by_folder["vae"].pipelines
    assert by_folder["diffusion_models"].repo_id == by_folder["text_encoders"].repo_id == "Comfy-Org/z_image_turbo"


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_manifest_covers_exactly_the_files_each_graph_names(pipeline: str) -> None:
    named = {
        (folder, name)
        for folder, name in graph_model_files(load_template(pipeline), load_object_info())
        if folder not in USER_FOLDERS
    }
    listed = {(e.folder, e.local_name) for e in files_for(pipeline)}
    assert named - listed == set(), f"graph names files the manifest lacks: {named - listed}"
    assert listed - named == set(), f"manifest lists files the graph never uses: {listed - named}"


def test_find_matches_folder_and_local_name() -> None:
    entry = find("diffusion_models", "flux1-dev.safetensors")
    assert entry is not None and entry.repo_id == "black-forest-labs/FLUX.1-dev"
    assert find("checkpoints", "flux1-dev.safetensors") is None
    assert find("insightface", "models/antelopev2/glintr100.onnx") is not None


def test_manifest_folders_are_folders_comfyui_reports() -> None:
    text = API_EXAMPLES.read_text(encoding="utf-8")
    section = text.split("### Model folders", 1)[1].split("###", 1)[0]
    body = section.split("```json", 1)[1].split("```", 1)[0]
    folders = set(json.loads(body))
    assert {e.folder for e in MODEL_MANIFEST} <= folders


def test_installed_by_folder_reads_subfolders_as_comfyui_names_them(tmp_path: Path) -> None:
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "ae.safetensors").write_bytes(b"x")
    antelope = tmp_path / "insightface" / "models" / "antelopev2"
    antelope.mkdir(parents=True)
    (antelope / "glintr100.onnx").write_bytes(b"x")
    (tmp_path / "loras").mkdir()
    (tmp_path / "loras" / ".hidden").write_bytes(b"x")

    installed = installed_by_folder(tmp_path)

    assert installed["vae"] == ["ae.safetensors"]
    assert installed["insightface"] == ["models/antelopev2/glintr100.onnx"]
    assert installed["loras"] == []
    assert installed["diffusion_models"] == []  # a manifest folder absent on disk


def test_installed_by_folder_of_a_missing_dir_lists_manifest_folders_empty(tmp_path: Path) -> None:
    installed = installed_by_folder(tmp_path / "nope")
    assert set(installed) == {e.folder for e in MODEL_MANIFEST}
    assert not any(installed.values())
