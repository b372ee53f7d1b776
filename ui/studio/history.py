"""Local generation history: one folder per item, holding `item.json` and its files.

Kept as plain files (not a database) so that a creator can browse, copy or delete
runs with a file manager, and so that the studio finds them again after a restart.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ITEM_FILE = "item.json"
# What create() makes: 20260130-101500-123456-a1b2c3. Ids come from the browser; only
# this shape is looked up (a 5,000-character id is not a file name the system takes).
ITEM_ID_RE = re.compile(r"\d{8}-\d{6}-\d{6}-[0-9a-f]{6}")
KINDS = ("flux", "sheet", "lora", "review")


def default_data_dir() -> Path:
    """`RYLA_STUDIO_DATA` when set, else ~/.ryla."""
    env = os.environ.get("RYLA_STUDIO_DATA")
    return Path(env).expanduser() if env else Path.home() / ".ryla"


@dataclass
class HistoryItem:
    """One generation (or review) run as it is stored in `item.json`.

    `files` are names relative to the item's folder; `outputs` describe each file
    (seed, timings, score, caption) in the same order.
    """

    id: str
    kind: str
    created: str
    params: dict[str, Any]
    files: list[str] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None  # reference face file name, for sheet/review items
    # "running" while its jobs run; then "done", "stopped" (Stop pressed) or "interrupted"
    # (the studio ended before its jobs did: what they made was fetched from the backend)
    state: str = "done"
    # the backend jobs of the run: {"id", "status", "file" (its image here, once saved)}
    jobs: list[dict[str, Any]] = field(default_factory=list)
    folder: Path | None = field(default=None, compare=False)

    def paths(self) -> list[Path]:
        assert self.folder is not None
        return [self.folder / name for name in self.files]

    def reference_path(self) -> Path | None:
        if self.reference is None or self.folder is None:
            return None
        return self.folder / self.reference

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("folder")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], folder: Path) -> "HistoryItem":
        known = {k: data[k] for k in ("id", "kind", "created", "params")}
        return cls(
            **known,
            files=list(data.get("files", [])),
            outputs=list(data.get("outputs", [])),
            summary=dict(data.get("summary", {})),
            reference=data.get("reference"),
            state=str(data.get("state", "done")),
            jobs=list(data.get("jobs", [])),
            folder=folder,
        )


class History:
    """Items under `root/history/<id>/`; ids sort by creation time."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_data_dir()
        self.items_dir = self.root / "history"
        self.items_dir.mkdir(parents=True, exist_ok=True)
        # Items whose jobs a worker of this process follows; an item left "running" that
        # is not here was cut off (the studio stopped) and is settled from the backend.
        self.followed: set[str] = set()

    def create(self, kind: str, params: dict[str, Any]) -> HistoryItem:
        """A new, empty item with its folder, for runs that write their own files there
        (a character sheet); fill `files`/`outputs` and call `update`."""
        if kind not in KINDS:
            raise ValueError(f"unknown history kind {kind!r}; one of {', '.join(KINDS)}")
        now = datetime.now(timezone.utc)
        # Timestamp first so that a plain name sort is a time sort; the random tail
        # keeps two runs in the same microsecond apart.
        item_id = f"{now:%Y%m%d-%H%M%S-%f}-{secrets.token_hex(3)}"
        folder = self.items_dir / item_id
        folder.mkdir(parents=True)
        item = HistoryItem(id=item_id, kind=kind, created=now.isoformat(timespec="seconds"),
                           params=dict(params), folder=folder)
        self._write(item)
        return item

    def add(
        self,
        kind: str,
        params: dict[str, Any],
        images: list[tuple[bytes, str]] | None = None,
        outputs: list[dict[str, Any]] | None = None,
        summary: dict[str, Any] | None = None,
        reference: tuple[bytes, str] | None = None,
    ) -> HistoryItem:
        """Store a run. `images` and `reference` are (bytes, file extension) pairs."""
        images = images or []
        outputs = outputs or [{} for _ in images]
        if len(outputs) != len(images):
            raise ValueError("outputs must describe each image")
        item = self.create(kind, params)
        assert item.folder is not None
        for index, (data, ext) in enumerate(images):
            name = f"{index:03d}.{ext.lstrip('.')}"
            (item.folder / name).write_bytes(data)
            item.files.append(name)
        if reference is not None:
            item.reference = f"reference.{reference[1].lstrip('.')}"
            (item.folder / item.reference).write_bytes(reference[0])
        item.outputs = list(outputs)
        item.summary = dict(summary or {})
        self._write(item)
        return item

    def update(self, item: HistoryItem) -> None:
        """Rewrite an item's JSON (e.g. once its scores are known)."""
        self._write(item)

    def _write(self, item: HistoryItem) -> None:
        assert item.folder is not None
        # Write then rename so that a crash never leaves a half-written item.json.
        tmp = item.folder / (ITEM_FILE + ".tmp")
        tmp.write_text(json.dumps(item.to_json(), indent=2, sort_keys=True))
        tmp.replace(item.folder / ITEM_FILE)

    def get(self, item_id: str) -> HistoryItem:
        if not isinstance(item_id, str) or not ITEM_ID_RE.fullmatch(item_id):
            raise KeyError(item_id)
        folder = self.items_dir / item_id
        if not (folder / ITEM_FILE).is_file():
            raise KeyError(item_id)
        return HistoryItem.from_json(json.loads((folder / ITEM_FILE).read_text()), folder)

    def items(self, limit: int | None = None) -> list[HistoryItem]:
        """Newest first. Unreadable items are skipped, not fatal: one damaged folder
        must not hide the rest of the history."""
        found: list[HistoryItem] = []
        for folder in sorted(self.items_dir.iterdir(), reverse=True):
            path = folder / ITEM_FILE
            if not path.is_file():
                continue
            try:
                found.append(HistoryItem.from_json(json.loads(path.read_text()), folder))
            except (ValueError, KeyError, TypeError):
                continue
            if limit is not None and len(found) >= limit:
                break
        return found
