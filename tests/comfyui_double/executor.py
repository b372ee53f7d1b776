"""How the ComfyUI test double "executes" a validated graph. Test tool only.

No model runs. Every node's output gets a digest of its class and inputs (so the seed, the
prompt text and the size reached by the graph change it), and images are cheap flat-colour
frames with a stripe, both derived from that digest, at the size the graph asks for. Nodes
whose behaviour a test can check do it for real: LoadImage reads the uploaded file (a
corrupt one fails with PIL's OSError, as in the recording), EmptyImage uses its colour,
ImageInvert inverts, and output nodes write real PNG / animated WebP files.

Identity methods (InstantID, PuLID) are stood in for by pasting the reference: when an image
reaches an identity node (`IDENTITY_NODES`, e.g. LoadImage -> ApplyInstantIDAdvanced or
ApplyPulidFlux), that node's outputs carry the image, every node downstream of them passes it
on, and an image rendered from them (VAEDecode after the sampler) is the usual flat colour with
the reference scaled down to fit and pasted at an offset taken from the digest. Different seeds
and prompts still give different pixels while the face stays recognisable, as an
identity-preserving model would keep it: this stands in for the identity methods so that
face-consistency scoring (the studio's character sheet, `ryla sheet`) can be tested end to end,
with PASS results and similarity scores.

Runs in a worker thread; talks to the server only through `JobContext` callbacks.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tests.comfyui_double import wire

SAMPLERS = frozenset({"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"})
# Output nodes that write an animation; every other output node with images writes PNGs.
ANIMATED_SAVERS = frozenset({"SaveAnimatedWEBP", "SaveWEBM", "SaveVideo", "SaveAnimatedPNG"})
PREVIEW_NODES = frozenset({"PreviewImage"})
# Nodes that condition generation on a reference face: their `image` input is carried
# downstream and pasted into decoded images (see the module docstring).
IDENTITY_NODES = frozenset({"ApplyInstantID", "ApplyInstantIDAdvanced", "ApplyPulidFlux",
                            "InstantIDAttentionPatch"})
# The pasted reference fills at most this share of the frame's width and height.
_REFERENCE_FILL = 0.8
_DEFAULT_SIZE = 64
PREVIEW_SIZE = 64  # the previews' side; upstream's are up to --preview-size (512)


class ExecutionFailed(Exception):
    """A node raised while executing: becomes `execution_error`."""

    def __init__(self, node_id: str, node_type: str, exception_type: str, message: str) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type
        self.message = message


class Interrupted(Exception):
    """POST /interrupt arrived while a node ran: becomes `execution_interrupted`."""

    def __init__(self, node_id: str, node_type: str) -> None:
        super().__init__(f"interrupted at node {node_id}")
        self.node_id = node_id
        self.node_type = node_type


class Stopped(Exception):
    """The job ended early (failed or interrupted); `outputs` are what its output nodes
    saved before that, kept in its history entry as upstream keeps them."""

    def __init__(self, cause: ExecutionFailed | Interrupted, outputs: dict[str, dict]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.outputs = outputs


@dataclass(frozen=True)
class Value:
    """One output slot of a node: an image batch, a latent's geometry, or anything else."""

    kind: str
    digest: str
    frames: np.ndarray | None = None  # IMAGE: (count, height, width, 3) uint8
    width: int = _DEFAULT_SIZE
    height: int = _DEFAULT_SIZE
    count: int = 1  # LATENT: images (batch * video length) it decodes to
    # The reference image (height, width, 3) uint8 an identity node conditioned this on.
    reference: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass
class JobContext:
    prompt_id: str
    graph: dict
    outputs_to_run: list[str]
    object_info: dict
    input_dir: Path
    output_dir: Path
    temp_dir: Path
    emit: Callable[[dict], None]
    interrupt: threading.Event
    # a sampler step's preview (node id, JPEG): the server frames it for the client
    preview: Callable[[str, bytes], None] | None = None
    step_delay: float = 0.0
    fail_message: str | None = None
    hang: bool = False
    # nodes of this class wait for the event and never see an interrupt while they run
    hold: tuple[str, threading.Event] | None = None
    # the node running now, for tests to wait on
    running_node: list[str] = field(default_factory=list)


