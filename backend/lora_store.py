"""Character LoRAs on a directory (ComfyUI's models/loras; a Modal Volume in deployment).

Each LoRA is `character-<id>.safetensors` with `character-<id>.json` beside it (trigger
word, uploaded at, size, sha256). ComfyUI lists only model extensions, so the JSON
files stay invisible to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from safetensors import SafetensorError, safe_open

from backend.errors import InvalidRequest, LoraNotFound

LORA_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TRIGGER_CHARS = 200


@dataclass(frozen=True)
class LoraInfo:
    id: str
    file: str
    trigger_word: str
    uploaded_at: str
    size_bytes: int
    sha256: str


def check_lora_id(lora_id: str) -> str:
    """The id, or InvalidRequest: ids become file names, so nothing path-like passes."""
    if not isinstance(lora_id, str) or not LORA_ID_RE.fullmatch(lora_id):
        raise InvalidRequest(
            f"LoRA id {lora_id!r} is not allowed: use 1-64 characters from A-Z, a-z, 0-9, '_' and '-'",
            field="lora_id",
        )
    return lora_id


def check_safetensors(path: Path) -> None:
    """Raise InvalidRequest unless `path` is a safetensors file with at least one tensor.

    The safetensors library reads the header as ComfyUI will (dtypes, shapes, offsets,
    overflow, the data covered exactly); its own message says what is wrong."""
    try:
        with safe_open(path, framework="numpy") as opened:
            tensors = len(opened.keys())
    except SafetensorError as exc:
        raise InvalidRequest(f"the uploaded file is not a safetensors file: {exc}",
                             field="file") from None
    if not tensors:
        raise InvalidRequest("the uploaded file is not a safetensors file: it holds no tensors",
                             field="file")


class LoraStore:
    """Uploads are written and checked under unique temporary names, then the weights and
    their metadata are renamed into place together under one lock, which readers take too:
    of concurrent uploads of one id, the last to finish wins, and its metadata (size,
    sha256) always describes the stored file. One process writes a store."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._swap = threading.Lock()

    def file_name(self, lora_id: str) -> str:
        return f"character-{check_lora_id(lora_id)}.safetensors"

    def _meta_path(self, lora_id: str) -> Path:
        return self.directory / f"character-{check_lora_id(lora_id)}.json"

    def get(self, lora_id: str) -> LoraInfo:
        weights = self.directory / self.file_name(lora_id)
        meta = self._meta_path(lora_id)
        with self._swap:
            if not weights.is_file():
                raise LoraNotFound(
                    f"no LoRA with id {lora_id!r}; GET /loras lists the uploaded ones, "
                    "POST /loras uploads one",
                    field="lora_id",
                )
            if meta.is_file():
                return LoraInfo(**json.loads(meta.read_text()))
            stat = weights.stat()
        # weights copied onto the volume by hand: describe them without a trigger word
        return LoraInfo(
            id=lora_id, file=weights.name, trigger_word="",
            uploaded_at=datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat(),
            size_bytes=stat.st_size, sha256="",
        )

    def list(self) -> list[LoraInfo]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("character-*.safetensors")):
            lora_id = path.name[len("character-"):-len(".safetensors")]
            if LORA_ID_RE.fullmatch(lora_id):
                found.append(self.get(lora_id))
        return found

    def save(self, lora_id: str, source: BinaryIO, trigger_word: str) -> LoraInfo:
        """Store `source` under `lora_id` with its metadata, once it reads as safetensors."""
        check_lora_id(lora_id)
        trigger_word = trigger_word.strip()
        if len(trigger_word) > MAX_TRIGGER_CHARS:
            raise InvalidRequest(
                f"trigger_word has {len(trigger_word)} characters; at most {MAX_TRIGGER_CHARS}",
                field="trigger_word",
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        # temporary names unique to this upload, in the same directory so renames are atomic
        weights_fd, weights_tmp = tempfile.mkstemp(dir=self.directory, prefix=".upload-",
                                                   suffix=".part")
        meta_tmp = ""
        try:
            digest = hashlib.sha256()
            with os.fdopen(weights_fd, "wb") as out:
                source.seek(0)
                while chunk := source.read(1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
                size = out.tell()
            check_safetensors(Path(weights_tmp))
            info = LoraInfo(
                id=lora_id, file=self.file_name(lora_id), trigger_word=trigger_word,
                uploaded_at=datetime.now(timezone.utc).isoformat(), size_bytes=size,
                sha256=digest.hexdigest(),
            )
            meta_fd, meta_tmp = tempfile.mkstemp(dir=self.directory, prefix=".upload-",
                                                 suffix=".json.part")
            with os.fdopen(meta_fd, "w") as out:
                out.write(json.dumps(asdict(info), indent=1))
            with self._swap:
                os.replace(weights_tmp, self.directory / info.file)
                os.replace(meta_tmp, self._meta_path(lora_id))
        finally:
            for leftover in (weights_tmp, meta_tmp):
                if leftover and os.path.exists(leftover):
                    os.unlink(leftover)
        return info


__all__ = ["LoraInfo", "LoraStore", "check_lora_id", "check_safetensors"]
