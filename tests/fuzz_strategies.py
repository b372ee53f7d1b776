"""Hypothesis strategies for JSON-ish input: what a client can put in a request body,
including what well-behaved clients never send (NaN, infinities, lone surrogates, huge
numbers, deep nesting), and ComfyUI API-format graphs that are nearly right."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from workflows.object_info import load_object_info

# Every character, lone UTF-16 surrogates included (JSON's \ud800 escapes decode to them).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | ANY_TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4),
    max_leaves=12)

NODE_CLASSES = ("SaveImage", "EmptyImage", "ImageInvert", "KSampler", "CheckpointLoaderSimple",
                "LoadImage", "CLIPTextEncode", "VAEDecode", "EmptyLatentImage")
_INFO = load_object_info()
INPUT_NAMES = sorted({name for c in NODE_CLASSES for kind in ("required", "optional")
                      for name in (_INFO[c]["input"].get(kind) or {})})
NODE_IDS = st.sampled_from(["1", "2", "3", "4", "5"])


def _links() -> st.SearchStrategy[Any]:
    source = NODE_IDS | JSON_VALUES
    index = st.integers(min_value=-1, max_value=3) | JSON_VALUES
    return st.tuples(source, index).map(list) | st.lists(NODE_IDS | JSON_VALUES, max_size=3)


NODES = st.fixed_dictionaries(
    {"class_type": st.sampled_from(NODE_CLASSES) | JSON_VALUES},
    optional={
        "inputs": st.dictionaries(st.sampled_from(INPUT_NAMES) | ANY_TEXT,
                                  _links() | JSON_VALUES | st.sampled_from([8, 64, 1.5, "x"]),
                                  max_size=6) | JSON_VALUES,
        "_meta": st.fixed_dictionaries({}, optional={"title": JSON_VALUES}) | JSON_VALUES,
    }) | JSON_VALUES
GRAPHS = st.dictionaries(NODE_IDS | ANY_TEXT, NODES, max_size=6)


def body_text(value: Any) -> bytes:
    """JSON text as a careless client might send it: NaN literals, \\ud800 escapes."""
    return json.dumps(value, allow_nan=True, ensure_ascii=True).encode("ascii")
