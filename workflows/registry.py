"""Every generation pipeline and HTTP route, said once.

A *pipeline* is a shipped graph (`graphs/<name>.json`), the request model it is filled
from and where each request value goes in it (role, input). A *route* is what a user
calls: its path, request model, the pipeline it runs, its analytics events and its
`ryla` subcommand. The API registers its routes from ROUTES; the generator, the renderer,
the CLI, the client and the studio look things up here.

Adding a text-to-image pipeline is: a Pipeline and a Route entry here, its graph in
graphs/, its model files in manifest.py (and, for the studio, a choice on its tab).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from workflows.request_models import (CharacterRequest, FluxDevRequest, FluxLoraRequest,
                                      FluxSchnellRequest, Wan2Request, WorkflowRequest,
                                      ZImageRequest)

GRAPHS_DIR = Path(__file__).with_name("graphs")

# Values that are not a request field of the same name (see Slot.source).
SEED = "@seed"                        # the seed chosen for this job
PROMPT = "@prompt"                    # the prompt, led by the LoRA trigger word when there is one
LORA_FILE = "@lora_file"              # the LoRA's file name in ComfyUI's models/loras
REFERENCE_IMAGE = "@reference_image"  # the uploaded reference image's name in ComfyUI's input


@dataclass(frozen=True)
class Slot:
    """One graph input filled from a request: the node with `_meta.title` == role, its
    input `input_name`, from `source` (a request field name, or one of the @ values)."""

    role: str
    input_name: str
    source: str
    as_float: bool = False  # ComfyUI's FLOAT inputs refuse a JSON integer


@dataclass(frozen=True)
class Pipeline:
    name: str
    request_model: type[BaseModel]
    slots: tuple[Slot, ...]

    @property
    def graph_path(self) -> Path:
        return GRAPHS_DIR / f"{self.name}.json"

    def needs(self, source: str) -> bool:
        return any(slot.source == source for slot in self.slots)


# What a route answers with (its first output's media type; JSON with
# `Accept: application/json`): the image routes follow the request's `format`.
IMAGE_MEDIA = ("image/jpeg", "image/png")
VIDEO_MEDIA = ("image/webp", "video/mp4")
ANY_MEDIA = (*IMAGE_MEDIA, "image/webp", "image/gif", "video/mp4")

# Analytics events of the contract (docs/api.md). Routes without their own event report
# as Flux Dev.
FLUX_DEV_REQUESTED = "modal_flux_dev_generation_requested"
FLUX_DEV_COMPLETED = "modal_flux_dev_generation_completed"
GENERATION_FAILED = "modal_flux_dev_generation_failed"
LORA_LOADED = "modal_lora_loaded"


@dataclass(frozen=True)
class Route:
    path: str
    request_model: type[BaseModel]
    command: str            # `ryla <command>`; also the OpenAPI operation's name
    help: str               # one line: the CLI's help and the OpenAPI summary
    example: str            # a `ryla` command line
    pipeline: str | None = None        # the pipeline it runs, when there is one
    pipeline_field: str | None = None  # else the request field that names it; neither: a user graph
    requested_event: str = FLUX_DEV_REQUESTED
    completed_event: str = FLUX_DEV_COMPLETED
    media_types: tuple[str, ...] = IMAGE_MEDIA

    @property
    def user_graph(self) -> bool:
        return self.pipeline is None and self.pipeline_field is None

    def pipeline_for(self, request: BaseModel) -> Pipeline:
        name = self.pipeline or str(getattr(request, str(self.pipeline_field)))
        return PIPELINES[name]


_IMAGE = (Slot("positive", "text", PROMPT), Slot("negative", "text", "negative_prompt"),
          Slot("latent", "width", "width"), Slot("latent", "height", "height"),
          Slot("sampler", "seed", SEED), Slot("sampler", "steps", "steps"))
# Flux Dev is guidance-distilled: guidance goes to FluxGuidance, the sampler's cfg stays 1.
_FLUX_GUIDANCE = Slot("guidance", "guidance", "guidance", as_float=True)
_REFERENCE = Slot("reference_image", "image", REFERENCE_IMAGE)

PIPELINES: dict[str, Pipeline] = {p.name: p for p in (
    Pipeline("flux-dev", FluxDevRequest, (*_IMAGE, _FLUX_GUIDANCE)),
    # Schnell is distilled without guidance: the request's guidance is not used.
    Pipeline("flux-schnell", FluxSchnellRequest, _IMAGE),
    Pipeline("flux-lora", FluxLoraRequest, (
        *_IMAGE, _FLUX_GUIDANCE, Slot("lora", "lora_name", LORA_FILE),
        Slot("lora", "strength_model", "lora_strength", as_float=True))),
    Pipeline("instantid", CharacterRequest, (
        *_IMAGE, _REFERENCE, Slot("instantid", "ip_weight", "instantid_strength", as_float=True),
        Slot("instantid", "cn_strength", "controlnet_strength", as_float=True),
        Slot("sampler", "cfg", "guidance", as_float=True))),
    # PuLID has no ControlNet; instantid_strength is its identity weight.
    Pipeline("pulid", CharacterRequest, (
        *_IMAGE, _FLUX_GUIDANCE, _REFERENCE,
        Slot("pulid", "weight", "instantid_strength", as_float=True))),
    Pipeline("wan2", Wan2Request, (
        *_IMAGE[:4], Slot("latent", "length", "frames"), *_IMAGE[4:],
        Slot("sampler", "cfg", "guidance", as_float=True), Slot("save", "fps", "fps", as_float=True))),
    # Distilled without classifier-free guidance: the graph's cfg stays 1.
    Pipeline("z-image", ZImageRequest, _IMAGE),
)}

ROUTES: dict[str, Route] = {r.path: r for r in (
    Route("/flux-dev", FluxDevRequest, "flux-dev", "Flux.1 Dev: text to image.",
          'ryla flux-dev --prompt "A beach at sunset" --steps 28 --seed 7 --output beach.jpg',
          pipeline="flux-dev"),
    Route("/flux", FluxSchnellRequest, "flux", "Flux.1 Schnell: fast text to image (4 steps).",
          'ryla flux --prompt "A futuristic city at night" --width 768 --height 512',
          pipeline="flux-schnell"),
    Route("/flux-lora", FluxLoraRequest, "flux-lora",
          "Flux.1 Dev with a character LoRA from the LoRA store.",
          'ryla flux-lora --prompt "ryla_anna reading in a cafe" --lora-id anna --lora-strength 0.8',
          pipeline="flux-lora", completed_event="modal_lora_generation_completed"),
    Route("/flux-instantid", CharacterRequest, "flux-instantid",
          "One reference face in, an image of that face out (InstantID or PuLID-Flux).",
          'ryla flux-instantid --prompt "A professional headshot" --reference-image face.jpg '
          "--method pulid",
          pipeline_field="method", requested_event="modal_instantid_generation_requested",
          completed_event="modal_instantid_generation_completed"),
    # No event of its own in the contract: reports as Flux Dev, with its endpoint as a property.
    Route("/z-image", ZImageRequest, "z-image",
          "Z-Image-Turbo: fast drafts (8 steps, no guidance).",
          'ryla z-image --prompt "A red fox in the snow, quick draft" --seed 7 --output fox.jpg',
          pipeline="z-image"),
    Route("/wan2", Wan2Request, "wan2", "Wan 2.x: text to video.",
          'ryla wan2 --prompt "Waves rolling onto a beach" --frames 33 --fps 16 --output waves.webp',
          pipeline="wan2", media_types=VIDEO_MEDIA),
    Route("/workflow", WorkflowRequest, "workflow",
          "Run any ComfyUI graph (API format); saves its first output.",
          "ryla workflow --workflow graph_api.json --image face.png=./face.png",
          media_types=ANY_MEDIA),
)}

# Exact type -> route: a subclass of a request model is not silently posted elsewhere.
ROUTE_OF_MODEL: dict[type[BaseModel], Route] = {r.request_model: r for r in ROUTES.values()}
ROUTE_OF_COMMAND: dict[str, Route] = {r.command: r for r in ROUTES.values()}
