"""The documented distance -> percent mapping: anchors, monotonic, clamped."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ui.face.consistency import DEFAULT_THRESHOLD, SIMILARITY_ANCHORS, similarity_percent


def test_anchors_map_to_their_stated_percent() -> None:
    for distance, percent in SIMILARITY_ANCHORS:
        assert similarity_percent(distance) == pytest.approx(percent)


def test_threshold_maps_to_75_percent() -> None:
    assert similarity_percent(DEFAULT_THRESHOLD) == pytest.approx(75.0)


@pytest.mark.parametrize("distance", [0.38, 0.40, 0.43])
def test_measured_same_person_range_is_85_to_90_percent(distance: float) -> None:
    assert 85.0 <= similarity_percent(distance) <= 90.0


@pytest.mark.parametrize("distance", [0.76, 0.85])
def test_measured_different_people_range_is_below_50_percent(distance: float) -> None:
    assert similarity_percent(distance) < 50.0


def test_strictly_decreasing_up_to_one_then_zero() -> None:
    grid = np.linspace(0.0, 1.0, 201)
    values = [similarity_percent(float(d)) for d in grid]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert similarity_percent(1.3) == 0.0
    assert similarity_percent(0.0) == 100.0


@pytest.mark.parametrize("bad", [-0.1, math.nan])
def test_rejects_impossible_distances(bad: float) -> None:
    with pytest.raises(ValueError, match="distance"):
        similarity_percent(bad)
