"""The build-time fix of ComfyUI_PuLID_Flux_ll for ComfyUI v0.12.1 (backend/nodepack_patches.py)."""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

import pytest

from backend.nodepack_patches import PATCHES, PatchMismatch, apply, apply_all

PULID_COMMIT = "ba90657fe6ffa8072ac169a949bfa5e4153bf48a"
# The two wrappers' shape on the pinned commit (signature and the call they make).
WRAPPERS = '''
def pulid_outer_sample_wrappers_with_override(wrapper_executor, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False, seed=None):
    diffusion_model = None
    try :
        out = wrapper_executor(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed)
    finally:
        pass
    return out

def pulid_outer_sample_wrappers(wrapper_executor, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False, seed=None):
    try:
        out = wrapper_executor(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed)
    finally:
        pass
    return out
'''


def _wrappers_pass_new_keywords(source: str) -> None:
    namespace: dict = {}
    exec(compile(source, "pulidflux.py", "exec"), namespace)
    seen = {}

    def executor(*args, **kwargs):  # ComfyUI's outer_sample, v0.12.1 signature
        seen.update(kwargs)
        return "sampled"

    for name in ("pulid_outer_sample_wrappers_with_override", "pulid_outer_sample_wrappers"):
        seen.clear()
        assert namespace[name](executor, 1, 2, 3, 4, None, None, False, 5, latent_shapes=[(1, 16)]) == "sampled"
        assert seen == {"latent_shapes": [(1, 16)]}


def test_the_wrappers_accept_and_pass_on_latent_shapes() -> None:
    (patch,) = PATCHES
    with pytest.raises(TypeError, match="latent_shapes"):
        _wrappers_pass_new_keywords(WRAPPERS)  # the defect, as ComfyUI v0.12.1 meets it
    patched = apply(patch, WRAPPERS)
    _wrappers_pass_new_keywords(patched)
    assert apply(patch, patched) == patched  # applying again changes nothing


def test_a_changed_node_pack_is_refused_not_half_patched() -> None:
    (patch,) = PATCHES
    one_wrapper = WRAPPERS.split("\n\ndef pulid_outer_sample_wrappers(")[0]
    with pytest.raises(PatchMismatch, match="1 place"):
        apply(patch, one_wrapper)


def test_the_pinned_node_pack_is_patched(tmp_path: Path) -> None:
    git = os.environ.get("PULID_GIT", "/work/.mirror/lldacing+ComfyUI_PuLID_Flux_ll/repo")
    shown = subprocess.run(["git", "--git-dir", git, "show", f"{PULID_COMMIT}:pulidflux.py"],
                           capture_output=True, text=True)
    if shown.returncode != 0:
        pytest.skip(f"needs a git directory of lldacing/ComfyUI_PuLID_Flux_ll (PULID_GIT; {git} is absent)")
    target = tmp_path / "ComfyUI_PuLID_Flux_ll" / "pulidflux.py"
    target.parent.mkdir()
    target.write_text(shown.stdout)
    assert len(apply_all(tmp_path)) == 1
    tree = ast.parse(target.read_text())
    wrappers = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name.startswith("pulid_outer_sample")]
    assert len(wrappers) == 2 and all(f.args.kwarg is not None for f in wrappers)
    assert apply_all(tmp_path) == []  # idempotent on the real file too
