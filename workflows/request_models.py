"""Typed requests for every generation route: the one definition that the backend,
the Python client, the CLI, the studio and the tests all use.

Ranges here are the product contract of docs/api.md. Pydantic enforces them,
and the backend turns a violation into a 400 naming the field and the allowed range.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, field_validator

# Sizes are latent-friendly: Flux's latent is 1/8 of the image and packed 2x2, so
# ComfyUI's EmptySD3LatentImage steps in 16s.
MIN_SIZE, MAX_SIZE, SIZE_STEP = 256, 2048, 16
# The step as schema data (OpenAPI, the CLI's help, the studio): the check itself is
# _check_size_step, whose message names the whole range.
ON_SIZE_GRID = {"multipleOf": SIZE_STEP}
MAX_PROMPT_CHARS = 4000
MAX_SEED = 2**63 - 1  # ComfyUI's KSampler seed upper bound is 0xffffffffffffffff; keep to int64
# Seeds drawn at random stay below 2**53: a browser reads JSON numbers as doubles, exact
# only up to 2**53 - 1, and a seed shown or sent back rounded repeats nothing.
RANDOM_SEED_LIMIT = 2**53
MAX_EXACT_SEED = RANDOM_SEED_LIMIT - 1
# A reference face is decoded whole, once per image: larger photos are refused.
MAX_IMAGE_PIXELS = 40_000_000

# An API-format graph is about four levels deep (graph, node, inputs, a link or value);
# anything far deeper is not a graph, and would only exhaust recursion further on.
MAX_WORKFLOW_DEPTH = 32

ImageFormat = Literal["jpeg", "png"]
CharacterMethod = Literal["instantid", "pulid"]
GenerationMode = Literal["standard", "fast"]
STANDARD_MODE: GenerationMode = "standard"
FAST_MODE: GenerationMode = "fast"  # fp8 weights and torch.compile (workflows/render.py)

# Each field's help, written once: the OpenAPI schema, `ryla --help` and the studio show it.
PROMPT_HELP = "what to generate"
NEGATIVE_HELP = "what to avoid"
WIDTH_HELP = "width in pixels"
HEIGHT_HELP = "height in pixels"
STEPS_HELP = "sampling steps"
GUIDANCE_HELP = "prompt guidance"
SEED_HELP = "seed; random when absent, and the one used is reported"
MODE_HELP = ("standard (bf16) or fast: fp8 weights and fp8 matrix multiply, compiled by "
             "torch.compile (an H100 feature; a container's first fast request compiles, "
             "about 40 s with the shared cache); pixels may differ slightly from standard")


def _utf8(value: str) -> str:
    """JSON's \\ud800 escapes decode to lone surrogates, which no UTF-8 encoder (ComfyUI's
    request, our records, the response) can write: refuse them here, with a reason."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"holds a lone UTF-16 surrogate at character {exc.start}, which is "
                         "not valid text; send UTF-8 text") from None
    return value


# Characters that show nothing: format (zero-width space, joiners, BOM...), space
# separators and control characters. A prompt made only of these is blank.
INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Cc"})


def _not_blank(value: str) -> str:
    if all(ch.isspace() or unicodedata.category(ch) in INVISIBLE_CATEGORIES for ch in value):
        raise ValueError("must not be blank (it holds only spaces or invisible characters)")
    return value


Text = Annotated[str, AfterValidator(_utf8)]
Prompt = Annotated[str, AfterValidator(_utf8), AfterValidator(_not_blank)]
# Numbers are numbers: strict mode refuses "7", 7.0 for an integer, and true/false;
# a float field still takes an integer (guidance 3).
Int = Annotated[int, Strict()]
Number = Annotated[float, Strict()]


