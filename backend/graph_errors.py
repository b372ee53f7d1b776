"""Graph problems (ours from workflows.validate, or ComfyUI's own /prompt 400) as API
errors: a model file that is not installed is 503 with how to install it; anything
else is the caller's graph (400, every problem listed) or, for a built-in pipeline,
a broken deployment (502).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.errors import ApiError, ComfyUIJobFailed, InvalidWorkflow, ModelNotInstalled
from workflows.manifest import MODEL_MANIFEST, ModelFile
from workflows.object_info import FOLDER_ALIASES, MODEL_FILE_INPUTS
from workflows.validate import GraphProblem

MAX_LISTED = 20


def is_missing_model(problem: GraphProblem) -> bool:
    return (problem.kind == "value_not_in_list"
            and (problem.class_type, problem.input_name) in MODEL_FILE_INPUTS)


def _manifest_entry(folder: str, name: str) -> ModelFile | None:
    folders = {folder, *FOLDER_ALIASES.get(folder, ())}
    for entry in MODEL_MANIFEST:
        if entry.local_name == name and entry.folder in folders:
            return entry
    for entry in MODEL_MANIFEST:  # same file name, another folder spelling
        if entry.local_name == name:
            return entry
    return None


def install_hint(folder: str, name: str, models_dir: Path) -> str:
    if folder == "loras":
        return "upload the LoRA with POST /loras (or `ryla` / the studio's LoRA tab)"
    entry = _manifest_entry(folder, name)
    target = Path(models_dir) / folder
    if entry is None:
        return f"put {name!r} into ComfyUI's models/{folder} folder ({target})"
    gated = (" It is gated: accept its licence on huggingface.co and set HF_TOKEN."
             if entry.gated else "")
    dest = target / entry.local_name
    if entry.local_name.endswith(entry.filename):
        # hf download keeps the repo path under --local-dir: this one lands on dest
        local_dir = target / entry.local_name[:-len(entry.filename)]
        how = f"`hf download {entry.repo_id} {entry.filename} --local-dir {local_dir}`"
    else:
        how = (f"`hf download {entry.repo_id} {entry.filename} --local-dir {target}` "
               f"and moving {target / entry.filename} there")
    return (f"download {entry.filename} from the Hugging Face repo {entry.repo_id} "
            f"({entry.size_bytes / 1e9:.1f} GB) into {dest}, e.g. {how}.{gated}")


def missing_model_message(problem: GraphProblem, models_dir: Path) -> str:
    folder = MODEL_FILE_INPUTS[(problem.class_type or "", problem.input_name or "")]
    name = str(problem.extra_info.get("received_value", "?"))
    return (f"model file {name!r} ({problem.class_type}.{problem.input_name}, node "
            f"{problem.node_id}) is not installed in ComfyUI's models/{folder}: "
            f"{install_hint(folder, name, models_dir)}")


def to_api_error(problems: list[GraphProblem], *, user_graph: bool, models_dir: Path) -> ApiError:
    missing = [p for p in problems if is_missing_model(p)]
    others = [p for p in problems if not is_missing_model(p)]
    if not others:
        text = "; ".join(missing_model_message(p, models_dir) for p in missing[:MAX_LISTED])
        field = f"{missing[0].class_type}.{missing[0].input_name}"
        return ModelNotInstalled(text, field=field)
    listed = [f"node {p.node_id} ({p.class_type}): {p.message}" if p.node_id else p.message
              for p in problems[:MAX_LISTED]]
    more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
    if user_graph:
        return InvalidWorkflow(
            f"the workflow has {len(problems)} problem(s): " + "; ".join(listed) + more,
            field="workflow")
    return ComfyUIJobFailed("ComfyUI rejected the built-in graph (the deployment's ComfyUI "
                            "does not match the shipped graphs): " + "; ".join(listed) + more)


def problems_from_comfyui(body: dict[str, Any]) -> list[GraphProblem]:
    """ComfyUI's 400 answer to POST /prompt, as GraphProblems."""
    problems: list[GraphProblem] = []
    for node_id, node in (body.get("node_errors") or {}).items():
        for err in node.get("errors") or []:
            extra = err.get("extra_info") or {}
            problems.append(GraphProblem(
                kind=str(err.get("type", "")), node_id=str(node_id),
                class_type=node.get("class_type"), input_name=extra.get("input_name"),
                message=f"{err.get('message', '')}: {err.get('details', '')}".strip(": "),
                details=str(err.get("details", "")), extra_info=extra,
                dependent_outputs=tuple(node.get("dependent_outputs") or ())))
    if not problems:
        err = body.get("error") or {}
        if isinstance(err, str):
            err = {"type": "invalid_prompt", "message": err}
        extra = err.get("extra_info") or {}
        problems.append(GraphProblem(
            kind=str(err.get("type", "invalid_prompt")), node_id=extra.get("node_id"),
            class_type=extra.get("class_type"), input_name=None,
            message=" ".join(filter(None, [err.get("message"), err.get("details")])) or
            "ComfyUI refused the graph",
            details=str(err.get("details", "")), extra_info=extra))
    return problems
