"""The seed control every generating tab shares, and seeds shown as exact text.

A browser reads numbers as doubles, exact only up to 2**53 - 1: a larger seed shown in a
Number or a table comes back rounded and repeats nothing. So a seed is typed, shown and
sent back as text, random seeds are drawn below 2**53, and a typed seed above is refused.
"""

from __future__ import annotations

import secrets
from typing import Any

from ui.studio.fields import Field, first_seed
from ui.studio.history import HistoryItem
from ui.studio.problems import FieldProblem
from workflows.request_models import MAX_EXACT_SEED, RANDOM_SEED_LIMIT

SEED_LABEL = "Seed"
SEED_HELP = "empty: a new random seed each run; a number repeats an image"


def parse_seed(text: Any) -> int | None:
    """The seed a creator typed: None when empty (random)."""
    raw = str(text if text is not None else "").strip().replace(",", "").replace("_", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise FieldProblem("seed", f"a whole number from 0 to {MAX_EXACT_SEED}, or empty for random")
    seed = int(raw)
    if seed > MAX_EXACT_SEED:
        raise FieldProblem("seed", f"at most {MAX_EXACT_SEED} (2^53 − 1): a browser cannot show "
                                   "larger seeds exactly")
    return seed


def seed_text(seed: Any) -> str:
    return "" if seed is None else str(int(seed))


def random_seed() -> int:
    return secrets.randbelow(RANDOM_SEED_LIMIT)


def _restore(item: HistoryItem) -> str:
    return seed_text(first_seed(item))


def seed_field(**kwargs: Any) -> Field:
    """The seed box: text, empty for random, the same in every tab."""
    return Field("seed", "text", label=SEED_LABEL, help=SEED_HELP, value="", cast=parse_seed,
                 restore=_restore, options={"placeholder": "random", "max_lines": 1}, **kwargs)
