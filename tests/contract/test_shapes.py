"""assert_same_shape: lists ComfyUI builds from a set are compared in any order, others in order."""

from __future__ import annotations

import pytest

from tests.contract.shapes import assert_same_shape


def test_current_outputs_and_node_errors_match_in_any_order() -> None:
    recorded = {"current_outputs": ["1", "2"],
                "errors": [{"details": "clip_name2"}, {"details": "clip_name1"}]}
    actual = {"current_outputs": ["2", "1"],
              "errors": [{"details": "clip_name1"}, {"details": "clip_name2"}]}
    assert_same_shape(recorded, actual, complete=True)


@pytest.mark.parametrize("actual", [
    {"current_outputs": ["2", "3"], "errors": []},   # another item
    {"current_outputs": ["1", "1"], "errors": []},   # one recorded item matched twice
    {"current_outputs": ["1"], "errors": []},        # one missing
])
def test_unordered_lists_still_need_the_same_items(actual: dict) -> None:
    with pytest.raises(AssertionError):
        assert_same_shape({"current_outputs": ["1", "2"], "errors": []}, actual, complete=True)


def test_other_lists_keep_their_order() -> None:
    with pytest.raises(AssertionError):
        assert_same_shape({"executed": ["1", "2"]}, {"executed": ["2", "1"]}, complete=True)
