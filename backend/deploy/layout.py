"""Where ComfyUI, the models, the LoRAs and the job records live in a container."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ContainerLayout:
    """The deployment's paths and ComfyUI's port; the defaults are the Modal containers'."""

    comfyui_dir: Path = Path("/root/comfy/ComfyUI")
    # ComfyUI's own models directory, comfyui_dir/models (its command line passes no
    # --base-directory): the InstantID and PuLID nodes open models_dir/instantid, /pulid
    # and /insightface directly, which an extra_model_paths.yaml would not redirect. The
    # backend reads the same directory (the files ComfyUI cannot list, GET /models), so
    # another path (after symlinks) is refused. None: comfyui_dir/models.
    models_dir: Path = None  # type: ignore[assignment]
    # Outside models_dir: extra_model_paths.yaml adds it to ComfyUI's "loras" folder.
    lora_dir: Path = Path("/loras")
    data_dir: Path = Path("/root/ryla-data")  # job records and outputs
    comfyui_port: int = 8188
    # None: beside the ComfyUI checkout (/root/comfy/extra_model_paths.yaml on Modal)
    extra_model_paths: Path = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        own = Path(self.comfyui_dir) / "models"
        if self.models_dir is None:
            object.__setattr__(self, "models_dir", own)
        elif Path(self.models_dir).resolve() != own.resolve():
            raise ValueError(f"models_dir {self.models_dir} is not ComfyUI's models directory "
                             f"{own}: ComfyUI and the backend must read the same one")
        if self.extra_model_paths is None:
            object.__setattr__(self, "extra_model_paths",
                               Path(self.comfyui_dir).parent / "extra_model_paths.yaml")

    @property
    def comfyui_url(self) -> str:
        return f"http://127.0.0.1:{self.comfyui_port}"  # only reachable on this machine

    @property
    def compile_cache_dir(self) -> Path:
        """torch.compile's artefacts, on the models Volume so that only the first container
        ever compiles from scratch (TORCHINDUCTOR_CACHE_DIR)."""
        return self.models_dir / ".torch-compile-cache"


def extra_model_paths_yaml(layout: ContainerLayout) -> str:
    """ComfyUI's extra_model_paths.yaml: the LoRA directory as a "loras" folder, so
    LoraLoaderModelOnly lists what the backend's LoraStore writes there."""
    return f"ryla_loras:\n    loras: {layout.lora_dir}\n"


def write_extra_model_paths(layout: ContainerLayout) -> None:
    """Write the layout's extra_model_paths.yaml (the Modal image has it already)."""
    layout.extra_model_paths.parent.mkdir(parents=True, exist_ok=True)
    layout.extra_model_paths.write_text(extra_model_paths_yaml(layout), encoding="utf-8")
