"""`ryla loras` and `ryla models`: the LoRA store and the model files."""

from __future__ import annotations

import argparse

from ui.cli.options import UsageError, backend_client
from ui.cli.output import emit_json, print_table


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
    print_table(models, preferred=("local_name", "filename", "folder", "present", "status",
                                    "size_bytes", "gated", "pipelines"))
    missing = sum(1 for row in models if not _is_present(row))
    print(f"\n{len(models) - missing} installed, {missing} missing")
    return 0
