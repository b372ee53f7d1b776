"""Compare an answer with a recorded one: same keys and nesting, same values except those
that differ from run to run (ids, times, counters, machine paths)."""

from __future__ import annotations

from typing import Any

# Values that differ between runs or servers: only their JSON type is compared.
VOLATILE_KEYS = frozenset({"prompt_id", "number", "timestamp", "create_time",
                           "filename", "sid", "client_id"})
# Python tracebacks: file paths and line numbers of one server's code, not compared.
IGNORED_KEYS = frozenset({"traceback"})
# Lists that ComfyUI builds from a set, so their order changes between runs (it follows
# PYTHONHASHSEED): `current_outputs` of execution_error (`list(current_outputs)`, a set of
# node ids) and a node's validation `errors` (execution.validate_inputs loops over
# `set(required) | set(optional)`). Compared as multisets: every recorded item matches a
# distinct item of the answer.
UNORDERED_KEYS = frozenset({"current_outputs", "errors"})


def _kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value) if value is None else "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _same_shape(recorded: Any, actual: Any, complete: bool, path: str, volatile: bool) -> bool:
    try:
        assert_same_shape(recorded, actual, complete, path, volatile)
    except AssertionError:
        return False
    return True


def _assert_same_items(recorded: list, actual: list, complete: bool, path: str,
                       volatile: bool) -> None:
    """Each recorded item matches a different item of `actual`, in any order."""
    unmatched = list(range(len(actual)))
    for index, want in enumerate(recorded):
        match = next((i for i in unmatched
                      if _same_shape(want, actual[i], complete, f"{path}[{index}]", volatile)),
                     None)
        assert match is not None, \
            f"{path}: recorded item {want!r:.200} matches none of {[actual[i] for i in unmatched]!r:.300}"
        unmatched.remove(match)


def assert_same_shape(recorded: Any, actual: Any, complete: bool, path: str = "$",
                      volatile: bool = False) -> None:
    """`complete` False: the recording was cut off, so the answer may have more members.
    A list under one of UNORDERED_KEYS may hold its items in any order."""
    assert _kind(actual) == _kind(recorded), \
        f"{path}: recorded {_kind(recorded)} {recorded!r:.80}, got {_kind(actual)} {actual!r:.80}"
    if isinstance(recorded, dict):
        recorded_keys = set(recorded) - IGNORED_KEYS
        actual_keys = set(actual) - IGNORED_KEYS
        missing = recorded_keys - actual_keys
        assert not missing, f"{path}: keys {sorted(missing)} missing (got {sorted(actual_keys)})"
        if complete:
            extra = actual_keys - recorded_keys
            assert not extra, f"{path}: keys {sorted(extra)} not in the recording"
        for key in recorded_keys:
            assert_same_shape(recorded[key], actual[key], complete, f"{path}.{key}",
                              key in VOLATILE_KEYS)
    elif isinstance(recorded, list):
        if complete:
            assert len(actual) == len(recorded), \
                f"{path}: {len(recorded)} items recorded, got {len(actual)}: {actual!r:.200}"
        else:
            assert len(actual) >= len(recorded), f"{path}: fewer items than recorded"
        if path.rsplit(".", 1)[-1] in UNORDERED_KEYS:
            _assert_same_items(recorded, actual, complete, path, volatile)
            return
        for index, (want, got) in enumerate(zip(recorded, actual)):
            assert_same_shape(want, got, complete, f"{path}[{index}]", volatile)
    elif not volatile:
        assert actual == recorded, f"{path}: recorded {recorded!r}, got {actual!r}"
