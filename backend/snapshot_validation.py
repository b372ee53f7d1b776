"""Graph validation without a running ComfyUI: the shipped /object_info snapshot with
the files installed under a models directory and a LoRA directory, as a ComfyUI with
those folders would report them.

The Modal web tier validates this way (it has the Volumes mounted but no ComfyUI), so a
bad request is refused on a CPU container and never wakes a GPU. `ryla-backend` uses
the same snapshot when its ComfyUI cannot answer /object_info.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from backend.errors import ModelNotInstalled
from backend.graph_errors import install_hint, is_missing_model, to_api_error
from workflows.manifest import installed_by_folder
from workflows.object_info import (FOLDER_ALIASES, IMPLICIT_MODEL_FILES, load_object_info,
                                   with_installed_files)
from workflows.validate import validate_graph


def installed_files(models_dir: Path, lora_dir: Path) -> dict[str, list[str]]:
    """Folder -> file names, as ComfyUI lists them; the LoRA dir is ComfyUI's `loras`
    (extra_model_paths.yaml adds it), beside whatever models_dir/loras holds."""
    installed = installed_by_folder(Path(models_dir))
    lora_dir = Path(lora_dir)
    if lora_dir.is_dir():
        extra = (p.name for p in lora_dir.glob("*.safetensors"))
        installed["loras"] = sorted({*installed.get("loras", ()), *extra})
    return installed


def snapshot_object_info(models_dir: Path, lora_dir: Path) -> dict[str, Any]:
    return with_installed_files(load_object_info(), installed_files(models_dir, lora_dir))


def missing_implicit_file(graph: dict[str, Any], installed: dict[str, list[str]],
                          models_dir: Path) -> ModelNotInstalled | None:
    """The first file a node loads without naming it (insightface, EVA-CLIP) that is
    not installed, as the error to answer with."""
    needed = {pair for node in graph.values()
              if isinstance(node, dict) and isinstance(node.get("class_type"), str)
              for pair in IMPLICIT_MODEL_FILES.get(node["class_type"], ())}
    for folder, name in sorted(needed):
        # ComfyUI reads text_encoders from the legacy models/clip too (EVA-CLIP on a
        # Volume filled before it moved to text_encoders is still found)
        folders = (folder, *FOLDER_ALIASES.get(folder, ()))
        if not any(name in installed.get(f, ()) for f in folders):
            return ModelNotInstalled(
                f"model file {name!r} is not installed in ComfyUI's models/{folder}: "
                f"{install_hint(folder, name, models_dir)}", field=folder)
    return None


class SnapshotValidator:
    """Checks a graph as a ComfyUI with these folders would, before anything runs.

    `refresh` is called once when a model file looks missing (on Modal: reload the
    models Volume, which a download may have changed since this container started)."""

    def __init__(self, models_dir: Path, lora_dir: Path,
                 refresh: Callable[[], None] | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.lora_dir = Path(lora_dir)
        self.refresh = refresh

    async def check(self, graph: dict[str, Any], *, user_graph: bool,
                    input_images: Iterable[str] = ()) -> None:
        images = list(input_images)
        problems, installed = await asyncio.to_thread(self._problems, graph, images)
        missing = [p for p in problems if is_missing_model(p)]
        needs_refresh = bool(missing) or missing_implicit_file(graph, installed, self.models_dir)
        if needs_refresh and self.refresh is not None:
            await asyncio.to_thread(self.refresh)
            problems, installed = await asyncio.to_thread(self._problems, graph, images)
        if problems:
            raise to_api_error(problems, user_graph=user_graph, models_dir=self.models_dir)
        error = missing_implicit_file(graph, installed, self.models_dir)
        if error is not None:
            raise error

    def _problems(self, graph: dict[str, Any], images: list[str]) -> tuple[list[Any], dict[str, list[str]]]:
        installed = installed_files(self.models_dir, self.lora_dir)
        info = with_installed_files(load_object_info(), installed, images)
        return validate_graph(graph, info), installed
