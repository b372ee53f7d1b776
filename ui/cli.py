"""ryla: every backend endpoint from the terminal, plus success-rate, bench and sheet.

Exit codes: 0 success, 1 a backend error (its message printed) or a run that was not a
full success, 2 bad usage (argparse's own errors and out-of-range fields alike).
Generation options come from the same pydantic models the backend validates with
(workflows/request_models.py), so a range is written once.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import types
import typing
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ui.client import (
    DEFAULT_BACKEND_URL,
    DEFAULT_RETRY_BUDGET_S,
    BackendError,
    BackendUnreachable,
    GenerationResult,
    RylaClient,
    extension_for,
    image_data_url,
)
from ui.face_consistency import DEFAULT_THRESHOLD
from ui.prompts import SEED_PROMPTS, SHEET_VARIATIONS, PromptFileError, load_prompt_file
from ui.score_command import add_score_arguments, run_score, threshold_arg
from workflows.request_models import ROUTES

OUTPUTS_DIR = Path("outputs")

# command -> (route, one-line description, example)
GENERATE_COMMANDS: dict[str, tuple[str, str, str]] = {
    "flux-dev": ("/flux-dev", "Flux.1 Dev: text to image.",
                 'ryla flux-dev --prompt "A beach at sunset" --steps 28 --seed 7 --output beach.jpg'),
    "flux": ("/flux", "Flux.1 Schnell: fast text to image (4 steps).",
             'ryla flux --prompt "A futuristic city at night" --width 768 --height 512'),
    "flux-lora": ("/flux-lora", "Flux.1 Dev with a character LoRA from the LoRA store.",
                  'ryla flux-lora --prompt "ryla_anna reading in a cafe" --lora-id anna '
                  "--lora-strength 0.8"),
    "flux-instantid": ("/flux-instantid", "One reference face in, an image of that face out "
                       "(InstantID or PuLID-Flux).",
                       'ryla flux-instantid --prompt "A professional headshot" '
                       "--reference-image face.jpg --method pulid"),
    "wan2": ("/wan2", "Wan 2.x: text to video.",
             'ryla wan2 --prompt "Waves rolling onto a beach" --frames 33 --fps 16 --output waves.webp'),
    "workflow": ("/workflow", "Run any ComfyUI graph (API format); saves its first output.",
                 "ryla workflow --workflow graph_api.json --image face.png=./face.png"),
}
BENCH_ENDPOINTS = tuple(name for name in GENERATE_COMMANDS if name != "workflow")

# Fields whose option takes something other than the field's own value.
_FILE_FIELDS = {"reference_image", "workflow", "images"}

_FIELD_HELP: dict[str, str] = {
    "prompt": "what to generate",
    "negative_prompt": "what to avoid",
    "width": "width in pixels",
    "height": "height in pixels",
    "steps": "sampling steps",
    "guidance": "prompt guidance",
    "seed": "seed (random when absent; the one used is printed)",
    "format": "image format",
    "lora_id": "id of a LoRA in the store (see `ryla loras`)",
    "lora_strength": "LoRA strength",
    "trigger_word": "LoRA trigger word (the store's when absent)",
    "method": "identity method: instantid (SDXL) or pulid (Flux)",
    "instantid_strength": "identity strength",
    "controlnet_strength": "face keypoint ControlNet strength",
    "frames": "video length in frames, 4k+1",
    "fps": "frames per second",
}


class UsageError(Exception):
    """Bad options: reported like argparse's own errors, exit 2."""


# -- options from request models ---------------------------------------------------------


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _range_text(field: Any) -> str:
    low = high = None
    for item in field.metadata:
        low = getattr(item, "ge", None) if getattr(item, "ge", None) is not None else low
        high = getattr(item, "le", None) if getattr(item, "le", None) is not None else high
    if low is not None and high is not None and high < 2**62:
        return f"{low}-{high}"
    if low is not None:
        return f">= {low}"
    return ""


