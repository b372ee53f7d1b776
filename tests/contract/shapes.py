"""Compare an answer with a recorded one: same keys and nesting, same values except those
that differ from run to run (ids, times, counters, machine paths)."""

from __future__ import annotations

from typing import Any

# Values that differ between runs or servers: only their JSON type is compared.
VOLATILE_KEYS = frozenset({"prompt_id", "number", "timestamp", "create_time", "abs_path",
                           "filename", "sid", "client_id"})
# Present in one distribution only (README.md): not compared at all.
IGNORED_KEYS = frozenset({"traceback"})


def _kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value) if value is None else "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def assert_same_shape(recorded: Any, actual: Any, complete: bool, path: str = "$",
                      volatile: bool = False) -> None:
    """`complete` False: the recording was cut off, so the answer may have more members."""
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
        for index, (want, got) in enumerate(zip(recorded, actual)):
            assert_same_shape(want, got, complete, f"{path}[{index}]", volatile)
    elif not volatile:
        assert actual == recorded, f"{path}: recorded {recorded!r}, got {actual!r}"
