"""Prompt sets shared by the CLI and the studio.

- `SEED_PROMPTS`: the ten prompts of the original Flux Dev success-rate script, so that
  `ryla success-rate` measures what that script measured.
- `SHEET_VARIATIONS`: a character sheet's poses, camera angles and expressions. With
  InstantID / PuLID the identity comes from the reference image, so these prompts
  describe only framing, pose and expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SEED_PROMPTS: tuple[str, ...] = (
    "A beautiful landscape with mountains",
    "A portrait of a person",
    "A futuristic city at night",
    "A cat sitting on a windowsill",
    "An abstract art piece",
    "A vintage car on a country road",
    "A space station in orbit",
    "A cozy coffee shop interior",
    "A beach at sunset",
    "A forest path in autumn",
)

VariationKind = Literal["angle", "pose", "expression"]


@dataclass(frozen=True)
class SheetVariation:
    name: str  # short, file-name safe: used in saved file names and report rows
    kind: VariationKind
    prompt: str


# One look for every panel (plain studio, soft light) so that what varies is the
# angle, pose or expression, which is what a face-consistency score should be about.
_STYLE = "photo of the same person, plain light grey studio background, soft even light, sharp focus"

SHEET_VARIATIONS: tuple[SheetVariation, ...] = (
    SheetVariation("front", "angle", f"front view head-and-shoulders portrait, looking at the camera, {_STYLE}"),
    SheetVariation("three-quarter-left", "angle", f"three-quarter view portrait, head turned slightly to the left, {_STYLE}"),
    SheetVariation("three-quarter-right", "angle", f"three-quarter view portrait, head turned slightly to the right, {_STYLE}"),
    SheetVariation("profile", "angle", f"side profile portrait, facing right, {_STYLE}"),
    SheetVariation("full-body", "pose", f"full body standing pose, arms relaxed at the sides, {_STYLE}"),
    SheetVariation("sitting", "pose", f"sitting on a stool, hands on the knees, medium shot, {_STYLE}"),
    SheetVariation("smiling", "expression", f"close-up portrait, warm open smile, {_STYLE}"),
    SheetVariation("serious", "expression", f"close-up portrait, serious neutral expression, {_STYLE}"),
    SheetVariation("surprised", "expression", f"close-up portrait, surprised expression, eyebrows raised, {_STYLE}"),
    SheetVariation("laughing", "expression", f"close-up portrait, laughing, eyes slightly narrowed, {_STYLE}"),
)

class PromptFileError(ValueError):
    """A prompts file that cannot be used; the message says which file and why."""


def load_prompt_file(path: Path) -> list[str]:
    """One prompt per line; blank lines and lines starting with '#' are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptFileError(f"cannot read prompts file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PromptFileError(f"prompts file {path} is not UTF-8 text: {exc.reason}") from exc
    prompts = [line.strip() for line in text.splitlines()]
    prompts = [line for line in prompts if line and not line.startswith("#")]
    if not prompts:
        raise PromptFileError(f"prompts file {path} holds no prompts (one per line; '#' starts a comment)")
    return prompts
