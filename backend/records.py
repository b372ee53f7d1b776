"""A saved record of every job (backend/jobs.py): the record is the job. Written when
the job is created (before anything is queued in ComfyUI), on each change of status, and
with its outcome and output paths before anyone hears of its end. A crash mid-job leaves
a "queued" or "running" record with the ComfyUI prompt id, which the next start settles
(backend/recovery.py): no job is ever silently lost, and jobs outlive the process.

Fields: request_id (the job id), endpoint (its route), status, request (redacted), seed,
prompt_id, created_at, started_at, ended_at (epoch seconds), progress, outputs (paths),
content_types, error, timings, done_event_id.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

# Image data is kept out of records: they hold what was asked, not the user's photos.
_REDACTED_FIELDS = ("reference_image", "images")


def redact(request: dict[str, Any]) -> dict[str, Any]:
    out = dict(request)
    for name in _REDACTED_FIELDS:
        value = out.get(name)
        if isinstance(value, str):
            out[name] = f"<{len(value)} characters>"
        elif isinstance(value, dict):
            out[name] = {k: f"<{len(v) if isinstance(v, str) else 0} characters>"
                         for k, v in value.items()}
    return out


def _write_json(path: Path, data: dict[str, Any]) -> None:
    # made again on every write: someone may remove RYLA_DATA_DIR while the server runs
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)  # atomic: a reader never sees half a record


class JobRecords:
    def __init__(self, data_dir: Path) -> None:
        self.jobs_dir = Path(data_dir) / "jobs"
        self.outputs_dir = Path(data_dir) / "outputs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.outputs_dir.mkdir(parents=True, exist_ok=True)
        # path -> ((mtime_ns, size), record): GET /jobs is polled by every open studio page,
        # so a record is parsed again only when its file changed (a write replaces the file)
        self._parsed: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}

    def path(self, request_id: str) -> Path:
        return self.jobs_dir / f"{request_id}.json"

    def read(self, request_id: str) -> dict[str, Any]:
        return json.loads(self.path(request_id).read_text())

    def new_record(self, request_id: str, endpoint: str, request: dict[str, Any],
                   seed: int | None, prompt_id: str | None = None) -> dict[str, Any]:
        """A queued job's record (not yet written: see `write`)."""
        return {"request_id": request_id, "endpoint": endpoint, "status": "queued",
                "request": redact(request), "seed": seed, "prompt_id": prompt_id,
                "created_at": time.time(), "started_at": None, "ended_at": None,
                "outputs": [], "error": None}

    def write(self, record: dict[str, Any]) -> None:
        _write_json(self.path(str(record["request_id"])), record)

    def all(self) -> list[dict[str, Any]]:
        """Every readable record, in no particular order."""
        found = []
        parsed: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}
        for path in self.jobs_dir.glob("*.json"):
            try:
                stat = path.stat()
                version = (stat.st_mtime_ns, stat.st_size)
                cached = self._parsed.get(path)
                record = cached[1] if cached and cached[0] == version else json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # half-written by a crash before os.replace: nothing to read
            if isinstance(record, dict) and record.get("request_id"):
                parsed[path] = (version, record)
                found.append(dict(record))  # callers may change their copy
        self._parsed = parsed  # removed files (retention) leave the cache too
        return found

    def left_running(self) -> list[dict[str, Any]]:
        """Every record not ended: at startup, those an earlier process left."""
        return sorted((r for r in self.all() if r.get("status") in ("queued", "running")),
                      key=lambda r: str(r["request_id"]))

    def save_outputs(self, request_id: str, outputs: list[tuple[bytes, str]]) -> list[str]:
        """Write each (bytes, extension) under outputs/; return the paths."""
        paths = []
        self.outputs_dir.mkdir(parents=True, exist_ok=True)
        for index, (data, ext) in enumerate(outputs):
            path = self.outputs_dir / f"{request_id}-{index}.{ext}"
            path.write_bytes(data)
            paths.append(str(path))
        return paths

    def finish(self, request_id: str, *, status: str, outputs: list[str] | None = None,
               error: dict[str, Any] | None = None, timings: dict[str, float] | None = None,
               prompt_id: str | None = None, **extra: Any) -> None:
        try:
            record = self.read(request_id)
        except FileNotFoundError:  # the data dir was removed mid-job: keep the outcome
            record = {"request_id": request_id, "note": "the record written at the start was "
                                                        "lost (was RYLA_DATA_DIR removed?)"}
        record.update(status=status, outputs=outputs or [], error=error, timings=timings or {},
                      ended_at=time.time(), **extra)
        if prompt_id is not None:
            record["prompt_id"] = prompt_id
        _write_json(self.path(request_id), record)
