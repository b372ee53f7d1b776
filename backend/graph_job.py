"""What crosses between the Modal web tier and the GPU function: one filled graph with
its input images and deadline, and back its outputs' bytes and timings (and whether
ComfyUI finished it although it was asked to stop), or the API error it failed with
(and, for a stop, whether ComfyUI confirmed it); while it runs, its progress and previews
as events on the job's channel (backend/modal_dispatch.py `JobChannel`). Plain dicts of
str/bytes/numbers, so Modal's serialization needs nothing of ours to read them and either
side can be tested without the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.comfyui_client import JobPreview, JobProgress, OutputFile
from backend.errors import ApiError, ComfyUIJobFailed, JobStopped, error_for_code
from backend.graph_runner import GraphResult


@dataclass(frozen=True)
class GraphJob:
    graph: dict[str, Any]
    images: dict[str, bytes]  # name the graph's LoadImage uses -> PNG bytes
    user_graph: bool
    # wall clock (time.time()) the job must end by: containers share no monotonic clock,
    # and the wait for a GPU container counts against the deadline too
    deadline_at: float
    request_id: str = ""
    prompt_id: str = ""  # the ComfyUI prompt id the web tier recorded ("" lets ComfyUI's client pick)
    # the job's key on the channel between the tiers ("": no channel, e.g. the rehearsal CLI)
    channel_key: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {"graph": self.graph, "images": dict(self.images), "user_graph": self.user_graph,
                "deadline_at": self.deadline_at, "request_id": self.request_id,
                "prompt_id": self.prompt_id, "channel_key": self.channel_key}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> GraphJob:
        return cls(graph=dict(wire["graph"]), images=dict(wire.get("images") or {}),
                   user_graph=bool(wire.get("user_graph")), deadline_at=float(wire["deadline_at"]),
                   request_id=str(wire.get("request_id") or ""),
                   prompt_id=str(wire.get("prompt_id") or ""),
                   channel_key=str(wire.get("channel_key") or ""))


def result_to_wire(result: GraphResult) -> dict[str, Any]:
    return {"prompt_id": result.prompt_id, "timings": dict(result.timings),
            "stopped_late": result.stopped_late,
            "outputs": [{"node_id": o.node_id, "filename": o.filename,
                         "content_type": o.content_type, "data": o.data} for o in result.outputs]}


def error_to_wire(error: ApiError) -> dict[str, Any]:
    wire = error.to_body()["error"]
    if isinstance(error, JobStopped):
        wire["confirmed"] = error.confirmed  # ComfyUI's word on the stop, or none
    return {"error": wire}


def result_from_wire(wire: Any) -> GraphResult:
    """The GPU function's answer as a GraphResult; its error raised as the same API
    error (same status and error code) the GPU side had."""
    if not isinstance(wire, Mapping):
        raise ComfyUIJobFailed(f"the GPU function answered with a {type(wire).__name__}, "
                               "not a result; is the deployed app older than this web tier?")
    if isinstance(wire.get("error"), Mapping):
        err = wire["error"]
        error = error_for_code(str(err.get("code") or ""), str(err.get("message") or "no message"),
                               err.get("field"))
        if isinstance(error, JobStopped):
            # a GPU side older than this field never confirmed anything to the web tier
            error.confirmed = err.get("confirmed") is True
        raise error
    try:
        outputs = [OutputFile(str(o["node_id"]), str(o["filename"]), str(o["content_type"]),
                              bytes(o["data"])) for o in wire["outputs"]]
        timings = {str(k): float(v) for k, v in (wire.get("timings") or {}).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ComfyUIJobFailed(f"the GPU function's result is malformed ({exc!r})") from None
    if not outputs:
        raise ComfyUIJobFailed("the GPU function finished without an output file")
    return GraphResult(wire.get("prompt_id"), outputs, timings,
                       stopped_late=wire.get("stopped_late") is True)


# -- events, GPU side -> web tier ----------------------------------------------------------


def event_to_wire(event: JobProgress | JobPreview) -> dict[str, Any]:
    if isinstance(event, JobProgress):
        return {"kind": "progress", "fraction": event.fraction, "step": event.step,
                "steps": event.steps, "node": event.node}
    return {"kind": "preview", "step": event.step, "jpeg": event.jpeg}


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def event_from_wire(wire: Any) -> JobProgress | JobPreview | None:
    """The event, or None for anything else (a GPU side's liveness beat, a kind this web
    tier does not know)."""
    if not isinstance(wire, Mapping):
        return None
    kind = wire.get("kind")
    if kind == "progress" and isinstance(wire.get("fraction"), (int, float)):
        node = wire.get("node")
        return JobProgress(float(wire["fraction"]), _int_or_none(wire.get("step")),
                           _int_or_none(wire.get("steps")), str(node) if node is not None else None)
    if kind == "preview" and isinstance(wire.get("jpeg"), (bytes, bytearray)):
        return JobPreview(_int_or_none(wire.get("step")), bytes(wire["jpeg"]))
    return None
