"""Files the face nodes open without naming them, checked on the models directory alone
(the Modal web tier has the Volume, no ComfyUI): .onnx included, legacy folders too."""

from __future__ import annotations

from pathlib import Path

from backend.snapshot_validation import installed_files, missing_implicit_file
from workflows.manifest import files_for

PULID_GRAPH = {"1": {"class_type": "PulidFluxEvaClipLoader", "inputs": {}},
               "2": {"class_type": "PulidFluxInsightFaceLoader", "inputs": {"provider": "CUDA"}}}


def _install(models: Path, skip: str = "", folder_of: dict[str, str] | None = None) -> None:
    for entry in files_for("pulid"):
        if entry.local_name != skip:
            path = models / (folder_of or {}).get(entry.local_name, entry.folder) / entry.local_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


def test_every_file_present_onnx_included(tmp_path: Path) -> None:
    _install(tmp_path)
    assert missing_implicit_file(PULID_GRAPH, installed_files(tmp_path, tmp_path / "l"), tmp_path) is None


def test_a_missing_antelopev2_file_is_named(tmp_path: Path) -> None:
    _install(tmp_path, skip="models/antelopev2/scrfd_10g_bnkps.onnx")
    error = missing_implicit_file(PULID_GRAPH, installed_files(tmp_path, tmp_path / "l"), tmp_path)
    assert error is not None and "scrfd_10g_bnkps.onnx" in error.message
    assert error.field == "insightface"


def test_eva_clip_in_the_legacy_clip_folder_counts(tmp_path: Path) -> None:
    _install(tmp_path, folder_of={"EVA02_CLIP_L_336_psz14_s6B.pt": "clip"})
    assert (tmp_path / "clip" / "EVA02_CLIP_L_336_psz14_s6B.pt").is_file()
    assert missing_implicit_file(PULID_GRAPH, installed_files(tmp_path, tmp_path / "l"), tmp_path) is None
