"""Markdown tables of rehearsal results (benchmarks/results/*.json), for docs/performance.md.

    python -m benchmarks.rehearsal.summarize benchmarks/results/2026-11-26-*.json

One table per file: its run figures (card, ComfyUI start, first image, cold start to first
image, warm-up) and one row per request (label, route, method, status, seconds, switch).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RUN_FIGURES = ("comfyui_ready_s", "first_image_s", "cold_start_to_first_image_s", "warm_up_s",
               "prefetch_s", "prefetch_gb_per_s", "ready_for_requests_s")


def summarize(path: Path) -> str:
    rows = json.loads(path.read_text())
    first = rows[0]
    figures = ", ".join(f"{k} {first[k]}" for k in RUN_FIGURES if first.get(k) is not None)
    lines = [f"**{path.name}** ({first.get('gpu')}, mode `{first.get('mode')}`): {figures}", "",
             "| request | route | method | status | s | switch |", "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.get('label', '')} | {row.get('route', '')} | {row.get('method') or ''} | "
                     f"{row.get('status')} | {row.get('wall_s', 0):.2f} | {row.get('switch') or ''} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        print(__doc__)
        return 2
    print("\n\n".join(summarize(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
