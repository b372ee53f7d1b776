"""Typed requests for every generation route: the one definition that the backend,
the Python client, the CLI, the studio and the tests all use.

Ranges here are the product contract of ../shared/SPEC.md. Pydantic enforces them,
and the backend turns a violation into a 400 naming the field and the allowed range.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Sizes are latent-friendly: Flux's latent is 1/8 of the image and packed 2x2, so
# ComfyUI's EmptySD3LatentImage steps in 16s.
MIN_SIZE, MAX_SIZE, SIZE_STEP = 256, 2048, 16
MAX_PROMPT_CHARS = 4000
MAX_SEED = 2**63 - 1  # ComfyUI's KSampler seed upper bound is 0xffffffffffffffff; keep to int64

ImageFormat = Literal["jpeg", "png"]
CharacterMethod = Literal["instantid", "pulid"]


def _check_size_step(value: int) -> int:
    if value % SIZE_STEP:
        raise ValueError(f"must be a multiple of {SIZE_STEP} between {MIN_SIZE} and {MAX_SIZE}")
    return value


class ImageRequest(BaseModel):
    """Fields that every image route shares."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    width: int = Field(default=1024, ge=MIN_SIZE, le=MAX_SIZE)
    height: int = Field(default=1024, ge=MIN_SIZE, le=MAX_SIZE)
    steps: int = Field(default=28, ge=1, le=100)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="random when absent")
    format: ImageFormat = "jpeg"

    @field_validator("width", "height")
    @classmethod
    def _size_on_grid(cls, value: int) -> int:
        return _check_size_step(value)

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class GenerationRequest(ImageRequest):
    """The image routes that take a guidance value (Flux and the character methods)."""

    guidance: float = Field(default=3.5, ge=0.0, le=20.0)


class FluxDevRequest(GenerationRequest):
    """POST /flux-dev: Flux.1 Dev text to image."""


class FluxSchnellRequest(GenerationRequest):
    """POST /flux: Flux.1 Schnell, distilled for 4 steps and no guidance."""

    steps: int = Field(default=4, ge=1, le=100)
    guidance: float = Field(default=0.0, ge=0.0, le=20.0)


class FluxLoraRequest(GenerationRequest):
    """POST /flux-lora: Flux.1 Dev with a character LoRA from the LoRA store."""

    lora_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    lora_strength: float = Field(default=0.8, ge=0.0, le=1.0)
    trigger_word: str | None = Field(default=None, max_length=200)


class ZImageRequest(ImageRequest):
    """POST /z-image: Z-Image-Turbo, a DiT distilled for about 8 steps without
    classifier-free guidance. It samples at cfg 1, where ComfyUI never evaluates the
    negative conditioning, so `negative_prompt` is accepted (every image route takes it)
    but changes nothing; there is no guidance field to set."""

    steps: int = Field(default=8, ge=1, le=50)


class CharacterRequest(GenerationRequest):
    """POST /flux-instantid: one reference face in, one image of that face out.

    `method` picks InstantID (an SDXL method) or PuLID-Flux (Flux-native).
    """

    reference_image: str = Field(min_length=1, description="data URL or base64 of a JPEG/PNG/WebP")
    method: CharacterMethod = "instantid"
    instantid_strength: float = Field(default=0.8, ge=0.0, le=1.5)
    controlnet_strength: float = Field(default=0.8, ge=0.0, le=1.5)
    steps: int = Field(default=30, ge=1, le=100)
    guidance: float = Field(default=4.0, ge=0.0, le=20.0)


class Wan2Request(BaseModel):
    """POST /wan2: Wan 2.x text to video."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    width: int = Field(default=832, ge=MIN_SIZE, le=1280)
    height: int = Field(default=480, ge=MIN_SIZE, le=1280)
    # Wan's VAE compresses time 4x, so ComfyUI wants length = 4k + 1.
    frames: int = Field(default=33, ge=5, le=121)
    fps: int = Field(default=16, ge=1, le=60)
    steps: int = Field(default=30, ge=1, le=100)
    guidance: float = Field(default=6.0, ge=0.0, le=20.0)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)

    @field_validator("width", "height")
    @classmethod
    def _size_on_grid(cls, value: int) -> int:
        return _check_size_step(value)

    @field_validator("frames")
    @classmethod
    def _frames_4k_plus_1(cls, value: int) -> int:
        if (value - 1) % 4:
            raise ValueError("must be 4k+1 (5, 9, ..., 121): Wan's VAE packs 4 frames per latent")
        return value


class WorkflowRequest(BaseModel):
    """POST /workflow: any ComfyUI API-format graph, validated before it is queued."""

    model_config = ConfigDict(extra="forbid")

    workflow: dict[str, Any] = Field(min_length=1)
    images: dict[str, str] = Field(default_factory=dict, description="input name -> data URL")


# The route each request model is posted to; the client, CLI and studio use this map
# so that a route name is written once.
ROUTES: dict[str, type[BaseModel]] = {
    "/flux-dev": FluxDevRequest,
    "/flux": FluxSchnellRequest,
    "/flux-lora": FluxLoraRequest,
    "/flux-instantid": CharacterRequest,
    "/wan2": Wan2Request,
    "/workflow": WorkflowRequest,
}
