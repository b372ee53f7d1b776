"""Keep RYLA_RETENTION_DAYS of job records and outputs: older files are deleted.

Modal's Volumes work best under 50,000 files (latency grows with the count, and there is
a hard inode limit), and every generation adds a record and its outputs; the Modal app
runs `prune` daily on the data Volume (`prune_data`). A file's age is its modification
time: a record is rewritten when its job ends, an output is written once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

# What is pruned, under the data directory (backend/records.py writes both).
PRUNED_FOLDERS = ("jobs", "outputs")
DAY_S = 24 * 60 * 60


@dataclass(frozen=True)
class PruneReport:
    removed_files: int
    removed_bytes: int
    kept_files: int
    kept_bytes: int

    def summary(self) -> str:
        return (f"removed {self.removed_files} file(s), {self.removed_bytes / 1e6:.1f} MB; "
                f"kept {self.kept_files} file(s), {self.kept_bytes / 1e6:.1f} MB")


def prune(data_dir: Path, retention_days: float, now: float | None = None) -> PruneReport:
    """Delete the files under data_dir/jobs and data_dir/outputs last written more than
    `retention_days` before `now`, and the folders that leaves empty."""
    cutoff = (time.time() if now is None else now) - retention_days * DAY_S
    removed = removed_bytes = kept = kept_bytes = 0
    for folder in PRUNED_FOLDERS:
        root = Path(data_dir) / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*"), reverse=True):  # children before their folder
            if path.is_dir():
                if path != root and not any(path.iterdir()):
                    path.rmdir()
                continue
            stat = path.stat()
            if stat.st_mtime < cutoff:
                path.unlink()
                removed, removed_bytes = removed + 1, removed_bytes + stat.st_size
            else:
                kept, kept_bytes = kept + 1, kept_bytes + stat.st_size
    return PruneReport(removed, removed_bytes, kept, kept_bytes)
