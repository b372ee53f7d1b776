"""ComfyUI's wire formats, as recorded in tests/data/comfyui/api_examples.md.

Test tool only: builds the JSON bodies and WebSocket messages the double sends, so that the
shapes live in one place and the routes/executor stay about behaviour.
"""

from __future__ import annotations

import json
import os
import struct
import time
from typing import Any

from workflows.validate import PROMPT_LEVEL_KINDS, GraphProblem, comfy_message


def now_ms() -> int:
    return int(time.time() * 1000)


def error_body(error_type: str, message: str, details: str = "",
               extra_info: dict | None = None, node_errors: dict | None = None) -> dict:
    return {"error": {"type": error_type, "message": message, "details": details,
                      "extra_info": extra_info or {}},
            "node_errors": node_errors or {}}


def no_prompt_body() -> dict:
    return error_body("no_prompt", "No prompt provided", "No prompt provided")


def node_errors(problems: list[GraphProblem]) -> dict[str, dict]:
    """`node_errors` of a POST /prompt answer: node id -> errors, dependent outputs, class."""
    result: dict[str, dict] = {}
    for problem in problems:
        if problem.node_id is None or problem.kind in PROMPT_LEVEL_KINDS:
            continue
        entry = result.setdefault(problem.node_id, {
            "errors": [], "dependent_outputs": list(problem.dependent_outputs),
            "class_type": problem.class_type})
        entry["errors"].append({"type": problem.kind, "message": comfy_message(problem),
                                "details": problem.details, "extra_info": problem.extra_info})
    return result


def validation_failure_body(problems: list[GraphProblem]) -> dict:
    """The 400 body for a graph none of whose outputs can run."""
    prompt_level = [p for p in problems if p.kind in PROMPT_LEVEL_KINDS]
    if prompt_level:
        problem = prompt_level[0]
        return error_body(problem.kind, comfy_message(problem), problem.details,
                          problem.extra_info)
    # ComfyUI's details list only the output nodes' own errors, one "message: details" a
    # line; upstream's extra_info stays empty (the errors are in node_errors).
    own = [p for p in problems if p.node_id in p.dependent_outputs]
    details = "\n".join(f"{comfy_message(p)}: {p.details}" for p in own)
    return error_body("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                      details, {}, node_errors(problems))


def queued_body(prompt_id: str, number: int, problems: list[GraphProblem]) -> dict:
    return {"prompt_id": prompt_id, "number": number, "node_errors": node_errors(problems)}


# --- WebSocket messages -------------------------------------------------------------------

def msg(kind: str, data: dict) -> dict:
    return {"type": kind, "data": data}


def status_msg(queue_remaining: int, sid: str | None = None) -> dict:
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return msg("status", data)


def execution_start(prompt_id: str) -> dict:
    return msg("execution_start", {"prompt_id": prompt_id, "timestamp": now_ms()})


def execution_cached(prompt_id: str) -> dict:
    return msg("execution_cached", {"nodes": [], "prompt_id": prompt_id, "timestamp": now_ms()})


def executing(prompt_id: str, node_id: str | None) -> dict:
    return msg("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id})


def progress(prompt_id: str, node_id: str, value: int, maximum: int) -> dict:
    return msg("progress", {"value": value, "max": maximum, "prompt_id": prompt_id,
                            "node": node_id})


def progress_state(prompt_id: str, states: dict[str, tuple[str, float, float]]) -> dict:
    """Every started node's (state, value, max): sent as a node starts, at each step it
    reports, and as it finishes."""
    nodes = {node_id: {"value": value, "max": maximum, "state": state, "node_id": node_id,
                       "prompt_id": prompt_id, "display_node_id": node_id,
                       "parent_node_id": None, "real_node_id": node_id}
             for node_id, (state, value, maximum) in states.items()}
    return msg("progress_state", {"prompt_id": prompt_id, "nodes": nodes})


def executed(prompt_id: str, node_id: str, output: dict) -> dict:
    return msg("executed", {"node": node_id, "display_node": node_id, "output": output,
                            "prompt_id": prompt_id})


def execution_success(prompt_id: str) -> dict:
    return msg("execution_success", {"prompt_id": prompt_id, "timestamp": now_ms()})


def execution_error(prompt_id: str, node_id: str, node_type: str, executed_ids: list[str],
                    exception_message: str, exception_type: str, traceback: list[str],
                    current_inputs: dict, current_outputs: list[str]) -> dict:
    return msg("execution_error", {
        "prompt_id": prompt_id, "node_id": node_id, "node_type": node_type,
        "executed": executed_ids, "exception_message": exception_message,
        "exception_type": exception_type, "traceback": traceback,
        "current_inputs": current_inputs, "current_outputs": current_outputs,
        "timestamp": now_ms()})


def execution_interrupted(prompt_id: str, node_id: str, node_type: str,
                          executed_ids: list[str]) -> dict:
    return msg("execution_interrupted", {"prompt_id": prompt_id, "node_id": node_id,
                                         "node_type": node_type, "executed": executed_ids,
                                         "timestamp": now_ms()})


# --- /history -----------------------------------------------------------------------------

def history_entry(number: int, prompt_id: str, graph: dict, client_id: str | None,
                  create_time: int, outputs_to_run: list[str], outputs: dict,
                  status_str: str, messages: list[dict], meta: dict) -> dict:
    return {
        "prompt": [number, prompt_id, graph,
                   {"client_id": client_id, "create_time": create_time}, outputs_to_run],
        "outputs": outputs,
        "status": {"status_str": status_str, "completed": status_str == "success",
                   "messages": [[m["type"], m["data"]] for m in messages]},
        "meta": meta,
    }


def output_meta(node_id: str) -> dict:
    return {"node_id": node_id, "display_node": node_id, "parent_node": None,
            "real_node_id": node_id}


# --- binary /ws frames (upstream server.py: encode_bytes, send_image, send_image_with_metadata)

PREVIEW_IMAGE, PREVIEW_IMAGE_WITH_METADATA = 1, 4  # protocol.BinaryEventTypes
JPEG = 1  # PREVIEW_IMAGE's image type (2 is PNG)


def preview_frame(jpeg: bytes) -> bytes:
    """The older preview frame, sent to a client that did not ask for metadata."""
    return struct.pack(">I", PREVIEW_IMAGE) + struct.pack(">I", JPEG) + jpeg


def preview_frame_with_metadata(jpeg: bytes, prompt_id: str, node_id: str) -> bytes:
    """The frame a client gets after sending feature flags with supports_preview_metadata."""
    metadata = json.dumps({"node_id": node_id, "prompt_id": prompt_id,
                           "display_node_id": node_id, "parent_node_id": None,
                           "real_node_id": node_id, "image_type": "image/jpeg"}).encode()
    return (struct.pack(">I", PREVIEW_IMAGE_WITH_METADATA) + struct.pack(">I", len(metadata))
            + metadata + jpeg)


def server_feature_flags() -> dict:
    """The answer to a client's feature flags (upstream's SERVER_FEATURE_FLAGS)."""
    return msg("feature_flags", {"supports_preview_metadata": True,
                                 "max_upload_size": 100 * 1024 * 1024,
                                 "extension": {"manager": {"supports_v4": True}}})


def save_outside_output_message(full_output_folder: str, output_dir: str) -> str:
    """Upstream folder_paths.get_save_image_path's error for a prefix that climbs out."""
    common = os.path.commonpath((output_dir, os.path.abspath(full_output_folder)))
    return ("**** ERROR: Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {os.path.abspath(full_output_folder)}"
            f"\n         output_dir: {output_dir}"
            f"\n         commonpath: {common}")