def check_json_tree(value: Any, max_depth: int = MAX_WORKFLOW_DEPTH) -> None:
    """ValueError unless `value` is JSON that every later step can handle: nesting at
    most `max_depth`, finite numbers only (NaN is not JSON), text without lone surrogates.
    Walked without recursion, so any depth of input is safe to check."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        where = f" at {path[:100]}" if path else ""
        if depth > max_depth:
            raise ValueError(f"is nested more than {max_depth} levels deep{where}; an "
                             "API-format graph needs about 4")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"holds {item}{where}; only finite numbers are allowed")
        if isinstance(item, str):
            _utf8_at(item, path)
        elif isinstance(item, dict):
            for key, child in item.items():
                _utf8_at(str(key), path)
                stack.append((child, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))


def _utf8_at(text: str, path: str) -> None:
    try:
        _utf8(text)
    except ValueError as exc:
        where = path.encode("utf-8", "backslashreplace").decode("utf-8")
        raise ValueError(f"{exc}" + (f" (at {where[:100]})" if where else "")) from None


def _check_size_step(value: int) -> int:
    if value % SIZE_STEP:
        raise ValueError(f"must be a multiple of {SIZE_STEP} between {MIN_SIZE} and {MAX_SIZE}")
    return value


class ImageRequest(BaseModel):
    """Fields that every image route shares."""

    model_config = ConfigDict(extra="forbid")

    prompt: Prompt = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description=PROMPT_HELP)
    negative_prompt: Text = Field(default="", max_length=MAX_PROMPT_CHARS, description=NEGATIVE_HELP)
    width: Int = Field(default=1024, ge=MIN_SIZE, le=MAX_SIZE, description=WIDTH_HELP,
                       json_schema_extra=ON_SIZE_GRID)
    height: Int = Field(default=1024, ge=MIN_SIZE, le=MAX_SIZE, description=HEIGHT_HELP,
                        json_schema_extra=ON_SIZE_GRID)
    steps: Int = Field(default=28, ge=1, le=100, description=STEPS_HELP)
    seed: Int | None = Field(default=None, ge=0, le=MAX_SEED, description=SEED_HELP)
    format: ImageFormat = Field(default="jpeg", description="image format")

    @field_validator("width", "height")
    @classmethod
    def _size_on_grid(cls, value: int) -> int:
        return _check_size_step(value)


class GenerationRequest(ImageRequest):
    """The image routes that take a guidance value (Flux and the character methods)."""

    guidance: Number = Field(default=3.5, ge=0.0, le=20.0, description=GUIDANCE_HELP)


class FluxDevRequest(GenerationRequest):
    """POST /flux-dev: Flux.1 Dev text to image."""

    mode: GenerationMode = Field(default=STANDARD_MODE, description=MODE_HELP)


class FluxSchnellRequest(GenerationRequest):
    """POST /flux: Flux.1 Schnell, distilled for 4 steps and no guidance."""

    steps: Int = Field(default=4, ge=1, le=100, description=STEPS_HELP)
    guidance: Number = Field(default=0.0, ge=0.0, le=20.0, description=GUIDANCE_HELP)


class FluxLoraRequest(GenerationRequest):
    """POST /flux-lora: Flux.1 Dev with a character LoRA from the LoRA store."""

    lora_id: Text = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$",
                         description="id of a LoRA in the store (see `ryla loras`)")
    lora_strength: Number = Field(default=0.8, ge=0.0, le=1.0, title="LoRA strength",
                                 description="how strongly the LoRA applies")
    trigger_word: Text | None = Field(default=None, max_length=200,
                                     description="LoRA trigger word (the store's when absent)")


class ZImageRequest(ImageRequest):
    """POST /z-image: Z-Image-Turbo, a DiT distilled for about 8 steps without
    classifier-free guidance. It samples at cfg 1, where ComfyUI never evaluates the
    negative conditioning, so `negative_prompt` is accepted (every image route takes it)
    but changes nothing; there is no guidance field to set."""

    steps: Int = Field(default=8, ge=1, le=50, description=STEPS_HELP)


class CharacterRequest(GenerationRequest):
    """POST /flux-instantid: one reference face in, one image of that face out.

    `method` picks InstantID (an SDXL method) or PuLID-Flux (Flux-native).
    """

    reference_image: Text = Field(min_length=1, description="data URL or base64 of a JPEG/PNG/WebP")
    method: CharacterMethod = Field(default="instantid",
                                    description="identity method: instantid (SDXL) or pulid (Flux)")
    instantid_strength: Number = Field(default=0.8, ge=0.0, le=1.5, title="Identity strength",
                                      description="identity strength")
    controlnet_strength: Number = Field(default=0.8, ge=0.0, le=1.5,
                                       title="ControlNet strength (InstantID)",
                                       description="face keypoint ControlNet strength")
    steps: Int = Field(default=30, ge=1, le=100, description=STEPS_HELP)
    guidance: Number = Field(default=4.0, ge=0.0, le=20.0, description=GUIDANCE_HELP)


class Wan2Request(BaseModel):
    """POST /wan2: Wan 2.x text to video."""

    model_config = ConfigDict(extra="forbid")

    prompt: Prompt = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description=PROMPT_HELP)
    negative_prompt: Text = Field(default="", max_length=MAX_PROMPT_CHARS, description=NEGATIVE_HELP)
    width: Int = Field(default=832, ge=MIN_SIZE, le=1280, description=WIDTH_HELP,
                       json_schema_extra=ON_SIZE_GRID)
    height: Int = Field(default=480, ge=MIN_SIZE, le=1280, description=HEIGHT_HELP,
                        json_schema_extra=ON_SIZE_GRID)
    # Wan's VAE compresses time 4x, so ComfyUI wants length = 4k + 1.
    frames: Int = Field(default=33, ge=5, le=121, description="video length in frames, 4k+1")
    fps: Int = Field(default=16, ge=1, le=60, description="frames per second")
    steps: Int = Field(default=30, ge=1, le=100, description=STEPS_HELP)
    guidance: Number = Field(default=6.0, ge=0.0, le=20.0, description=GUIDANCE_HELP)
    seed: Int | None = Field(default=None, ge=0, le=MAX_SEED, description=SEED_HELP)

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

    workflow: dict[str, Any] = Field(min_length=1, description="a ComfyUI graph in API format")
    images: dict[Text, Text] = Field(default_factory=dict, description="input name -> data URL")

    @field_validator("workflow")
    @classmethod
    def _workflow_is_plain_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_json_tree(value)
        return value


def mode_of(request: BaseModel) -> GenerationMode:
    """The request's generation mode, read in one place: the routes without a `mode` field
    run in the standard mode."""
    mode = getattr(request, "mode", STANDARD_MODE)
    if mode not in get_args(GenerationMode):
        raise ValueError(f"unknown generation mode {mode!r}")
    return mode
