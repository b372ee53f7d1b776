"""`ryla <route command>`: one request to a generation route, its files saved."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ui.cli.options import (UsageError, backend_client, build_request, field_values,
                            reference_value)
from ui.cli.output import emit_json, human_size, output_paths, write_images
from ui.cli.job_runner import job_runner
from ui.client import GenerationResult, extension_for, image_data_url
from workflows.registry import ROUTES


def cmd_generate(args: argparse.Namespace) -> int:
    model = ROUTES[args.route].request_model
    values = field_values(args, args.fields)
    if "reference_image" in values:
        values["reference_image"] = reference_value(values["reference_image"])
    if "workflow" in model.model_fields:
        values.update(_workflow_values(args))
    request = build_request(model, values)
    started = time.perf_counter()
    with backend_client(args) as client, job_runner(client, as_json=args.json) as runner:
        result = runner.generate(request)
        seconds = time.perf_counter() - started
        runner.display.close()  # the bar ends before the result lines
        # saved inside the runner: a job that finished despite a Ctrl-C keeps its files
        paths = output_paths(args.command, args.output, len(result.images),
                             extension_for(result.content_type))
        write_images(result, paths)
        _print_result(args, result, paths, seconds)
    return 0


def _print_result(args: argparse.Namespace, result: GenerationResult, paths: list[Path],
                  seconds: float) -> None:
    if args.json:
        emit_json({"command": args.command, "route": args.route, "files": [str(p) for p in paths],
                    "content_type": result.content_type, "bytes": [len(i) for i in result.images],
                    "seed": result.seed, "request_id": result.request_id,
                    "timings": result.timings, "seconds": round(seconds, 3)})
    else:
        for path, data in zip(paths, result.images):
            print(f"saved {path} ({result.content_type}, {human_size(len(data))})")
        print(f"seed {result.seed}, request {result.request_id}, {seconds:.2f} s")


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
