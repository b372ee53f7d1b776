"""Where the CLI writes files and how it prints: timestamped names, JSON, tables."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ui.client import GenerationResult

OUTPUTS_DIR = Path("outputs")


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


def emit_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=str))


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def print_table(rows: Sequence[dict], preferred: Sequence[str]) -> None:
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
