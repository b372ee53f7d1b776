"""`ryla loras` and `ryla models`: the LoRA store and the model files."""

from __future__ import annotations

import argparse

from ui.cli.options import UsageError, backend_client
from ui.cli.output import emit_json, human_size, print_table


def cmd_loras(args: argparse.Namespace) -> int:
    as_json = getattr(args, "json", False)
    with backend_client(args) as client:
        if args.action == "upload":
            if not args.file.is_file():
                raise UsageError(f"no such file {str(args.file)!r}; give the path of a .safetensors LoRA")
            lora_id = args.lora_id or args.file.stem
            result = client.upload_lora(lora_id, args.file, args.trigger_word)
            if as_json:
                emit_json(result)
            else:
                print(f"uploaded {args.file} as LoRA {lora_id!r}")
            return 0
        loras = client.loras()
    if as_json:
        emit_json(loras)
    elif not loras:
        print("no LoRAs in the store; upload one with `ryla loras upload FILE --id ID`")
    else:
        print_table(loras, preferred=("id", "trigger_word", "size_bytes", "filename", "created_at"))
    return 0


def _is_present(row: dict) -> bool:
    for key in ("present", "installed"):
        if key in row:
            return bool(row[key])
    return str(row.get("status", "")).lower() in ("present", "installed")


def cmd_models(args: argparse.Namespace) -> int:
    with backend_client(args) as client:
        models = client.models()
    if args.missing:
        models = [row for row in models if not _is_present(row)]
    if args.json:
        emit_json(models)
        return 0
    if not models:
        print("every model file is installed" if args.missing else "the backend lists no model files")
        return 0
    _print_models(models)
    missing = sum(1 for row in models if not _is_present(row))
    print(f"\n{len(models) - missing} installed, {missing} missing"
          + ("; install commands and paths: ryla models --missing --json" if missing else ""))
    return 0


MODELS_WIDTH = 100


def _print_models(models: list[dict]) -> None:
    """A table that fits MODELS_WIDTH columns: file, folder, size, status and pipelines
    (repository, paths and the rest with --json)."""
    rows = [{"file": str(row.get("local_name") or row.get("filename") or "-"),
             "folder": str(row.get("folder") or "-"),
             "size": human_size(float(row.get("size_bytes") or 0)),
             "status": "present" if _is_present(row) else "MISSING",
             "pipelines": ",".join(row.get("pipelines") or ())} for row in models]
    fixed = {c: max(len(c), *(len(r[c]) for r in rows)) for c in ("folder", "size", "status")}
    room = MODELS_WIDTH - sum(fixed.values()) - 2 * 4
    file_width = min(max(len(r["file"]) for r in rows), max(20, room * 3 // 5))
    pipe_width = room - file_width
    widths = {"file": file_width, **fixed, "pipelines": pipe_width}
    print("  ".join(c.ljust(w) for c, w in widths.items()).rstrip())
    for r in rows:
        print("  ".join(_fit(r[c], w).ljust(w) for c, w in widths.items()).rstrip())


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