def _scalar_type(annotation: Any) -> tuple[Callable[[str], Any] | None, list[str] | None]:
    """argparse type and choices for a field annotation (Optional and Literal unwrapped)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    if typing.get_origin(annotation) is typing.Literal:
        return str, [str(arg) for arg in typing.get_args(annotation)]
    if annotation in (int, float, str):
        return annotation, None
    return None, None


def add_model_options(parser: argparse._ActionsContainer, model: type[BaseModel],
                      *, skip: Sequence[str] = (), all_optional: bool = False) -> list[str]:
    """One option per field of `model`; returns the field names added.

    Defaults stay unset so that pydantic, not argparse, fills them: the help text shows
    the model's default and range, and one set of rules applies everywhere.
    """
    added = []
    for name, field in model.model_fields.items():
        if name in skip or name in _FILE_FIELDS:
            continue
        arg_type, choices = _scalar_type(field.annotation)
        if arg_type is None:
            continue
        parts = [_FIELD_HELP.get(name, name.replace("_", " "))]
        allowed = _range_text(field)
        if allowed:
            parts.append(allowed)
        if name in ("width", "height"):
            parts.append("multiple of 16")
        if not field.is_required() and field.default not in (None, ""):
            parts.append(f"default {field.default}")
        required = field.is_required() and not all_optional
        parser.add_argument(_option(name), dest=name, type=arg_type, choices=choices,
                            required=required, default=None,
                            help="; ".join(parts) + (" (required)" if required else ""))
        added.append(name)
    return added


def _allowed_for(model: type[BaseModel], name: str) -> str:
    field = model.model_fields.get(name)
    if field is None:
        return ""
    arg_type, choices = _scalar_type(field.annotation)
    if choices:
        return "one of " + ", ".join(choices)
    allowed = _range_text(field)
    return f"allowed {allowed}" if allowed else ""


def validation_message(model: type[BaseModel], exc: ValidationError) -> str:
    """`--width: Input should be ... (got 100; allowed 256-2048)`, one line per problem."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        option = _option(name) if name else "request"
        if error["type"] == "extra_forbidden":
            lines.append(f"{option}: not an option of {model.__name__}")
            continue
        detail = error["msg"].removeprefix("Value error, ")
        extras = []
        if error["type"] != "missing":
            extras.append(f"got {error['input']!r}")
        allowed = _allowed_for(model, name)
        if allowed:
            extras.append(allowed)
        lines.append(f"{option}: {detail}" + (f" ({'; '.join(extras)})" if extras else ""))
    return "\n".join(lines)


def build_request(model: type[BaseModel], values: dict[str, Any]) -> BaseModel:
    try:
        return model(**values)
    except ValidationError as exc:
        raise UsageError(validation_message(model, exc)) from None


def _field_values(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """--set FIELD=VALUE: VALUE read as JSON when it parses (numbers, true), else text."""
    values: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected FIELD=VALUE, e.g. --set steps=20")
        try:
            values[key.replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.replace("-", "_")] = raw
    return values


def _reference(value: str) -> str:
    """A data URL or base64 passes through; anything else is a path to read."""
    if value.startswith("data:"):
        return value
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"--reference-image: no such file {value!r}; give a JPEG/PNG/WebP path")
    return image_data_url(path)


# -- output ------------------------------------------------------------------------------


