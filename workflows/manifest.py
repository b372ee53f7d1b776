"""Every model file a shipped pipeline needs: the one source for the downloader,
for GET /models and for the graphs' model-file inputs.

Sizes are the byte counts that Hugging Face reports for each file (cross-checked
against several independent download scripts and manifests that pin them). Where a
figure could only be confirmed from a mirror of an upstream release, the entry says
so. `local_name` is the path inside the ComfyUI models folder, which is what the
graphs name and what ComfyUI lists in its choice lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Folders whose files come from users (the LoRA store), not from this manifest.
USER_FOLDERS: frozenset[str] = frozenset({"loras"})

FLUX_DEV = "flux-dev"
FLUX_SCHNELL = "flux-schnell"
FLUX_LORA = "flux-lora"
INSTANTID = "instantid"
PULID = "pulid"
WAN2 = "wan2"
Z_IMAGE = "z-image"

_FLUX_DEV_FAMILY = (FLUX_DEV, FLUX_LORA, PULID)
_ALL_FLUX = (FLUX_DEV, FLUX_SCHNELL, FLUX_LORA, PULID)
_FACE = (INSTANTID, PULID)


@dataclass(frozen=True)
class ModelFile:
    repo_id: str
    filename: str  # path inside the Hugging Face repo
    folder: str  # ComfyUI models folder (a key of folder_paths)
    size_bytes: int
    gated: bool  # needs HF_TOKEN with the licence accepted
    pipelines: tuple[str, ...]
    local_name: str  # name inside the ComfyUI folder; may contain '/'

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/resolve/main/{self.filename}"


def _antelope(name: str, size: int) -> ModelFile:
    # InstantID (cubiq) and PuLID-Flux (lldacing) both open insightface's antelopev2
    # from models/insightface/models/antelopev2; insightface's own zip URL is often
    # down, so the HF mirror named in several ComfyUI guides is used.
    return ModelFile(
        repo_id="DIAMONIK7777/antelopev2",
        filename=name,
        folder="insightface",
        size_bytes=size,
        gated=False,
        pipelines=_FACE,
        local_name=f"models/antelopev2/{name}",
    )


MODEL_MANIFEST: tuple[ModelFile, ...] = (
    # --- Flux.1 ---------------------------------------------------------------
    ModelFile(
        "black-forest-labs/FLUX.1-dev", "flux1-dev.safetensors", "diffusion_models",
        23_802_932_552, True, _FLUX_DEV_FAMILY, "flux1-dev.safetensors",
    ),
    ModelFile(
        "black-forest-labs/FLUX.1-schnell", "flux1-schnell.safetensors", "diffusion_models",
        23_782_506_688, False, (FLUX_SCHNELL,), "flux1-schnell.safetensors",
    ),
    ModelFile(
        "comfyanonymous/flux_text_encoders", "clip_l.safetensors", "text_encoders",
        246_144_152, False, _ALL_FLUX, "clip_l.safetensors",
    ),
    ModelFile(
        "comfyanonymous/flux_text_encoders", "t5xxl_fp16.safetensors", "text_encoders",
        9_787_841_024, False, _ALL_FLUX, "t5xxl_fp16.safetensors",
    ),
    # The same ae.safetensors ships in the Dev and Schnell repos; Schnell's copy is
    # not gated, so Schnell works without a token. Z-Image-Turbo decodes with this very
    # file: Comfy-Org/z_image_turbo's split_files/vae/ae.safetensors has the same
    # SHA-256 (afc8e282...), so one download serves both.
    ModelFile(
        "black-forest-labs/FLUX.1-schnell", "ae.safetensors", "vae",
        335_304_388, False, (*_ALL_FLUX, Z_IMAGE), "ae.safetensors",
    ),
    # --- Z-Image-Turbo (Tongyi-MAI, Apache 2.0), as Comfy-Org repackages it ------
    # Sizes: the byte counts in the Git LFS pointers of copies whose SHA-256 equals the
    # one Hugging Face shows for these files (2407613050b8... and 6c671498573a...).
    ModelFile(
        "Comfy-Org/z_image_turbo", "split_files/diffusion_models/z_image_turbo_bf16.safetensors",
        "diffusion_models", 12_309_866_400, False, (Z_IMAGE,), "z_image_turbo_bf16.safetensors",
    ),
    ModelFile(
        "Comfy-Org/z_image_turbo", "split_files/text_encoders/qwen_3_4b.safetensors",
        "text_encoders", 8_044_982_048, False, (Z_IMAGE,), "qwen_3_4b.safetensors",
    ),
    # --- InstantID (an SDXL method) -----------------------------------------
    ModelFile(
        "stabilityai/stable-diffusion-xl-base-1.0", "sd_xl_base_1.0.safetensors", "checkpoints",
        6_938_078_334, False, (INSTANTID,), "sd_xl_base_1.0.safetensors",
    ),
    ModelFile(
        "InstantX/InstantID", "ip-adapter.bin", "instantid",
        1_691_134_141, False, (INSTANTID,), "ip-adapter.bin",
    ),
    # Renamed on disk: "diffusion_pytorch_model.safetensors" says nothing in a list.
    ModelFile(
        "InstantX/InstantID", "ControlNetModel/diffusion_pytorch_model.safetensors", "controlnet",
        2_502_139_136, False, (INSTANTID,), "instantid_controlnet.safetensors",
    ),
    _antelope("1k3d68.onnx", 143_607_619),
    _antelope("2d106det.onnx", 5_030_888),
    _antelope("genderage.onnx", 1_322_532),
    _antelope("glintr100.onnx", 260_665_334),
    _antelope("scrfd_10g_bnkps.onnx", 16_923_827),
    # --- PuLID-Flux (ComfyUI_PuLID_Flux_ll) ---------------------------------
    ModelFile(
        "guozinan/PuLID", "pulid_flux_v0.9.1.safetensors", "pulid",
        1_142_099_520, False, (PULID,), "pulid_flux_v0.9.1.safetensors",
    ),
    # PulidFluxEvaClipLoader finds it with folder_paths.get_full_path("text_encoders",
    # ...) and passes its directory to hf_hub_download as local_dir, so nothing is
    # fetched from QuanSun/EVA-CLIP while a job runs. "text_encoders" is the folder
    # upstream ComfyUI reports (it reads the legacy models/clip too).
    ModelFile(
        "QuanSun/EVA-CLIP", "EVA02_CLIP_L_336_psz14_s6B.pt", "text_encoders",
        856_461_210, False, (PULID,), "EVA02_CLIP_L_336_psz14_s6B.pt",
    ),
    # ApplyPulidFlux builds facexlib's FaceRestoreHelper (retinaface_resnet50 +
    # bisenet) with model_rootpath=models/facexlib; upstream publishes these as
    # GitHub release assets, so an HF mirror is used. Sizes are those of the
    # upstream release assets (v0.1.0, v0.2.0); the mirror's copies were not
    # re-measured here.
    ModelFile(
        "leonelhs/facexlib", "detection_Resnet50_Final.pth", "facexlib",
        109_497_761, False, (PULID,), "detection_Resnet50_Final.pth",
    ),
    ModelFile(
        "leonelhs/facexlib", "parsing_bisenet.pth", "facexlib",
        53_289_463, False, (PULID,), "parsing_bisenet.pth",
    ),
    # --- Wan 2.1 text to video (1.3B: fits beside Flux on one GPU) ------------
    ModelFile(
        "Comfy-Org/Wan_2.1_ComfyUI_repackaged",
        "split_files/diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors", "diffusion_models",
        2_838_303_560, False, (WAN2,), "wan2.1_t2v_1.3B_fp16.safetensors",
    ),
    ModelFile(
        "Comfy-Org/Wan_2.1_ComfyUI_repackaged",
        "split_files/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", "text_encoders",
        6_735_906_897, False, (WAN2,), "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
    ),
    ModelFile(
        "Comfy-Org/Wan_2.1_ComfyUI_repackaged", "split_files/vae/wan_2.1_vae.safetensors", "vae",
        253_815_318, False, (WAN2,), "wan_2.1_vae.safetensors",
    ),
)


def files_for(pipeline: str) -> list[ModelFile]:
    """The manifest entries one pipeline needs; an unknown pipeline is an error."""
    known = {p for entry in MODEL_MANIFEST for p in entry.pipelines}
    if pipeline not in known:
        raise KeyError(f"unknown pipeline {pipeline!r}; known: {sorted(known)}")
    return [entry for entry in MODEL_MANIFEST if pipeline in entry.pipelines]


def find(folder: str, local_name: str) -> ModelFile | None:
    """The manifest entry ComfyUI would list as `local_name` in `folder`, if any."""
    for entry in MODEL_MANIFEST:
        if entry.folder == folder and entry.local_name == local_name:
            return entry
    return None


def installed_by_folder(models_dir: Path) -> dict[str, list[str]]:
    """Files under each folder of `models_dir`, as ComfyUI names them (posix
    paths relative to the folder, subfolders included), sorted.

    Every folder any manifest entry uses is present in the result, empty when absent.
    """
    result: dict[str, list[str]] = {entry.folder: [] for entry in MODEL_MANIFEST}
    if not models_dir.is_dir():
        return result
    for folder_path in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        names = [
            path.relative_to(folder_path).as_posix()
            for path in folder_path.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        ]
        result[folder_path.name] = sorted(names)
    return result
