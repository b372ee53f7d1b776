"""`ryla score REFERENCE IMAGE... [--threshold T] [--json] [--output DIR]`.

Scores every image against the reference's face, prints a table (or JSON with --json) and
writes the report (JSON, CSV, contact-sheet PNG) into --output. Exit codes: 0 when it scored
(outputs that fail are a result, not an error), 2 on bad usage (missing or unreadable file,
no face in the reference, bad threshold), 1 when the face models cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ui.face.consistency import (
    DEFAULT_THRESHOLD,
    FaceModelsMissing,
    InvalidImage,
    ReferenceFaceNotFound,
    score_sheet,
)
from ui.face.report import format_table, write_report

DEFAULT_OUTPUT = Path("ryla-score")


def threshold_arg(text: str) -> float:
    """argparse type of a face-distance threshold (shared by `ryla score` and `ryla sheet`)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; try 0.6") from None
    if not 0 < value < 2:
        # Descriptors are unit-scale: distances lie in [0, 2).
        raise argparse.ArgumentTypeError(f"{value} is out of range; a distance between 0 and 2, e.g. 0.6")
    return value


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", type=Path, help="photo of the character's face")
    parser.add_argument("images", type=Path, nargs="+", help="outputs to score against it")
    parser.add_argument(
        "--threshold",
        type=threshold_arg,
        default=DEFAULT_THRESHOLD,
        help=f"largest descriptor distance that passes (default {DEFAULT_THRESHOLD}, dlib's usual)",
    )
    parser.add_argument(
        "--json", action="store_true", help='print {"results": [...], "summary": {...}}'
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"folder for face_scores.json/.csv/.png (default ./{DEFAULT_OUTPUT})",
    )


def _error(message: str) -> None:
    print(f"ryla score: error: {message}", file=sys.stderr)


def run_score(args: argparse.Namespace) -> int:
    paths = [args.reference, *args.images]
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        _error(f"no such file: {', '.join(missing)}; check the paths")
        return 2
    try:
        report = score_sheet(args.reference, list(args.images), threshold=args.threshold)
    except (InvalidImage, ReferenceFaceNotFound) as exc:
        _error(str(exc))
        return 2
    except FaceModelsMissing as exc:
        _error(str(exc))
        return 1
    files = write_report(report, Path(args.output))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        # stdout stays pure JSON; where the report went goes to stderr.
        print(f"report: {files.json} {files.csv} {files.png}", file=sys.stderr)
    else:
        print(format_table(report))
        print(f"\nreport: {files.json}\n        {files.csv}\n        {files.png}")
    return 0