def timestamped(prefix: str, suffix: str = "", directory: Path = OUTPUTS_DIR) -> Path:
    """outputs/<prefix>-YYYYmmdd-HHMMSS<suffix>, never one that exists already."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = directory / f"{prefix}-{stamp}{suffix}"
    counter = 2
    while candidate.exists():
        candidate = directory / f"{prefix}-{stamp}-{counter}{suffix}"
        counter += 1
    return candidate


def output_paths(command: str, output: str | None, count: int, ext: str) -> list[Path]:
    if output and (output.endswith(("/", os.sep)) or Path(output).is_dir()):
        first = timestamped(command, ext, Path(output))
    elif output:
        first = Path(output)
    else:
        first = timestamped(command, ext)
    if count == 1:
        return [first]
    return [first.with_name(f"{first.stem}-{index}{first.suffix}") for index in range(1, count + 1)]


def write_images(result: GenerationResult, paths: Sequence[Path]) -> None:
    for path, data in zip(paths, result.images):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _emit_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=str))


def _human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


# -- parser ------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, nested: bool = False) -> None:
    """Backend options and --json. `nested` parsers (loras list/upload) take them too, with
    SUPPRESS defaults so that they do not undo the same option given before the action."""
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if nested else value

    group = parser.add_argument_group("backend")
    group.add_argument("--backend-url", default=default(None),
                       help=f"backend base URL (default $RYLA_BACKEND_URL or {DEFAULT_BACKEND_URL}); "
                            "the token is read from $RYLA_API_TOKEN, never from the command line")
    group.add_argument("--timeout", type=_positive_float, default=default(600.0),
                       help="seconds to wait for one answer (default 600)")
    group.add_argument("--retry-budget", type=_non_negative_float, default=default(DEFAULT_RETRY_BUDGET_S),
                       help="seconds to keep retrying a refused connection or a 503 with "
                            f"Retry-After (default {DEFAULT_RETRY_BUDGET_S:g})")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="print machine-readable JSON on stdout")


def _bounded(kind: type[float] | type[int], minimum: float, *, inclusive: bool = True
             ) -> Callable[[str], float]:
    """An argparse type: a number of `kind` at or above `minimum` (above it if not inclusive)."""
    noun = "whole number" if kind is int else "number"
    bound = f"{minimum} or more" if inclusive else f"greater than {minimum}"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {noun}") from None
        if value < minimum or (not inclusive and value == minimum):
            raise argparse.ArgumentTypeError(f"{text} must be {bound}")
        return value

    return parse


_positive_float = _bounded(float, 0, inclusive=False)
_non_negative_float = _bounded(float, 0)
_positive_int = _bounded(int, 1)


def _sub(subparsers: Any, name: str, help_: str, description: str, examples: Sequence[str]
         ) -> argparse.ArgumentParser:
    epilog = "example:\n  " + "\n  ".join(examples)
    sub = subparsers.add_parser(name, help=help_, description=description, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.set_defaults(usage_parser=sub)
    return sub


def _endpoint_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("request fields (validated against the endpoint's model)")
    for name in ("width", "height", "steps", "seed"):
        group.add_argument(_option(name), dest=name, type=int, default=None, help=_FIELD_HELP[name])
    group.add_argument("--lora-id", dest="lora_id", default=None, help="for flux-lora")
    group.add_argument("--reference-image", dest="reference_image", default=None,
                       help="for flux-instantid: a JPEG/PNG/WebP path")
    group.add_argument("--method", dest="method", choices=("instantid", "pulid"), default=None,
                       help="for flux-instantid")
    group.add_argument("--set", dest="set_fields", action="append", metavar="FIELD=VALUE",
                       help="any other field, e.g. --set guidance=2.5 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ryla", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Backend: --backend-url or RYLA_BACKEND_URL; token: RYLA_API_TOKEN.\n"
               "Run `ryla COMMAND --help` for a command's options and an example.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for command, (route, description, example) in GENERATE_COMMANDS.items():
        model = ROUTES[route]
        sub = _sub(subparsers, command, description, f"POST {route}: {description}", [example])
        _common(sub)
        sub.add_argument("--output", "-o", default=None,
                         help="file to write (default outputs/<command>-<timestamp>.<ext>; "
                              "a directory gets a timestamped file inside)")
        fields = add_model_options(sub, model)
        if command == "flux-instantid":
            sub.add_argument("--reference-image", dest="reference_image", required=True,
                             help="reference face: a JPEG/PNG/WebP path, or a data URL (required)")
            fields.append("reference_image")
        if command == "workflow":
            sub.add_argument("--workflow", dest="workflow", type=Path, required=True,
                             help="ComfyUI graph in API format (ComfyUI: Save (API Format)) (required)")
            sub.add_argument("--image", dest="images", action="append", metavar="NAME=PATH",
                             help="an input image the graph's LoadImage names (repeatable)")
        sub.set_defaults(handler=_cmd_generate, fields=fields, route=route)

    loras = _sub(subparsers, "loras", "List or upload LoRAs.", "GET /loras, POST /loras: the LoRA store.",
                 ["ryla loras", "ryla loras upload anna.safetensors --id anna --trigger-word ryla_anna"])
    _common(loras)
    lora_actions = loras.add_subparsers(dest="action", metavar="ACTION")
    lora_list = lora_actions.add_parser("list", help="list the LoRAs in the store (the default)")
    _common(lora_list, nested=True)
    upload = lora_actions.add_parser(
        "upload", help="upload a .safetensors LoRA", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  ryla loras upload anna.safetensors --id anna --trigger-word ryla_anna")
    upload.add_argument("file", type=Path, help="the LoRA file (.safetensors)")
    upload.add_argument("--id", dest="lora_id", default=None,
                        help="id in the store: letters, digits, _ and - (default: the file's name)")
    upload.add_argument("--trigger-word", default="", help="word that calls up the character")
    _common(upload, nested=True)
    loras.set_defaults(handler=_cmd_loras, action=None)

    models = _sub(subparsers, "models", "Which model files are installed and which are missing.",
                  "GET /models: every model file of the manifest, present or missing, with its size.",
                  ["ryla models", "ryla models --missing --json"])
    _common(models)
    models.add_argument("--missing", action="store_true", help="list only the missing files")
    models.set_defaults(handler=_cmd_models)

    rate = _sub(subparsers, "success-rate", "Success rate of an endpoint over a set of prompts.",
                "Send each prompt once, in order; print each request's outcome and time, then the "
                "success rate. Exit 1 below 100 %%. Images are saved under --output.",
                ["ryla success-rate", "ryla success-rate --endpoint flux --prompts prompts.txt --width 512 --height 512"])
    _common(rate)
    rate.add_argument("--endpoint", choices=BENCH_ENDPOINTS, default="flux-dev",
                      help="endpoint to test (default flux-dev)")
    rate.add_argument("--prompts", type=Path, default=None,
                      help="file of prompts, one a line ('#' comments); default: the 10 seed prompts")
    rate.add_argument("--output", "-o", type=Path, default=None,
                      help="folder for the images (default outputs/success-rate-<timestamp>/)")
    _endpoint_options(rate)
    rate.set_defaults(handler=_cmd_success_rate)

    bench = _sub(subparsers, "bench", "Latency and throughput: N requests per endpoint.",
                 "Run N requests per endpoint one after another, then N again on K threads; report the "
                 "success rate, mean, median, min, max and p95 latency, and both wall times.",
                 ["ryla bench --endpoint flux --requests 5 --concurrency 5",
                  "ryla bench --endpoint flux-dev --endpoint flux --requests 10 --concurrency 3 --json"])
    _common(bench)
    bench.add_argument("--endpoint", action="append", choices=BENCH_ENDPOINTS, default=None,
                       help="endpoint to measure (repeatable; default flux)")
    bench.add_argument("--requests", "-n", type=_positive_int, default=5,
                       help="requests per endpoint and mode (default 5)")
    bench.add_argument("--concurrency", "-c", type=_positive_int, default=1,
                       help="threads for the concurrent run; 1 runs only the sequential one (default 1)")
    bench.add_argument("--prompt", default=None, help="one prompt for every request (default: the seed prompts in turn)")
    bench.add_argument("--output", "-o", type=Path, default=None,
                       help="folder to save the images in (default: not saved)")
    _endpoint_options(bench)
    bench.set_defaults(handler=_cmd_bench)

    sheet = _sub(subparsers, "sheet", "A character sheet from a reference face, with its face-consistency report.",
                 "Generate one image per prompt (poses, angles, expressions by default) from a reference "
                 "face, concurrently; save them with sheet.json and the face-consistency report "
                 "(face_scores.json/.csv/.png). A failed image is recorded and the rest go on; exit 1 "
                 "when any image failed.",
                 ["ryla sheet --reference face.jpg --method both --count 4 --output sheets/anna"])
    _common(sheet)
    sheet.add_argument("--reference", type=Path, required=True, help="photo of the character's face (required)")
    sheet.add_argument("--method", choices=("instantid", "pulid", "both"), default="instantid",
                       help="identity method; both makes every prompt with each (default instantid)")
    sheet.add_argument("--prompts", type=Path, default=None,
                       help="file of prompts, one a line; default: the built-in poses/angles/expressions")
    sheet.add_argument("--count", type=_positive_int, default=None, help="use only the first N prompts")
    sheet.add_argument("--concurrency", "-c", type=_positive_int, default=4, help="requests at once (default 4)")
    sheet.add_argument("--threshold", type=threshold_arg, default=DEFAULT_THRESHOLD,
                       help=f"largest face-descriptor distance that passes (default {DEFAULT_THRESHOLD})")
    sheet.add_argument("--no-score", action="store_true", help="skip the face-consistency report")
    sheet.add_argument("--output", "-o", type=Path, default=None,
                       help="folder for the sheet (default outputs/sheet-<timestamp>/)")
    group = sheet.add_argument_group("request fields")
    add_model_options(group, ROUTES["/flux-instantid"],
                      skip=("prompt", "method"), all_optional=True)
    sheet.set_defaults(handler=_cmd_sheet)

    score = _sub(subparsers, "score", "Face consistency of images against a reference face.",
                 "Score every image against the reference's face; write face_scores.json/.csv/.png.",
                 ["ryla score face.jpg outputs/sheet-*/0*.jpg --threshold 0.6 --output review"])
    add_score_arguments(score)
    score.set_defaults(handler=lambda args, parser: run_score(args))
    return parser


# -- commands ----------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> RylaClient:
    return RylaClient(args.backend_url, timeout=args.timeout, retry_budget=args.retry_budget)


def _cmd_generate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    model = ROUTES[args.route]
    values = _field_values(args, args.fields)
    if "reference_image" in values:
        values["reference_image"] = _reference(values["reference_image"])
    if args.command == "workflow":
        values.update(_workflow_values(args))
    request = build_request(model, values)
    started = time.perf_counter()
    with _client(args) as client:
        result = client.generate(request)
    seconds = time.perf_counter() - started
    paths = output_paths(args.command, args.output, len(result.images), extension_for(result.content_type))
    write_images(result, paths)
    if args.json:
        _emit_json({"command": args.command, "route": args.route, "files": [str(p) for p in paths],
                    "content_type": result.content_type, "bytes": [len(i) for i in result.images],
                    "seed": result.seed, "request_id": result.request_id,
                    "timings": result.timings, "seconds": round(seconds, 3)})
    else:
        for path, data in zip(paths, result.images):
            print(f"saved {path} ({result.content_type}, {_human_size(len(data))})")
        print(f"seed {result.seed}, request {result.request_id}, {seconds:.2f} s")
    return 0


def _workflow_values(args: argparse.Namespace) -> dict[str, Any]:
    try:
        graph = json.loads(Path(args.workflow).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--workflow: cannot read {args.workflow}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--workflow: {args.workflow} is not JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(graph, dict) and "nodes" in graph and "links" in graph:
        raise UsageError(f"--workflow: {args.workflow} is a UI-format graph; export it from ComfyUI "
                         "with 'Save (API Format)'")
    images: dict[str, str] = {}
    for item in args.images or ():
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--image {item!r}: expected NAME=PATH, e.g. --image face.png=./face.png")
        if not Path(path).is_file():
            raise UsageError(f"--image {item!r}: no such file {path!r}")
        images[name] = image_data_url(Path(path))
    return {"workflow": graph, "images": images}


def _cmd_loras(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    as_json = getattr(args, "json", False)
    with _client(args) as client:
        if args.action == "upload":
            if not args.file.is_file():
                raise UsageError(f"no such file {str(args.file)!r}; give the path of a .safetensors LoRA")
            lora_id = args.lora_id or args.file.stem
            result = client.upload_lora(lora_id, args.file, args.trigger_word)
            if as_json:
                _emit_json(result)
            else:
                print(f"uploaded {args.file} as LoRA {lora_id!r}")
            return 0
        loras = client.loras()
    if as_json:
        _emit_json(loras)
    elif not loras:
        print("no LoRAs in the store; upload one with `ryla loras upload FILE --id ID`")
    else:
        _print_table(loras, preferred=("id", "trigger_word", "size_bytes", "filename", "created_at"))
    return 0


def _print_table(rows: Sequence[dict], preferred: Sequence[str]) -> None:
    columns = [c for c in preferred if any(c in row for row in rows)]
    columns += [c for c in rows[0] if c not in columns and not isinstance(rows[0][c], (dict, list))]
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _is_present(row: dict) -> bool:
    for key in ("present", "installed"):
        if key in row:
            return bool(row[key])
    return str(row.get("status", "")).lower() in ("present", "installed")


def _cmd_models(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    with _client(args) as client:
        models = client.models()
    if args.missing:
        models = [row for row in models if not _is_present(row)]
    if args.json:
        _emit_json(models)
        return 0
    if not models:
        print("every model file is installed" if args.missing else "the backend lists no model files")
        return 0
    _print_table(models, preferred=("local_name", "filename", "folder", "present", "status",
                                    "size_bytes", "gated", "pipelines"))
    missing = sum(1 for row in models if not _is_present(row))
    print(f"\n{len(models) - missing} installed, {missing} missing")
    return 0


def _endpoint_values(args: argparse.Namespace) -> dict[str, Any]:
    values = _field_values(args, ("width", "height", "steps", "seed", "lora_id", "method"))
    if args.reference_image is not None:
        values["reference_image"] = _reference(args.reference_image)
    values.update(_parse_set(args.set_fields))
    return values


def _endpoint_requests(endpoint: str, prompts: Sequence[str], values: dict[str, Any]) -> list[BaseModel]:
    model = ROUTES[GENERATE_COMMANDS[endpoint][0]]
    return [build_request(model, {**values, "prompt": prompt}) for prompt in prompts]


@dataclass
class Attempt:
    index: int
    prompt: str
    seconds: float
    result: GenerationResult | None = None
    error: BackendError | None = None
    file: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"index": self.index, "prompt": self.prompt, "success": self.error is None,
                               "seconds": round(self.seconds, 3)}
        if self.result is not None:
            row.update(seed=self.result.seed, request_id=self.result.request_id,
                       file=str(self.file) if self.file else None)
        if self.error is not None:
            row["error"] = self.error.to_dict()
        return row


def _attempt(client: RylaClient, index: int, request: BaseModel) -> Attempt:
    started = time.perf_counter()
    try:
        result = client.generate(request)
    except BackendUnreachable:
        raise  # nothing can succeed: stop the run and report it as a backend error
    except BackendError as exc:
        return Attempt(index, getattr(request, "prompt", ""), time.perf_counter() - started, error=exc)
    return Attempt(index, getattr(request, "prompt", ""), time.perf_counter() - started, result=result)


def _save_attempt(attempt: Attempt, directory: Path, stem: str) -> None:
    if attempt.result is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}{extension_for(attempt.result.content_type)}"
    path.write_bytes(attempt.result.images[0])
    attempt.file = path


def _prompts_from(path: Path | None, default: Sequence[str]) -> list[str]:
    if path is None:
        return list(default)
    try:
        return load_prompt_file(path)
    except PromptFileError as exc:
        raise UsageError(f"--prompts: {exc}") from None


def _cmd_success_rate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    prompts = _prompts_from(args.prompts, SEED_PROMPTS)
    requests_ = _endpoint_requests(args.endpoint, prompts, _endpoint_values(args))
    out_dir = args.output or timestamped("success-rate")
    attempts: list[Attempt] = []
    with _client(args) as client:
        for index, request in enumerate(requests_, 1):
            attempt = _attempt(client, index, request)
            _save_attempt(attempt, out_dir, f"{args.endpoint}-{index:02d}")
            attempts.append(attempt)
            if not args.json:
                label = f"[{index}/{len(requests_)}] {attempt.prompt}"
                if attempt.error is None:
                    print(f"{label}\n  ok    {attempt.seconds:.2f} s  -> {attempt.file}")
                else:
                    print(f"{label}\n  FAIL  {attempt.seconds:.2f} s  {attempt.error}")
    succeeded = [a for a in attempts if a.error is None]
    rate = 100.0 * len(succeeded) / len(attempts)
    mean = statistics.fmean(a.seconds for a in succeeded) if succeeded else None
    if args.json:
        _emit_json({"endpoint": args.endpoint, "route": GENERATE_COMMANDS[args.endpoint][0],
                    "output_dir": str(out_dir), "total": len(attempts), "succeeded": len(succeeded),
                    "success_rate": round(rate, 2),
                    "mean_seconds": round(mean, 3) if mean is not None else None,
                    "requests": [a.to_dict() for a in attempts]})
    else:
        print(f"\nsuccess rate: {len(succeeded)}/{len(attempts)} ({rate:.1f} %)")
        if mean is not None:
            print(f"mean time of successful requests: {mean:.2f} s")
        print(f"images: {out_dir}")
    return 0 if len(succeeded) == len(attempts) else 1


def latency_stats(seconds: Sequence[float]) -> dict[str, float | None]:
    """mean, median, min, max and p95 (nearest rank) of request latencies, in seconds."""
    if not seconds:
        return {"mean": None, "median": None, "min": None, "max": None, "p95": None}
    ordered = sorted(seconds)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return {"mean": round(statistics.fmean(ordered), 4), "median": round(statistics.median(ordered), 4),
            "min": round(ordered[0], 4), "max": round(ordered[-1], 4), "p95": round(ordered[rank - 1], 4)}


def _run_mode(client: RylaClient, requests_: Sequence[BaseModel], concurrency: int,
              save_dir: Path | None, stem: str) -> dict[str, Any]:
    started = time.perf_counter()
    if concurrency == 1:
        attempts = [_attempt(client, index, request) for index, request in enumerate(requests_, 1)]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            attempts = list(pool.map(lambda pair: _attempt(client, *pair), enumerate(requests_, 1)))
    wall = time.perf_counter() - started
    if save_dir is not None:
        for attempt in attempts:
            _save_attempt(attempt, save_dir, f"{stem}-{attempt.index:02d}")
    ok = [a for a in attempts if a.error is None]
    return {"concurrency": concurrency, "total": len(attempts), "succeeded": len(ok),
            "success_rate": round(100.0 * len(ok) / len(attempts), 2),
            "wall_seconds": round(wall, 4), **latency_stats([a.seconds for a in ok]),
            "errors": [a.error.to_dict() for a in attempts if a.error is not None]}


def _cmd_bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    endpoints = args.endpoint or ["flux"]
    prompts = [args.prompt] if args.prompt else list(SEED_PROMPTS)
    chosen = [prompts[i % len(prompts)] for i in range(args.requests)]
    values = _endpoint_values(args)
    plans = {endpoint: _endpoint_requests(endpoint, chosen, values) for endpoint in endpoints}
    results: list[dict[str, Any]] = []
    with _client(args) as client:
        for endpoint, requests_ in plans.items():
            save = args.output
            row: dict[str, Any] = {"endpoint": endpoint, "requests": args.requests,
                                   "sequential": _run_mode(client, requests_, 1, save, f"{endpoint}-seq")}
            if args.concurrency > 1:
                row["concurrent"] = _run_mode(client, requests_, args.concurrency, save, f"{endpoint}-conc")
                seq, conc = row["sequential"]["wall_seconds"], row["concurrent"]["wall_seconds"]
                row["speedup"] = round(seq / conc, 3) if conc > 0 else None
            results.append(row)
            if not args.json:
                _print_bench(row)
    all_ok = all(row[mode]["succeeded"] == row[mode]["total"]
                 for row in results for mode in ("sequential", "concurrent") if mode in row)
    if args.json:
        _emit_json({"results": results, "all_succeeded": all_ok})
    return 0 if all_ok else 1


def _print_bench(row: dict[str, Any]) -> None:
    print(f"{row['endpoint']}: {row['requests']} requests")
    for mode in ("sequential", "concurrent"):
        if mode not in row:
            continue
        m = row[mode]
        label = mode if mode == "sequential" else f"concurrent x{m['concurrency']}"
        stats = "  ".join(f"{key} {m[key]:.2f}s" for key in ("mean", "median", "min", "max", "p95")
                          if m[key] is not None)
        print(f"  {label:<16} {m['succeeded']}/{m['total']} ok ({m['success_rate']:.0f} %)  "
              f"wall {m['wall_seconds']:.2f}s  {stats}")
        for error in m["errors"]:
            print(f"    error: {error['code']}: {error['message']}")
    if "speedup" in row and row["speedup"] is not None:
        print(f"  concurrent wall time is {row['speedup']:.2f}x faster than sequential"
              if row["speedup"] >= 1 else
              f"  concurrent wall time is {1 / row['speedup']:.2f}x slower than sequential")


def _cmd_sheet(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ui.sheet import generate_sheet  # the sheet pulls in the face-scoring stack

    if not args.reference.is_file():
        raise UsageError(f"--reference: no such file {str(args.reference)!r}")
    prompts: list[Any] = _prompts_from(args.prompts, ()) if args.prompts else list(SHEET_VARIATIONS)
    if args.count:
        prompts = prompts[: args.count]
    model = ROUTES["/flux-instantid"]
    options = _field_values(args, [n for n in model.model_fields if n not in ("prompt", "method")])
    out_dir = args.output or timestamped("sheet")
    # Check every field before the first request: a range error is exit 2, not N failures.
    build_request(model, {**options, "prompt": "check", "reference_image": "check", "method": "instantid"})

    def progress(item: Any) -> None:
        if not args.json:
            status = f"ok -> {item.path}" if item.ok else f"FAIL {item.error_code}: {item.error}"
            print(f"[{item.index:02d}] {item.method:<9} {item.name:<24} {item.seconds:.2f} s  {status}",
                  flush=True)

    with _client(args) as client:
        run = generate_sheet(client, args.reference, prompts, out_dir, method=args.method,
                             concurrency=args.concurrency, threshold=args.threshold, options=options,
                             score=not args.no_score, on_item=progress)
    if args.json:
        _emit_json(run.to_dict())
    else:
        print(f"\n{len(run.succeeded)}/{len(run.items)} images in {run.out_dir} "
              f"({run.wall_seconds:.2f} s); manifest {run.out_dir / 'sheet.json'}")
        if run.report is not None:
            from ui.review_report import format_table

            print(format_table(run.report))
            print("report: " + ", ".join(str(p) for p in run.report_files))
        elif run.score_error:
            print(f"no face-consistency report: {run.score_error}")
    return 0 if not run.failed else 1


# -- entry point -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for bad usage
        return int(exc.code or 0)
    prog = f"ryla {args.command}"
    try:
        return int(args.handler(args, parser))
    except UsageError as exc:
        args.usage_parser.print_usage(sys.stderr)
        for line in str(exc).splitlines():
            print(f"{prog}: error: {line}", file=sys.stderr)
        return 2
    except BackendError as exc:
        if getattr(args, "json", False):
            _emit_json({"error": exc.to_dict()})
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
