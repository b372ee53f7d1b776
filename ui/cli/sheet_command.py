"""`ryla sheet`: a character sheet and its face-consistency report."""

from __future__ import annotations

import argparse
import itertools
import threading
from typing import Any

from ui.cli.job_runner import job_runner
from ui.cli.options import UsageError, backend_client, build_request, field_values
from ui.cli.output import emit_json, timestamped
from ui.cli.runs import prompts_from
from ui.prompts import SHEET_VARIATIONS
from workflows.request_models import CharacterRequest


def cmd_sheet(args: argparse.Namespace) -> int:
    # the sheet pulls in the face-scoring stack
    from ui.sheet import ReferenceRejected, check_reference, generate_sheet, methods_for

    if not args.reference.is_file():
        raise UsageError(f"--reference: no such file {str(args.reference)!r}")
    prompts: list[Any] = prompts_from(args.prompts, ()) if args.prompts else list(SHEET_VARIATIONS)
    if args.count:
        prompts = prompts[: args.count]
    model = CharacterRequest
    options = field_values(args, [n for n in model.model_fields if n not in ("prompt", "method")])
    out_dir = args.output or timestamped("sheet")
    # Check every field before the first request: a range error is exit 2, not N failures.
    build_request(model, {**options, "prompt": "check", "reference_image": "check", "method": "instantid"})
    # And the reference before any GPU time is spent: not an image, too large or no face.
    try:
        check_reference(args.reference)
    except ReferenceRejected as exc:
        raise UsageError(f"--reference {args.reference.name}: {exc}") from None
    total = len(prompts) * len(methods_for(args.method))
    finished = itertools.count(1)
    lock = threading.Lock()

    def progress(item: Any) -> None:
        if args.json:
            return
        status = f"ok -> {item.path}" if item.ok else f"FAIL {item.error_code}: {item.error}"
        # Images finish in any order: the count is of finished images, so lines read in order.
        with lock:
            print(f"[{next(finished)} of {total}] {item.method:<9} {item.name:<24} "
                  f"{item.seconds:.2f} s  {status}", flush=True)

    with backend_client(args) as client, \
            job_runner(client, as_json=args.json, total_images=total) as runner:
        # each image a job of the runner: progress bars, and a Ctrl-C cancels the images in
        # flight rather than waiting for them (exit 130)
        run = generate_sheet(client, args.reference, prompts, out_dir, method=args.method,
                             concurrency=args.concurrency, threshold=args.threshold, options=options,
                             score=not args.no_score, on_item=progress,
                             run_item=lambda _item, request: runner.generate(request))
    if args.json:
        emit_json(run.to_dict())
    else:
        print(f"\n{len(run.succeeded)}/{len(run.items)} images in {run.out_dir} "
              f"({run.wall_seconds:.2f} s); manifest {run.out_dir / 'sheet.json'}")
        if run.report is not None:
            from ui.face.report import format_table

            print(format_table(run.report))
            print("report: " + ", ".join(str(p) for p in run.report_files))
        elif run.score_error:
            print(f"no face-consistency report: {run.score_error}")
    return 0 if not run.failed else 1
