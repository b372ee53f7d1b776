"""Random-weight model files for every pipeline, with the keys and shapes of the real files,
built from the libraries' own model classes (ComfyUI's, the two node packs', facexlib's), so
that ComfyUI's loaders detect and run them as the real models: the same arithmetic and the
same memory, but the pixels are noise. For the GPU rehearsal only; nothing here is a model.

What each file is built from (manifest name -> class):
  flux1-dev / flux1-schnell     comfy.ldm.flux.model.Flux (11.9 B; Schnell without guidance_in)
  t5xxl_fp16, clip_l            comfy.text_encoders.t5.T5, comfy.clip_model.CLIPTextModel
  ae                            comfy AutoencodingEngine (Flux VAE, 16 latent channels)
  sd_xl_base_1.0                comfy UNetModel + SDXL CLIP-L/bigG + AutoencoderKL, saved through
                                comfy.supported_models.SDXL's own checkpoint key conversion
  instantid_controlnet          comfy.cldm.cldm.ControlNet (SDXL), renamed to the diffusers
                                layout InstantID ships, by inverting ComfyUI's own loader mapping
  ip-adapter.bin                ComfyUI_InstantID's Resampler + one to_k_ip/to_v_ip pair per SDXL
                                cross-attention layer
  pulid_flux_v0.9.1             ComfyUI_PuLID_Flux_ll's IDFormer + PerceiverAttentionCA layers
  EVA02_CLIP_L_336_psz14_s6B    ComfyUI_PuLID_Flux_ll's eva_clip CustomCLIP('EVA02-CLIP-L-14-336')
  detection_Resnet50_Final,     facexlib's RetinaFace(resnet50) and BiSeNet(19 classes)
  parsing_bisenet
  wan2.1_t2v_1.3B_fp16          comfy.ldm.wan.model.WanModel (1.3 B config)
  umt5_xxl_fp8_e4m3fn_scaled    comfy T5 with umt5_config_xxl.json, written in bf16 (not fp8), with a
                                STAND-IN sentencepiece tokenizer inside, as the real file has
  wan_2.1_vae                   comfy.ldm.wan.vae.WanVAE
  character-rehearsal LoRA      rank-16 lora_A/lora_B pairs on every Linear of Flux's blocks
  z_image_turbo_bf16            comfy.ldm.lumina.model.NextDiT with the config that
                                comfy.model_detection reads off Z-Image's keys (dim 3840, 30 layers,
                                pad tokens), so UNETLoader detects supported_models.ZImage
  qwen_3_4b                     comfy.text_encoders.llama.Qwen3_4B (the "model." keys the real file
                                has); CLIPLoader (type lumina2) detects Qwen3-4B and builds Z-Image's
                                encoder; its tokenizer is ComfyUI's own qwen25_tokenizer folder
  (ae.safetensors, the Flux VAE, serves Z-Image as it does Flux; detect_z_image.py checks
   on the meta device that ComfyUI detects both Z-Image files as the real ones)
antelopev2's ONNX files are stand-ins from antelopev2_standins.py (no class builds them).

Usage: python make_weights.py COMFYUI_DIR MODELS_DIR [--only NAME[,NAME]] [--extra-dir DIR]
                              [--shapes-only]
  --extra-dir: write the non-Flux files there and symlink them into MODELS_DIR (a RAM disk
  when the machine's disk cannot hold everything). --shapes-only: build on the meta device
  and print tensor counts and parameter totals, writing nothing (works without a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ARGS = argparse.ArgumentParser()
ARGS.add_argument("comfy_dir")
ARGS.add_argument("models_dir")
ARGS.add_argument("--only", default="")
ARGS.add_argument("--extra-dir", default="")
ARGS.add_argument("--shapes-only", action="store_true")
ARGS.add_argument("--lora-out", default="")

bf16, f16, f32 = torch.bfloat16, torch.float16, torch.float32
FP8 = torch.float8_e4m3fn
META = "meta"


def _comfy(comfy_dir: str) -> None:
    sys.path.insert(0, comfy_dir)
    if not torch.cuda.is_available():
        from comfy.cli_args import args
        args.cpu = True


def _ops():
    import comfy.ops
    return comfy.ops.disable_weight_init


# --- Flux family ------------------------------------------------------------------

def flux(guidance: bool) -> torch.nn.Module:
    from comfy.ldm.flux.model import Flux
    return Flux(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=768,
                context_in_dim=4096, hidden_size=3072, mlp_ratio=4.0, num_heads=24, depth=19,
                depth_single_blocks=38, axes_dim=[16, 56, 56], theta=10000, patch_size=2,
                qkv_bias=True, guidance_embed=guidance, txt_ids_dims=[], dtype=bf16,
                device=META, operations=_ops())


def t5(config: str, dtype: torch.dtype) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        from comfy.text_encoders.t5 import T5
        cfg = json.load(open(os.path.join(COMFY, "comfy/text_encoders", config)))
        return T5(cfg, dtype, META, _ops())
    return build


def clip_l() -> torch.nn.Module:
    from comfy.clip_model import CLIPTextModel
    cfg = json.load(open(os.path.join(COMFY, "comfy/sd1_clip_config.json")))
    return CLIPTextModel(cfg, f16, META, _ops())


def _vae(z_channels: int, embed_dim: int | None = None) -> torch.nn.Module:
    from comfy.ldm.models.autoencoder import AutoencodingEngine, AutoencoderKL
    dd = {"double_z": True, "z_channels": z_channels, "resolution": 256, "in_channels": 3,
          "out_ch": 3, "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2,
          "attn_resolutions": [], "dropout": 0.0}
    with torch.device(META):
        if embed_dim is not None:  # SD/SDXL VAE: quant convs around the latent
            return AutoencoderKL(ddconfig=dd, embed_dim=embed_dim)
        return AutoencodingEngine(
            regularizer_config={"target": "comfy.ldm.models.autoencoder.DiagonalGaussianRegularizer"},
            encoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Encoder", "params": dd},
            decoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Decoder", "params": dd})


def flux_vae() -> torch.nn.Module:
    return _vae(16)


# --- SDXL checkpoint and InstantID --------------------------------------------------

SDXL_UNET = {
    "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
    "legacy": False, "num_classes": "sequential", "adm_in_channels": 2816, "in_channels": 4,
    "model_channels": 320, "num_res_blocks": [2, 2, 2], "transformer_depth": [0, 0, 2, 2, 10, 10],
    "channel_mult": [1, 2, 4], "transformer_depth_middle": 10, "use_linear_in_transformer": True,
    "context_dim": 2048, "num_head_channels": 64, "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
    "use_temporal_attention": False, "use_temporal_resblock": False,
}


def sdxl_checkpoint() -> dict[str, torch.Tensor]:
    """The single-file SDXL base checkpoint, in the key layout ComfyUI's CheckpointSave
    writes (and CheckpointLoaderSimple reads): unet, both CLIPs and the VAE."""
    import comfy.sdxl_clip
    import comfy.supported_models
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    config = comfy.supported_models.SDXL(dict(SDXL_UNET))
    unet = UNetModel(**SDXL_UNET, dtype=f16, device=META, operations=_ops()).state_dict()
    clip = comfy.sdxl_clip.SDXLClipModel(device=META, dtype=f16).state_dict()
    clip = {k: v for k, v in clip.items() if not k.endswith("logit_scale")}
    vae = _vae(4, embed_dim=4).state_dict()
    sd = {}
    sd.update(config.process_unet_state_dict_for_saving(dict(unet)))
    sd.update(config.process_clip_state_dict_for_saving(clip))
    sd.update(config.process_vae_state_dict_for_saving(vae))
    return sd


def instantid_controlnet() -> dict[str, torch.Tensor]:
    """InstantID's IdentityNet: an SDXL ControlNet in diffusers' key layout."""
    import comfy.utils
    from comfy.cldm.cldm import ControlNet

    cfg = {k: v for k, v in SDXL_UNET.items() if k not in ("out_channels", "transformer_depth_output")}
    ldm = ControlNet(hint_channels=3, **cfg, dtype=f16, device=META, operations=_ops()).state_dict()
    # ComfyUI's loader maps diffusers -> ldm names with these rules (comfy/controlnet.py);
    # inverting them gives the diffusers layout of the real file.
    to_ldm = comfy.utils.unet_to_diffusers(dict(SDXL_UNET))
    to_ldm["controlnet_mid_block.weight"] = "middle_block_out.0.weight"
    to_ldm["controlnet_mid_block.bias"] = "middle_block_out.0.bias"
    for i in range(12):
        for s in (".weight", ".bias"):
            to_ldm[f"controlnet_down_blocks.{i}{s}"] = f"zero_convs.{i}.0{s}"
    for c in range(8):
        for s in (".weight", ".bias"):
            src = "controlnet_cond_embedding.conv_in" if c == 0 else (
                "controlnet_cond_embedding.conv_out" if c == 7 else f"controlnet_cond_embedding.blocks.{c - 1}")
            to_ldm[src + s] = f"input_hint_block.{c * 2}{s}"
    to_diffusers = {v: k for k, v in to_ldm.items()}
    missing = [k for k in ldm if k not in to_diffusers]
    if missing:
        raise RuntimeError(f"ControlNet keys without a diffusers name: {missing[:5]}")
    return {to_diffusers[k]: v for k, v in ldm.items()}


def _sdxl_cross_attention_dims() -> list[int]:
    # diffusers' attention-processor order: down blocks (2x640, 2x10x1280... per layer),
    # then up blocks, then the middle block; InstantID numbers the attn2 of each as 2k+1.
    down = [640] * 4 + [1280] * 20
    up = [1280] * 30 + [640] * 6
    mid = [1280] * 10
    return down + up + mid


def instantid_ip_adapter() -> dict[str, dict[str, torch.Tensor]]:
    sys.path.insert(0, os.path.join(COMFY, "custom_nodes", "ComfyUI_InstantID"))
    from resampler import Resampler  # the node pack's own class

    proj = Resampler(dim=1280, depth=4, dim_head=64, heads=20, num_queries=16, embedding_dim=512,
                     output_dim=2048, ff_mult=4).state_dict()
    ip = {}
    for k, dim in enumerate(_sdxl_cross_attention_dims()):
        ip[f"{2 * k + 1}.to_k_ip.weight"] = torch.empty(dim, 2048, device=META)
        ip[f"{2 * k + 1}.to_v_ip.weight"] = torch.empty(dim, 2048, device=META)
    return {"image_proj": proj, "ip_adapter": ip}


# --- PuLID-Flux ---------------------------------------------------------------------

def _pulid_pack() -> str:
    path = os.path.join(COMFY, "custom_nodes", "ComfyUI_PuLID_Flux_ll")
    sys.path.insert(0, path)
    return path


def pulid() -> dict[str, torch.Tensor]:
    _pulid_pack()
    from encoders_flux import IDFormer, PerceiverAttentionCA  # the node pack's own classes

    num_ca = 19 // 2 + 38 // 4 + (19 % 2 != 0) + (38 % 4 != 0)
    model = torch.nn.ModuleDict({
        "pulid_encoder": IDFormer(),
        "pulid_ca": torch.nn.ModuleList([PerceiverAttentionCA() for _ in range(num_ca)]),
    })
    return model.state_dict()


def eva_clip() -> dict[str, torch.Tensor]:
    import importlib
    pack = _pulid_pack()
    sys.path.insert(0, os.path.dirname(pack))
    factory = importlib.import_module("ComfyUI_PuLID_Flux_ll.eva_clip.factory")
    model = factory.create_model("EVA02-CLIP-L-14-336", None, force_custom_clip=True)
    return {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}


def facexlib_retinaface() -> dict[str, torch.Tensor]:
    from facexlib.detection.retinaface import RetinaFace
    return RetinaFace(network_name="resnet50", half=False, device="cpu").state_dict()


def facexlib_bisenet() -> dict[str, torch.Tensor]:
    from facexlib.parsing.bisenet import BiSeNet
    return BiSeNet(num_class=19).state_dict()


# --- Wan 2.1 ------------------------------------------------------------------------

def wan_t2v_1_3b() -> torch.nn.Module:
    from comfy.ldm.wan.model import WanModel
    return WanModel(model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=1536,
                    ffn_dim=8960, freq_dim=256, text_dim=4096, out_dim=16, num_heads=12,
                    num_layers=30, eps=1e-6, image_model="wan2.1", device=META, dtype=f16,
                    operations=_ops())


def umt5_xxl() -> dict[str, torch.Tensor]:
    """UMT5-XXL as Comfy-Org packages it: the encoder's weights plus its sentencepiece
    tokenizer inside the file ("spiece_model"). The tokenizer here is a STAND-IN, trained on
    this repository's README and docs (the real one cannot be fetched); ids stay far inside the
    256384-row embedding."""
    import io
    import sentencepiece as spm

    model = io.BytesIO()
    repo = Path(__file__).resolve().parents[2]
    text = "\n".join(p.read_text() for p in [repo / "README.md", *sorted((repo / "docs").glob("*.md"))])
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text.splitlines() * 4),
                                   model_writer=model, vocab_size=1000, model_type="unigram",
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2)
    sd = t5("umt5_config_xxl.json", bf16)().state_dict()
    sd["spiece_model"] = torch.frombuffer(bytearray(model.getvalue()), dtype=torch.uint8)
    return sd


def wan_vae() -> torch.nn.Module:
    from comfy.ldm.wan.vae import WanVAE
    with torch.device(META):
        return WanVAE(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                      temperal_downsample=[False, True, True], dropout=0.0)


# --- Z-Image-Turbo -------------------------------------------------------------------

def z_image_turbo() -> torch.nn.Module:
    from comfy.ldm.lumina.model import NextDiT
    # The values comfy.model_detection sets for a Lumina-2 layout whose cap_embedder is
    # 3840 wide (its "Z image" branch); cap_pad_token/x_pad_token come with
    # pad_tokens_multiple, as in Comfy-Org's file.
    return NextDiT(patch_size=2, in_channels=16, dim=3840, cap_feat_dim=2560, n_layers=30,
                   qk_norm=True, n_heads=30, n_kv_heads=30, axes_dims=[32, 48, 48],
                   axes_lens=[1536, 512, 512], rope_theta=256.0, ffn_dim_multiplier=8.0 / 3.0,
                   z_image_modulation=True, time_scale=1000.0, pad_tokens_multiple=32,
                   image_model="lumina2", device=META, dtype=bf16, operations=_ops())


def qwen3_4b() -> torch.nn.Module:
    from comfy.text_encoders.llama import Qwen3_4B
    return Qwen3_4B({}, bf16, META, _ops())


# --- a character LoRA for Flux --------------------------------------------------------

def flux_lora(rank: int = 16) -> dict[str, torch.Tensor]:
    lora = {}
    for name, module in flux(True).named_modules():
        if isinstance(module, torch.nn.Linear) and name.startswith(("double_blocks.", "single_blocks.")):
            out_f, in_f = module.weight.shape
            lora[f"diffusion_model.{name}.lora_A.weight"] = torch.empty(rank, in_f, device=META)
            lora[f"diffusion_model.{name}.lora_B.weight"] = torch.empty(out_f, rank, device=META)
    return lora


# (folder, name, builder, dtype, format): format "st" safetensors, "pt" torch.save;
# "flux" files go to MODELS_DIR itself, the rest may go to --extra-dir.
FILES: list[tuple[str, str, Callable, torch.dtype, str, bool]] = [
    ("diffusion_models", "flux1-dev.safetensors", lambda: flux(True), bf16, "st", True),
    ("diffusion_models", "flux1-schnell.safetensors", lambda: flux(False), bf16, "st", True),
    # fp8 copies (the optional, half-size files: matrices in float8_e4m3fn, the rest bf16)
    ("diffusion_models", "flux1-dev-fp8-e4m3fn.safetensors", lambda: flux(True), FP8, "st", True),
    ("text_encoders", "t5xxl_fp8_e4m3fn.safetensors", t5("t5_config_xxl.json", f16), FP8, "st", True),
    ("text_encoders", "t5xxl_fp16.safetensors", t5("t5_config_xxl.json", f16), f16, "st", True),
    ("text_encoders", "clip_l.safetensors", clip_l, f16, "st", True),
    ("vae", "ae.safetensors", flux_vae, bf16, "st", True),
    ("checkpoints", "sd_xl_base_1.0.safetensors", sdxl_checkpoint, f16, "st", False),
    ("controlnet", "instantid_controlnet.safetensors", instantid_controlnet, f16, "st", False),
    ("instantid", "ip-adapter.bin", instantid_ip_adapter, f32, "pt", False),
    ("pulid", "pulid_flux_v0.9.1.safetensors", pulid, bf16, "st", False),
    ("clip", "EVA02_CLIP_L_336_psz14_s6B.pt", eva_clip, f16, "pt-module", False),
    ("facexlib", "detection_Resnet50_Final.pth", facexlib_retinaface, f32, "pt-module", False),
    ("facexlib", "parsing_bisenet.pth", facexlib_bisenet, f32, "pt-module", False),
    ("diffusion_models", "wan2.1_t2v_1.3B_fp16.safetensors", wan_t2v_1_3b, f16, "st", False),
    ("text_encoders", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", umt5_xxl, bf16, "st", False),
    ("vae", "wan_2.1_vae.safetensors", wan_vae, bf16, "st", False),
    ("diffusion_models", "z_image_turbo_bf16.safetensors", z_image_turbo, bf16, "st", False),
    ("text_encoders", "qwen_3_4b.safetensors", qwen3_4b, bf16, "st", False),
]


def _state(built: object) -> dict:
    return built.state_dict() if isinstance(built, torch.nn.Module) else built  # type: ignore[union-attr]


def _fill(shapes: dict, dtype: torch.dtype, gen: torch.Generator, device: str) -> dict:
    """N(0, 0.02) weights; ones for norm scales and running variances, zeros for means."""
    out = {}
    for k, v in shapes.items():
        if isinstance(v, dict):
            out[k] = _fill(v, dtype, gen, device)
            continue
        if v.device.type != "meta":  # a real buffer (e.g. CLIP's position ids): keep it
            out[k] = v.to(dtype) if v.is_floating_point() else v
            continue
        if k.endswith(("running_var",)) or (v.dim() == 1 and k.endswith(("scale", "norm.weight", "gamma", "ln.weight", "_norm.weight"))):
            t = torch.ones(v.shape, device=device)
        elif k.endswith("running_mean"):
            t = torch.zeros(v.shape, device=device)
        else:
            t = torch.randn(v.shape, generator=gen, device=device) * 0.02
        # fp8 files keep vectors (norms, biases) and embeddings in bf16, as published ones do
        keep_wide = dtype == FP8 and (v.dim() < 2 or "embed" in k or k.startswith("shared"))
        out[k] = t.to(bf16 if keep_wide else dtype).cpu()
    return out


def _count(sd: dict) -> tuple[int, int]:
    n_t = n_p = 0
    for v in sd.values():
        if isinstance(v, dict):
            a, b = _count(v)
            n_t, n_p = n_t + a, n_p + b
        else:
            n_t, n_p = n_t + 1, n_p + v.numel()
    return n_t, n_p


def write(models_dir: Path, extra_dir: Path | None, only: set[str], shapes_only: bool) -> None:
    from safetensors.torch import save_file

    gpu = torch.cuda.is_available()
    device = "cuda" if gpu else "cpu"
    for folder, name, build, dtype, fmt, is_flux in FILES:
        if only and name not in only:
            continue
        t0 = time.time()
        sd = _state(build())
        tensors, params = _count(sd)
        print(f"{folder}/{name}: {tensors} tensors, {params / 1e9:.3f} B params", flush=True)
        if shapes_only:
            continue
        base = models_dir if (is_flux or extra_dir is None) else extra_dir
        (base / folder).mkdir(parents=True, exist_ok=True)
        path = base / folder / name
        gen = torch.Generator(device).manual_seed(0)
        if fmt == "pt-module":  # small modules built for real: their own random init
            torch.save({k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}, path)
        else:
            data = _fill(sd, dtype, gen, device)
            if fmt == "st":
                save_file(data, str(path))
            else:
                torch.save(data, path)
            del data
        if base != models_dir:
            link = models_dir / folder / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(path)
        print(f"  {path.stat().st_size / 1e9:.2f} GB written in {time.time() - t0:.1f} s", flush=True)


def write_lora(path: Path) -> None:
    from safetensors.torch import save_file
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = _fill(flux_lora(), bf16, torch.Generator(device).manual_seed(1), device)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(data, str(path))
    print(f"LoRA {path}: {len(data)} tensors, {path.stat().st_size / 1e6:.0f} MB", flush=True)


if __name__ == "__main__":
    a = ARGS.parse_args()
    COMFY = a.comfy_dir
    _comfy(COMFY)
    write(Path(a.models_dir), Path(a.extra_dir) if a.extra_dir else None,
          {n for n in a.only.split(",") if n}, a.shapes_only)
    if a.lora_out:
        write_lora(Path(a.lora_out))
else:
    COMFY = os.environ.get("COMFYUI_DIR", ".")
