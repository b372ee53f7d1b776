"""`ryla`'s argument parser: one subcommand per generation route (workflows/registry.py)
and the store, run and sheet commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ui.cli.generate import cmd_generate
from ui.cli.jobs_command import JOB_STATUSES, cmd_jobs
from ui.cli.options import add_model_options, option_name
from ui.cli.runs import BENCH_ENDPOINTS, cmd_bench, cmd_success_rate
from ui.cli.score import add_score_arguments, run_score, threshold_arg
from ui.cli.sheet_command import cmd_sheet
from ui.cli.store import cmd_loras, cmd_models
from ui.client import DEFAULT_BACKEND_URL, DEFAULT_RETRY_BUDGET_S
from ui.face.consistency import DEFAULT_THRESHOLD
from workflows.registry import ROUTES
from workflows.request_models import CharacterRequest


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
        group.add_argument(option_name(name), dest=name, type=int, default=None,
                           help=CharacterRequest.model_fields[name].description)
    group.add_argument("--lora-id", dest="lora_id", default=None, help="for flux-lora")
    group.add_argument("--reference-image", dest="reference_image", default=None,
                       help="for flux-instantid: a JPEG/PNG/WebP path")
    group.add_argument("--method", dest="method", choices=("instantid", "pulid"), default=None,
                       help="for flux-instantid")
    group.add_argument("--set", dest="set_fields", action="append", metavar="FIELD=VALUE",
                       help="any other field, e.g. --set guidance=2.5 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ryla", description="ryla: every backend endpoint from the terminal, plus "
                                 "success-rate, bench and sheet.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Backend: --backend-url or RYLA_BACKEND_URL; token: RYLA_API_TOKEN.\n"
               "Run `ryla COMMAND --help` for a command's options and an example.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_generate_commands(subparsers)
    _add_loras(subparsers)
    _add_models(subparsers)
    _add_success_rate(subparsers)
    _add_bench(subparsers)
    _add_sheet(subparsers)
    _add_score(subparsers)
    _add_jobs(subparsers)
    return parser


def _add_generate_commands(subparsers: Any) -> None:
    """One subcommand per route of workflows/registry.py, its options from the route's model."""
    for route in ROUTES.values():
        sub = _sub(subparsers, route.command, route.help, f"POST {route.path}: {route.help}",
                   [route.example])
        _common(sub)
        sub.add_argument("--output", "-o", default=None,
                         help="file to write (default outputs/<command>-<timestamp>.<ext>; "
                              "a directory gets a timestamped file inside)")
        fields = add_model_options(sub, route.request_model)
        model_fields = route.request_model.model_fields
        if "reference_image" in model_fields:
            sub.add_argument("--reference-image", dest="reference_image", required=True,
                             help="reference face: a JPEG/PNG/WebP path, or a data URL (required)")
            fields.append("reference_image")
        if "workflow" in model_fields:
            sub.add_argument("--workflow", dest="workflow", type=Path, required=True,
                             help="ComfyUI graph in API format (ComfyUI: Save (API Format)) (required)")
        if "images" in model_fields:
            sub.add_argument("--image", dest="images", action="append", metavar="NAME=PATH",
                             help="an input image the graph's LoadImage names (repeatable)")
        sub.set_defaults(handler=cmd_generate, fields=fields, route=route.path)


def _add_loras(subparsers: Any) -> None:
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
    loras.set_defaults(handler=cmd_loras, action=None)


def _add_models(subparsers: Any) -> None:
    models = _sub(subparsers, "models", "Which model files are installed and which are missing.",
                  "GET /models: every model file of the manifest, present or missing, with its size.",
                  ["ryla models", "ryla models --missing --json"])
    _common(models)
    models.add_argument("--missing", action="store_true", help="list only the missing files")
    models.set_defaults(handler=cmd_models)


def _add_success_rate(subparsers: Any) -> None:
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
    rate.set_defaults(handler=cmd_success_rate)


def _add_bench(subparsers: Any) -> None:
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
    bench.set_defaults(handler=cmd_bench)


def _add_sheet(subparsers: Any) -> None:
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
    add_model_options(group, CharacterRequest, skip=("prompt", "method"), all_optional=True)
    sheet.set_defaults(handler=cmd_sheet)


def _add_score(subparsers: Any) -> None:
    score = _sub(subparsers, "score", "Face consistency of images against a reference face.",
                 "Score every image against the reference's face; write face_scores.json/.csv/.png.",
                 ["ryla score face.jpg outputs/sheet-*/0*.jpg --threshold 0.6 --output review"])
    add_score_arguments(score)
    score.set_defaults(handler=run_score)


def _add_jobs(subparsers: Any) -> None:
    jobs = _sub(subparsers, "jobs", "The backend's jobs: list, show, watch, cancel, fetch outputs.",
                "Every generation is a job on the backend, whoever started it: list them (newest "
                "first), show one, watch it to its end, cancel it, or save its outputs. Exit 1 "
                "when the backend refuses, or when a watched job did not succeed.",
                ["ryla jobs --status running", "ryla jobs show 3f6c0a8e9b0d4c2e",
                 "ryla jobs watch 3f6c0a8e9b0d4c2e", "ryla jobs fetch 3f6c0a8e9b0d4c2e --output shots/"])
    _common(jobs)
    _job_list_options(jobs)
    actions = jobs.add_subparsers(dest="action", metavar="ACTION")
    listed = _job_action(actions, "list", "list the jobs, newest first (the default)",
                         "ryla jobs list --status failed --limit 5")
    _job_list_options(listed, nested=True)
    _job_action(actions, "show", "a job's status, progress, times and error", "ryla jobs show ID")
    _job_action(actions, "watch", "follow a job to its end, with a progress bar at a terminal "
                                  "(exit 1 unless it succeeded; Ctrl-C stops watching, not the job)",
                "ryla jobs watch ID")
    _job_action(actions, "cancel", "cancel a job, then say what ComfyUI confirmed (cancelled, or "
                                   "finished anyway with its outputs kept)", "ryla jobs cancel ID")
    fetch = _job_action(actions, "fetch", "save a succeeded job's outputs",
                        "ryla jobs fetch ID --output shots/")
    fetch.add_argument("--output", "-o", default=None,
                       help="file to write (default outputs/job-<id>-<timestamp>.<ext>; a directory "
                            "gets a timestamped file inside; several outputs are numbered)")
    jobs.set_defaults(handler=cmd_jobs, action=None)


def _job_list_options(parser: argparse.ArgumentParser, nested: bool = False) -> None:
    default = argparse.SUPPRESS if nested else None
    parser.add_argument("--status", choices=JOB_STATUSES, default=default,
                        help="only jobs with this status")
    parser.add_argument("--limit", type=_positive_int, default=default,
                        help="at most this many jobs (the backend's default 50, at most 1000)")


def _job_action(actions: Any, name: str, help_: str, example: str) -> argparse.ArgumentParser:
    sub = actions.add_parser(name, help=help_, description=help_ + ".",
                             formatter_class=argparse.RawDescriptionHelpFormatter,
                             epilog=f"example:\n  {example}")
    if name != "list":
        sub.add_argument("job_id", metavar="ID", help="the job's id (`ryla jobs` lists them)")
    _common(sub, nested=True)
    sub.set_defaults(usage_parser=sub)
    return sub
