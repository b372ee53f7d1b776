"""Source fixes applied to the pinned node packs when the image is built.

ComfyUI_PuLID_Flux_ll (ba90657) wraps ComfyUI's `CFGGuider.outer_sample` with functions
whose parameter list stops at `seed`; ComfyUI v0.12.1 calls the wrapper with one more
keyword, `latent_shapes`, so every PuLID job fails in KSampler with "unexpected keyword
argument 'latent_shapes'" (found on the GPU rehearsal; the CPU contract tests never
sample). The fix passes any further keyword arguments through, unchanged, so it also
holds for the next parameter ComfyUI adds.

    python -m backend.nodepack_patches CUSTOM_NODES_DIR     (idempotent; exits 1 if a patch
                                                             no longer matches its file)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourcePatch:
    path: str  # relative to the custom_nodes directory
    why: str
    pattern: re.Pattern[str]
    replacement: str
    expected: int  # how many places must match on the pinned commit
    applied_marker: str  # appears `expected` times once the patch is in


PATCHES = (
    SourcePatch(
        "ComfyUI_PuLID_Flux_ll/pulidflux.py",
        "outer_sample wrappers accept and pass on keywords added after `seed` (latent_shapes)",
        re.compile(r"(def pulid_outer_sample_wrappers\w*\(wrapper_executor, noise, latent_image, sampler, "
                   r"sigmas, denoise_mask=None, callback=None, disable_pbar=False, seed=None)\):"
                   r"(.*?wrapper_executor\(noise, latent_image, sampler, sigmas, denoise_mask, callback, "
                   r"disable_pbar, seed)\)", re.S),
        r"\1, **kwargs):\2, **kwargs)",
        expected=2,
        applied_marker="disable_pbar, seed, **kwargs)",
    ),
)


class PatchMismatch(RuntimeError):
    pass


def apply(patch: SourcePatch, source: str) -> str:
    patched, count = patch.pattern.subn(patch.replacement, source)
    if count == patch.expected:
        return patched
    if count == 0 and source.count(patch.applied_marker) == patch.expected:
        return source  # applied before
    raise PatchMismatch(f"{patch.path}: {count} place(s) match where {patch.expected} were expected; "
                        f"the node pack changed, re-check the fix ({patch.why})")


def apply_all(custom_nodes: Path) -> list[str]:
    done = []
    for patch in PATCHES:
        path = custom_nodes / patch.path
        source = path.read_text(encoding="utf-8")
        patched = apply(patch, source)
        if patched != source:
            path.write_text(patched, encoding="utf-8")
            done.append(f"{patch.path}: {patch.why}")
    return done


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print(__doc__)
        return 2
    try:
        for line in apply_all(Path(args[0])):
            print("patched", line)
    except PatchMismatch as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
