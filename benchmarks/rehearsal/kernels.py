"""What the H100 gives for Flux Dev's two kinds of work at 1024x1024 (4096 image + 512 text
tokens), to know how far fast mode can go: attention through each of torch's SDPA backends,
and one MLP matrix multiply in bf16 and in fp8 (torch._scaled_mm, as ComfyUI's fp8 path).

    python -m benchmarks.rehearsal.kernels     (on the GPU machine; prints one JSON line)
"""

from __future__ import annotations

import json

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

TOKENS, HEADS, HEAD_DIM, HIDDEN = 4608, 24, 128, 3072


def _time_ms(fn, repeat: int = 20) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeat):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeat


def main() -> None:
    q, k, v = (torch.randn(1, HEADS, TOKENS, HEAD_DIM, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    attention_flop = 4 * TOKENS * TOKENS * HEAD_DIM * HEADS
    figures: dict[str, object] = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION):
        try:
            with sdpa_kernel([backend]):
                ms = _time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
            figures[f"sdpa_{backend.name.lower()}_ms"] = round(ms, 3)
            figures[f"sdpa_{backend.name.lower()}_tflops"] = round(attention_flop / ms / 1e9, 1)
        except RuntimeError as exc:
            figures[f"sdpa_{backend.name.lower()}_error"] = str(exc)[:200]
    ms = _time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
    figures["sdpa_default_ms"] = round(ms, 3)
    x = torch.randn(TOKENS, HIDDEN, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(4 * HIDDEN, HIDDEN, device="cuda", dtype=torch.bfloat16)
    mm_flop = 2 * TOKENS * HIDDEN * 4 * HIDDEN
    ms = _time_ms(lambda: torch.nn.functional.linear(x, w))
    figures.update(mm_bf16_ms=round(ms, 3), mm_bf16_tflops=round(mm_flop / ms / 1e9, 1))
    x8, w8 = x.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn)
    one = torch.ones((), device="cuda", dtype=torch.float32)
    ms = _time_ms(lambda: torch._scaled_mm(x8, w8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16))
    figures.update(mm_fp8_ms=round(ms, 3), mm_fp8_tflops=round(mm_flop / ms / 1e9, 1))
    # ComfyUI's fp8 path also clamps and casts each activation: one pass each over memory
    ms = _time_ms(lambda: torch.clamp(x, -448, 448).to(torch.float8_e4m3fn))
    figures["activation_cast_ms"] = round(ms, 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
