"""Check, on the meta device (no GPU, nothing written), that ComfyUI takes make_weights.py's
Z-Image files for the real ones: UNETLoader's detection picks supported_models.ZImage and
rebuilds exactly the file's tensors; CLIPLoader's detection sees Qwen3-4B, and Z-Image's
text encoder expects exactly the file's tensors. Prints one line per check; exits 1 if any fails.

Usage: python detect_z_image.py COMFYUI_DIR   (with that ComfyUI's Python, e.g.
       /tmp/upcomfy/venv/bin/python benchmarks/rehearsal/detect_z_image.py /tmp/upcomfy/ComfyUI)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_weights  # noqa: E402  (its builders, with COMFY set below)


def _shapes(sd: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def main(comfy_dir: str) -> int:
    make_weights.COMFY = comfy_dir
    make_weights._comfy(comfy_dir)
    import comfy.model_detection
    import comfy.sd
    import comfy.supported_models
    import comfy.text_encoders.hunyuan_video
    import comfy.text_encoders.z_image
    import comfy.utils
    from comfy.ldm.lumina.model import NextDiT

    checks: list[tuple[str, bool]] = []
    dit = make_weights.z_image_turbo().state_dict()
    # As comfy.sd.load_diffusion_model_state_dict (UNETLoader) does: strip a checkpoint
    # prefix only where keys carry it, then detect with the prefix "".
    prefix = comfy.model_detection.unet_prefix_from_state_dict(dit)
    dit = comfy.utils.state_dict_prefix_replace(dit, {prefix: ""}, filter_keys=True) or dit
    config = comfy.model_detection.model_config_from_unet(dit, "")
    checks.append((f"DiT detected as {type(config).__name__}", type(config) is comfy.supported_models.ZImage))
    if config is not None:
        rebuilt = NextDiT(**config.unet_config, device="meta", dtype=torch.bfloat16,
                          operations=make_weights._ops()).state_dict()
        checks.append(("model built from the detected config has the file's tensors",
                       _shapes(rebuilt) == _shapes(dit)))

    te = make_weights.qwen3_4b().state_dict()
    kind = comfy.sd.detect_te_model(te)
    checks.append((f"text encoder detected as {kind}", kind == comfy.sd.TEModel.QWEN3_4B))
    # CLIPLoader with any type but flux/flux2 builds Z-Image's encoder for Qwen3-4B and
    # loads the file into its qwen3_4b.transformer.
    encoder = comfy.text_encoders.z_image.te(**comfy.text_encoders.hunyuan_video.llama_detect(te))(
        device="meta", dtype=torch.bfloat16)
    inner = "qwen3_4b.transformer."
    expected = {k[len(inner):]: v for k, v in encoder.state_dict().items() if k.startswith(inner)}
    checks.append(("Z-Image's encoder expects exactly the file's tensors", _shapes(expected) == _shapes(te)))
    tokens = comfy.text_encoders.z_image.ZImageTokenizer().tokenize_with_weights("a lighthouse")
    checks.append(("tokenizer loads from ComfyUI's tree", len(tokens["qwen3_4b"][0]) > 2))

    for what, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
