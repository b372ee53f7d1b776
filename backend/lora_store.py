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
import struct
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from backend.errors import InvalidRequest, LoraNotFound

LORA_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
SAFETENSORS_DTYPES = {
    "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
    "I32", "U32", "F32", "F64", "I64", "U64",
}
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


def check_safetensors(fp: BinaryIO, size: int) -> None:
    """Raise InvalidRequest unless fp holds a well-formed safetensors file of `size` bytes."""
    def bad(why: str) -> InvalidRequest:
        return InvalidRequest(f"the uploaded file is not a safetensors file: {why}", field="file")

    fp.seek(0)
    head = fp.read(8)
    if len(head) < 8:
        raise bad("it is shorter than the 8-byte header length")
    (header_len,) = struct.unpack("<Q", head)
    if header_len < 2 or header_len > MAX_HEADER_BYTES or 8 + header_len > size:
        raise bad(f"its header length {header_len} does not fit a {size}-byte file")
    raw = fp.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except RecursionError:
        # JSON nested thousands deep: no safetensors writer makes that
        raise bad("its header is JSON nested too deeply to read") from None
    except ValueError as exc:  # bad UTF-8, bad JSON, an integer of thousands of digits
        raise bad(f"its header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    data_len = size - 8 - header_len
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if not tensors:
        raise bad("it holds no tensors")
    end = 0
    for name, entry in tensors.items():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            # safetensors' own (Rust) reader refuses such a name; so do we
            raise bad(f"tensor name {name!r} is not valid UTF-8 text") from None
        if not isinstance(entry, dict) or entry.get("dtype") not in SAFETENSORS_DTYPES:
            raise bad(f"tensor {name!r} has no valid dtype")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise bad(f"tensor {name!r} has no valid shape")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_len):
            raise bad(f"tensor {name!r} has data offsets outside the file")
        end = max(end, offsets[1])
    if end != data_len:
        raise bad(f"its tensors cover {end} data bytes but the file holds {data_len}")


class LoraStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def file_name(self, lora_id: str) -> str:
        return f"character-{check_lora_id(lora_id)}.safetensors"

    def _meta_path(self, lora_id: str) -> Path:
        return self.directory / f"character-{check_lora_id(lora_id)}.json"

    def get(self, lora_id: str) -> LoraInfo:
        weights = self.directory / self.file_name(lora_id)
        meta = self._meta_path(lora_id)
        if not weights.is_file():
            raise LoraNotFound(
                f"no LoRA with id {lora_id!r}; GET /loras lists the uploaded ones, "
                "POST /loras uploads one",
                field="lora_id",
            )
        if meta.is_file():
            return LoraInfo(**json.loads(meta.read_text()))
        # weights copied onto the volume by hand: describe them without a trigger word
        stat = weights.stat()
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
        """Check `source` is safetensors, then store it atomically with its metadata."""
        check_lora_id(lora_id)
        trigger_word = trigger_word.strip()
        if len(trigger_word) > MAX_TRIGGER_CHARS:
            raise InvalidRequest(
                f"trigger_word has {len(trigger_word)} characters; at most {MAX_TRIGGER_CHARS}",
                field="trigger_word",
            )
        source.seek(0, os.SEEK_END)
        size = source.tell()
        check_safetensors(source, size)
        self.directory.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        # temp file in the same directory so that the rename is atomic
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                source.seek(0)
                while chunk := source.read(1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
            info = LoraInfo(
                id=lora_id, file=self.file_name(lora_id), trigger_word=trigger_word,
                uploaded_at=datetime.now(timezone.utc).isoformat(), size_bytes=size,
                sha256=digest.hexdigest(),
            )
            os.replace(tmp_name, self.directory / info.file)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        meta_tmp = self._meta_path(lora_id).with_suffix(".json.part")
        meta_tmp.write_text(json.dumps(asdict(info), indent=1))
        os.replace(meta_tmp, self._meta_path(lora_id))
        return info


__all__ = ["LoraInfo", "LoraStore", "check_lora_id", "check_safetensors"]
