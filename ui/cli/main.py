"""ryla: every backend endpoint from the terminal, plus success-rate, bench and sheet.

Exit codes: 0 success, 1 a backend error (its message printed) or a run that was not a
full success, 2 bad usage (argparse's own errors and out-of-range fields alike).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ui.cli.job_runner import Interrupted
from ui.cli.options import UsageError
from ui.cli.output import emit_json
from ui.cli.parser import build_parser
from ui.client import BackendError


# The backend's messages name its HTTP routes (any client reads them); a CLI user gets the
# command that does the same.
CLI_COMMAND_OF_ROUTE = {"GET /loras": "`ryla loras`", "POST /loras": "`ryla loras upload`",
                        "GET /models": "`ryla models`", "GET /health": "`ryla models`"}


def in_cli_words(message: str) -> str:
    for route, command in CLI_COMMAND_OF_ROUTE.items():
        message = message.replace(route, command)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for bad usage
        return int(exc.code or 0)
    prog = f"ryla {args.command}"
    try:
        return int(args.handler(args))
    except UsageError as exc:
        args.usage_parser.print_usage(sys.stderr)
        for line in str(exc).splitlines():
            print(f"{prog}: error: {line}", file=sys.stderr)
        return 2
    except BackendError as exc:
        if getattr(args, "json", False):
            emit_json({"error": exc.to_dict()})
        print(f"{prog}: error: {in_cli_words(str(exc))}", file=sys.stderr)
        return 1
    except Interrupted:  # the jobs' cancel was reported as it happened
        return 130
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