@dataclass
class JobResult:
    outputs: dict[str, dict] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def render_frames(digest: str, width: int, height: int, count: int) -> np.ndarray:
    """Flat colour from the digest with a stripe that moves from frame to frame."""
    seed = bytes.fromhex(digest[:16])
    colour = np.array(list(seed[:3]), dtype=np.uint8)
    stripe = np.array([255 - c for c in seed[:3]], dtype=np.uint8)
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    frames[:] = colour
    band = max(1, height // 8)
    for index in range(count):
        top = (seed[3] + index * band) % max(1, height - band + 1)
        frames[index, top:top + band, :, :] = stripe
    return frames


def paste_reference(frames: np.ndarray, reference: np.ndarray, digest: str) -> np.ndarray:
    """The reference scaled down to fit `_REFERENCE_FILL` of the frame (never up) and pasted
    on every frame at an offset taken from the digest."""
    count, height, width = frames.shape[:3]
    ref_h, ref_w = reference.shape[:2]
    scale = min(1.0, _REFERENCE_FILL * width / ref_w, _REFERENCE_FILL * height / ref_h)
    size = (max(1, round(ref_w * scale)), max(1, round(ref_h * scale)))
    pasted = reference if scale == 1.0 else np.asarray(
        Image.fromarray(reference).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    seed = bytes.fromhex(digest[16:24])
    left = int.from_bytes(seed[:2], "big") % (width - size[0] + 1)
    top = int.from_bytes(seed[2:], "big") % (height - size[1] + 1)
    out = frames.copy()
    out[:, top:top + size[1], left:left + size[0], :] = pasted
    return out


def execution_order(graph: dict, outputs: list[str]) -> list[str]:
    """Nodes the outputs depend on, each after its inputs (ComfyUI's order for a chain)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        if node_id in seen:
            return
        seen.add(node_id)
        for value in graph[node_id]["inputs"].values():
            if isinstance(value, list) and len(value) == 2:
                visit(value[0])
        order.append(node_id)

    for output_id in outputs:
        visit(output_id)
    return order


def _next_counter(folder: Path, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"_(\d{5})_\.")
    found = [int(m.group(1)) for p in folder.glob(f"{prefix}_*") if (m := pattern.match(p.name))]
    return max(found, default=0) + 1


class _Run:
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.values: dict[str, list[Value]] = {}
        self.result = JobResult()
        self.states: dict[str, tuple[str, float, float]] = {}  # progress_state's nodes

    def wait(self, node_id: str, seconds: float) -> None:
        """Sleep that an interrupt ends at once."""
        if self.ctx.interrupt.wait(seconds) if seconds > 0 else self.ctx.interrupt.is_set():
            raise Interrupted(node_id, self.ctx.graph[node_id]["class_type"])

    def resolve(self, node_id: str) -> dict[str, Any]:
        resolved = {}
        for name, value in self.ctx.graph[node_id]["inputs"].items():
            if isinstance(value, list) and len(value) == 2:
                resolved[name] = self.values[value[0]][value[1]]
            else:
                resolved[name] = value
        return resolved

    def run(self) -> JobResult:
        ctx = self.ctx
        order = execution_order(ctx.graph, ctx.outputs_to_run)
        fail_at = next((n for n in order if ctx.graph[n]["class_type"] in SAMPLERS), order[0])
        states = self.states
        for node_id in order:
            class_type = ctx.graph[node_id]["class_type"]
            states[node_id] = ("running", 0.0, 1.0)
            ctx.emit(wire.progress_state(ctx.prompt_id, states))
            ctx.emit(wire.executing(ctx.prompt_id, node_id))
            ctx.running_node[:] = [node_id]
            # ComfyUI checks for an interrupt as a node starts and inside sampler steps only
            self.wait(node_id, ctx.step_delay)
            if ctx.hold is not None and ctx.hold[0] == class_type:
                ctx.hold[1].wait()  # a node that cannot be interrupted, however long it takes
            if ctx.hang:
                ctx.interrupt.wait()
                raise Interrupted(node_id, class_type)
            if ctx.fail_message is not None and node_id == fail_at:
                raise ExecutionFailed(node_id, class_type, "RuntimeError", ctx.fail_message)
            self.values[node_id] = self.execute(node_id, class_type)
            self.result.executed.append(node_id)
            states[node_id] = ("finished", 1.0, 1.0)
            if node_id in self.result.outputs:
                ctx.emit(wire.executed(ctx.prompt_id, node_id, self.result.outputs[node_id]))
            ctx.emit(wire.progress_state(ctx.prompt_id, states))
        return self.result

    def execute(self, node_id: str, class_type: str) -> list[Value]:
        inputs = self.resolve(node_id)
        digest = _digest(class_type, {k: v.digest if isinstance(v, Value) else v
                                      for k, v in inputs.items()})
        if class_type in SAMPLERS:
            self.sample(node_id, inputs)
        if class_type == "LoadImage":
            return self.load_image(node_id, str(inputs["image"]))
        if class_type == "EmptyImage":
            return [self.empty_image(inputs, digest)]
        if class_type == "ImageInvert":
            image = inputs["image"]
            return [Value("IMAGE", digest, 255 - image.frames, image.width, image.height,
                          image.count)]
        if self.ctx.object_info[class_type].get("output_node"):
            self.save(node_id, class_type, inputs)
        types = self.ctx.object_info[class_type].get("output", [])
        reference = self.reference_of(class_type, inputs)
        return [self.generic(t, inputs, _digest(digest, i), reference)
                for i, t in enumerate(types)]

    @staticmethod
    def reference_of(class_type: str, inputs: dict[str, Any]) -> np.ndarray | None:
        """The reference an identity node takes, else the one an input carries."""
        image = inputs.get("image")
        if (class_type in IDENTITY_NODES and isinstance(image, Value)
                and image.frames is not None):
            return image.frames[0]
        return next((v.reference for v in inputs.values()
                     if isinstance(v, Value) and v.reference is not None), None)

    def sample(self, node_id: str, inputs: dict[str, Any]) -> None:
        steps = inputs.get("steps")
        if not isinstance(steps, int):
            # SamplerCustomAdvanced: the steps are on the scheduler node behind `sigmas`.
            sigmas = self.ctx.graph[node_id]["inputs"].get("sigmas")
            source = self.ctx.graph[sigmas[0]]["inputs"] if isinstance(sigmas, list) else {}
            steps = source.get("steps", 1) if isinstance(source.get("steps"), int) else 1
        for step in range(1, steps + 1):
            self.wait(node_id, self.ctx.step_delay)
            # upstream's progress hook: the progress state (and, to a client that asked for
            # metadata, the preview), then `progress`, then the older preview frame
            self.states[node_id] = ("running", float(step), float(steps))
            self.ctx.emit(wire.progress_state(self.ctx.prompt_id, self.states))
            if self.ctx.preview is not None:
                self.ctx.preview(node_id, preview_jpeg(node_id, step, steps))
            self.ctx.emit(wire.progress(self.ctx.prompt_id, node_id, step, steps))

    def load_image(self, node_id: str, name: str) -> list[Value]:
        path = self.ctx.input_dir / name
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError) as exc:
            exception_type = type(exc).__name__
            if isinstance(exc, FileNotFoundError):
                exception_type = "FileNotFoundError"
            raise ExecutionFailed(node_id, "LoadImage", exception_type, f"{exc}\n") from exc
        digest = _digest("LoadImage", name, hashlib.sha256(rgb.tobytes()).hexdigest())
        height, width = rgb.shape[:2]
        image = Value("IMAGE", digest, rgb[None, ...], width, height, 1)
        return [image, Value("MASK", _digest(digest, "mask"))]

    @staticmethod
    def empty_image(inputs: dict[str, Any], digest: str) -> Value:
        width, height, batch = int(inputs["width"]), int(inputs["height"]), int(inputs["batch_size"])
        colour = int(inputs.get("color", 0))
        frames = np.empty((batch, height, width, 3), dtype=np.uint8)
        frames[:] = [(colour >> 16) & 255, (colour >> 8) & 255, colour & 255]
        return Value("IMAGE", digest, frames, width, height, batch)

    @staticmethod
    def generic(output_type: str, inputs: dict[str, Any], digest: str,
                reference: np.ndarray | None = None) -> Value:
        linked = [v for v in inputs.values() if isinstance(v, Value)]
        latent = next((v for v in linked if v.kind == "LATENT"), None)
        image = next((v for v in linked if v.kind == "IMAGE"), None)
        has_size = isinstance(inputs.get("width"), int) and isinstance(inputs.get("height"), int)
        if has_size:
            length = inputs.get("length", 1)
            count = int(inputs.get("batch_size", 1)) * (length if isinstance(length, int) else 1)
            width, height = inputs["width"], inputs["height"]
        elif latent is not None or image is not None:
            source = latent or image
            width, height, count = source.width, source.height, source.count
        else:
            width, height, count = _DEFAULT_SIZE, _DEFAULT_SIZE, 1
        if output_type == "IMAGE":
            if latent is None and image is not None and not has_size:
                return image  # an image filter the double does not model: pass it through
            frames = render_frames(digest, width, height, count)
            if reference is not None:
                frames = paste_reference(frames, reference, digest)
            return Value("IMAGE", digest, frames, width, height, count)
        if output_type == "LATENT":
            return Value("LATENT", digest, None, width, height, count, reference)
        return Value(output_type, digest, reference=reference)

    def save(self, node_id: str, class_type: str, inputs: dict[str, Any]) -> None:
        images = inputs.get("images")
        if not isinstance(images, Value) or images.frames is None:
            return
        kind = "temp" if class_type in PREVIEW_NODES else "output"
        root = self.ctx.temp_dir if kind == "temp" else self.ctx.output_dir
        prefix = str(inputs.get("filename_prefix", "ComfyUI"))
        # upstream's get_save_image_path: the prefix's folder part, normalized, must stay
        # inside the output folder
        output_dir = os.path.abspath(root)
        subfolder = os.path.dirname(os.path.normpath(prefix))
        base = os.path.basename(os.path.normpath(prefix))
        full = os.path.join(output_dir, subfolder)
        if os.path.commonpath((output_dir, os.path.abspath(full))) != output_dir:
            raise ExecutionFailed(node_id, class_type, "Exception",
                                  wire.save_outside_output_message(full, output_dir))
        folder = root / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        counter = _next_counter(folder, base)
        entries = []
        if class_type in ANIMATED_SAVERS:
            path = folder / f"{base}_{counter:05}_.webp"
            fps = float(inputs.get("fps", 6.0))
            frames = [Image.fromarray(f) for f in images.frames]
            frames[0].save(path, format="WEBP", save_all=True, append_images=frames[1:],
                           duration=int(1000 / fps), loop=0, quality=80, method=0)
            entries.append(path)
        else:
            for index, frame in enumerate(images.frames):
                path = folder / f"{base}_{counter + index:05}_.png"
                Image.fromarray(frame).save(path, format="PNG", compress_level=1)
                entries.append(path)
        ui: dict[str, Any] = {"images": [
            {"filename": p.name, "subfolder": subfolder, "type": kind}
            for p in entries]}
        if class_type in ANIMATED_SAVERS:
            ui["animated"] = [True]
        self.result.outputs[node_id] = ui


def preview_jpeg(node_id: str, step: int, steps: int) -> bytes:
    """A small latent-preview stand-in: brighter at each step."""
    level = round(255 * step / steps)
    out = io.BytesIO()
    Image.new("RGB", (PREVIEW_SIZE, PREVIEW_SIZE), (level, 64, 255 - level)).save(
        out, format="JPEG", quality=95)
    return out.getvalue()


def run_job(ctx: JobContext) -> JobResult:
    """Execute the graph; raises Stopped (an ExecutionFailed or Interrupted cause)."""
    run = _Run(ctx)
    try:
        return run.run()
    except (ExecutionFailed, Interrupted) as cause:
        raise Stopped(cause, run.result.outputs) from cause
    finally:
        ctx.running_node.clear()
