"""What crosses between the Modal web tier and the GPU function: one filled graph with
its input images and deadline, and back its outputs' bytes and timings, or the API
error it failed with. Plain dicts of str/bytes/numbers, so Modal's serialization needs
nothing of ours to read them and either side can be tested without the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.comfyui_client import OutputFile
from backend.errors import ApiError, ComfyUIJobFailed, error_for_code
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

    def to_wire(self) -> dict[str, Any]:
        return {"graph": self.graph, "images": dict(self.images), "user_graph": self.user_graph,
                "deadline_at": self.deadline_at, "request_id": self.request_id,
                "prompt_id": self.prompt_id}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> GraphJob:
        return cls(graph=dict(wire["graph"]), images=dict(wire.get("images") or {}),
                   user_graph=bool(wire.get("user_graph")), deadline_at=float(wire["deadline_at"]),
                   request_id=str(wire.get("request_id") or ""),
                   prompt_id=str(wire.get("prompt_id") or ""))


def result_to_wire(result: GraphResult) -> dict[str, Any]:
    return {"prompt_id": result.prompt_id, "timings": dict(result.timings),
            "outputs": [{"node_id": o.node_id, "filename": o.filename,
                         "content_type": o.content_type, "data": o.data} for o in result.outputs]}


def error_to_wire(error: ApiError) -> dict[str, Any]:
    return {"error": error.to_body()["error"]}


def result_from_wire(wire: Any) -> GraphResult:
    """The GPU function's answer as a GraphResult; its error raised as the same API
    error (same status and error code) the GPU side had."""
    if not isinstance(wire, Mapping):
        raise ComfyUIJobFailed(f"the GPU function answered with a {type(wire).__name__}, "
                               "not a result; is the deployed app older than this web tier?")
    if isinstance(wire.get("error"), Mapping):
        err = wire["error"]
        raise error_for_code(str(err.get("code") or ""), str(err.get("message") or "no message"),
                             err.get("field"))
    try:
        outputs = [OutputFile(str(o["node_id"]), str(o["filename"]), str(o["content_type"]),
                              bytes(o["data"])) for o in wire["outputs"]]
        timings = {str(k): float(v) for k, v in (wire.get("timings") or {}).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ComfyUIJobFailed(f"the GPU function's result is malformed ({exc!r})") from None
    if not outputs:
        raise ComfyUIJobFailed("the GPU function finished without an output file")
    return GraphResult(wire.get("prompt_id"), outputs, timings)
