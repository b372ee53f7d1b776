"""Markdown tables of rehearsal results (benchmarks/results/*.json), for docs/performance.md.

    python -m benchmarks.rehearsal.summarize benchmarks/results/2026-11-26-*.json
    python -m benchmarks.rehearsal.summarize --jobs ON.json OFF.json

One table per file: its run figures (card, ComfyUI start, first image, cold start to first
image, warm-up) and one row per request (label, route, method, status, seconds, switch);
a file of the jobs phase adds its summary. `--jobs` prints only the jobs phase's summary of
all the files together (sync against async, previews on against off, the sheet).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path

RUN_FIGURES = ("comfyui_ready_s", "first_image_s", "cold_start_to_first_image_s", "warm_up_s",
               "prefetch_s", "prefetch_gb_per_s", "ready_for_requests_s")
OVERHEAD_TARGET_MS = 50  # issue 22: the async path within 50 ms of the synchronous route


def summarize(path: Path) -> str:
    rows = json.loads(path.read_text())
    first = rows[0]
    figures = ", ".join(f"{k} {first[k]}" for k in RUN_FIGURES if first.get(k) is not None)
    lines = [f"**{path.name}** ({first.get('gpu')}, mode `{first.get('mode')}`): {figures}", "",
             "| request | route | method | status | s | switch |", "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.get('label', '')} | {row.get('route', '')} | {row.get('method') or ''} | "
                     f"{row.get('status')} | {row.get('wall_s', 0):.2f} | {row.get('switch') or ''} |")
    if any(row.get("part") for row in rows):
        lines += ["", jobs_summary(rows)]
    return "\n".join(lines)


def _median(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def _s(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:+.0f} ms"


def _beyond_comfyui(row: dict) -> float | None:
    """Seconds the request took beyond ComfyUI's own execution of its prompt."""
    exec_s = row.get("comfyui_exec_s")
    return None if exec_s is None else row["wall_s"] - exec_s


def _previews(row: dict) -> str:
    return {True: "on", False: "off"}.get(row.get("previews_enabled"), "?")


def _paths_table(dev: list[dict]) -> list[str]:
    lines = ["| previews on/off | path | n | wall s | ComfyUI s | beyond ComfyUI s | progress events | "
             "previews | first progress s | first preview s |", "|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in dev:
        groups.setdefault((_previews(row), row["path"]), []).append(row)
    for (previews, path), group in groups.items():
        def med(key: str) -> float | None:
            return _median(row.get(key) for row in group)
        events = path == "async"  # the sync route has no events to count
        lines.append(
            f"| {previews} | {path} | {len(group)} | {_s(med('wall_s'), 3)} | {_s(med('comfyui_exec_s'), 3)} | "
            f"{_s(_median(_beyond_comfyui(row) for row in group), 3)} | "
            f"{_s(med('progress_events'), 0) if events else ''} | {_s(med('previews'), 0) if events else ''} | "
            f"{_s(med('first_progress_s'))} | {_s(med('first_preview_s'))} |")
    return lines


def _overhead(dev: list[dict], previews: str) -> str | None:
    """The async path against the sync route: the median of each pair's difference (the
    two requests of a pair ran back to back, so they shared the GPU's state)."""
    pairs: dict[tuple, dict[str, dict]] = {}
    for row in dev:
        if _previews(row) == previews:
            pairs.setdefault((row.get("results_file"), row.get("pair")), {})[row["path"]] = row
    both = [pair for pair in pairs.values() if "sync" in pair and "async" in pair]
    wall = _median(pair["async"]["wall_s"] - pair["sync"]["wall_s"] for pair in both)
    if wall is None:
        return None
    beyond = [(_beyond_comfyui(pair["async"]), _beyond_comfyui(pair["sync"])) for pair in both]
    beyond_s = _median(a - b for a, b in beyond if a is not None and b is not None)
    return (f"- previews {previews}: async - sync, median of {len(both)} pairs: wall {_ms(wall)}"
            + (f", beyond ComfyUI's own time {_ms(beyond_s)}" if beyond_s is not None else "")
            + f" (target within {OVERHEAD_TARGET_MS} ms)")


def _previews_cost(dev: list[dict], path: str) -> str | None:
    on = [row for row in dev if row["path"] == path and row.get("previews_enabled") is True]
    off = [row for row in dev if row["path"] == path and row.get("previews_enabled") is False]
    costs = []
    for name, key in (("wall", "wall_s"), ("ComfyUI", "comfyui_exec_s")):
        with_, without = _median(r.get(key) for r in on), _median(r.get(key) for r in off)
        if with_ is not None and without is not None:
            costs.append(f"{name} {_ms(with_ - without)}")
    return f"- previews' cost, {path}: {', '.join(costs)} (median on - median off)" if costs else None


def _sheet_table(rows: list[dict]) -> list[str]:
    sheet = sorted((row for row in rows if row.get("part") == "sheet"), key=lambda row: row.get("image", 0))
    if not sheet:
        return []
    total = next((row for row in rows if row.get("part") == "sheet total"), {})
    lines = ["", f"Sheet ({sheet[0].get('method')}, {len(sheet)} images submitted at once, async): "
                 f"{_s(total.get('wall_s'))} s for all, status {total.get('status')}", "",
             "| image | status | wall s | ComfyUI s | progress events | previews | first progress s | "
             "first preview s |", "|---|---|---|---|---|---|---|---|"]
    for row in sheet:
        lines.append(f"| {row['label'].rsplit(' ', 1)[-1]} | {row.get('status')} | {_s(row.get('wall_s'))} | "
                     f"{_s(row.get('comfyui_exec_s'))} | {row.get('progress_events')} | {row.get('previews')} | "
                     f"{_s(row.get('first_progress_s'))} | {_s(row.get('first_preview_s'))} |")
    return lines


def jobs_summary(rows: list[dict]) -> str:
    """The jobs phase's figures (benchmarks/rehearsal/measure.py `jobs_phase`): medians by
    previews setting and path, the async path's overhead, the cost of previews, the sheet.
    Only requests that succeeded count."""
    dev = [row for row in rows if row.get("part") == "flux-dev" and row.get("status") == 200]
    lines = ["Flux Dev 1024/28, warm (medians):", "", *_paths_table(dev), ""]
    lines += [line for previews in dict.fromkeys(_previews(row) for row in dev)
              if (line := _overhead(dev, previews)) is not None]
    lines += [line for path in ("sync", "async") if (line := _previews_cost(dev, path)) is not None]
    return "\n".join(lines + _sheet_table(rows))


def main(argv: list[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    jobs_only = "--jobs" in args
    paths = [Path(p) for p in args if p != "--jobs"]
    if not paths:
        print(__doc__)
        return 2
    if jobs_only:  # pairs stay within their file
        print(jobs_summary([{**row, "results_file": path.name}
                            for path in paths for row in json.loads(path.read_text())]))
    else:
        print("\n\n".join(summarize(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
