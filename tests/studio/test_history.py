"""ui.studio.history: items survive a restart, newest first, files beside their JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ui.studio.history import ITEM_FILE, History, default_data_dir


def test_item_survives_a_restart(tmp_path: Path) -> None:
    first = History(tmp_path)
    item = first.add("flux", {"prompt": "a fox", "steps": 4}, images=[(b"abc", "png")],
                     outputs=[{"seed": 7, "timings": {"total_ms": 12.0}}])
    reopened = History(tmp_path)  # a new process would do exactly this
    again = reopened.get(item.id)
    assert again.params == {"prompt": "a fox", "steps": 4}
    assert again.outputs == [{"seed": 7, "timings": {"total_ms": 12.0}}]
    assert [p.read_bytes() for p in again.paths()] == [b"abc"]


def test_items_are_newest_first_and_limited(tmp_path: Path) -> None:
    history = History(tmp_path)
    ids = [history.add("flux", {"n": n}).id for n in range(3)]
    listed = history.items()
    assert [i.id for i in listed] == list(reversed(ids))
    assert [i.params["n"] for i in history.items(limit=2)] == [2, 1]


def test_create_then_update_keeps_files_written_by_others(tmp_path: Path) -> None:
    history = History(tmp_path)
    item = history.create("sheet", {"method": "both"})
    assert item.folder is not None
    (item.folder / "01-instantid-front.png").write_bytes(b"x")
    item.files.append("01-instantid-front.png")
    item.summary = {"mean_similarity": 81.5}
    history.update(item)
    again = History(tmp_path).get(item.id)
    assert again.files == ["01-instantid-front.png"]
    assert again.summary["mean_similarity"] == 81.5


def test_reference_is_stored_beside_the_outputs(tmp_path: Path) -> None:
    item = History(tmp_path).add("review", {}, images=[(b"1", "jpg")], reference=(b"ref", ".jpg"))
    assert item.reference_path() is not None
    assert item.reference_path().read_bytes() == b"ref"


def test_damaged_item_does_not_hide_the_others(tmp_path: Path) -> None:
    history = History(tmp_path)
    good = history.add("flux", {"prompt": "ok"})
    bad = history.add("flux", {"prompt": "will break"})
    assert bad.folder is not None
    (bad.folder / ITEM_FILE).write_text("{not json")
    assert [i.id for i in history.items()] == [good.id]


def test_get_refuses_paths_outside_the_history(tmp_path: Path) -> None:
    history = History(tmp_path / "data")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / ITEM_FILE).write_text(json.dumps({"id": "x", "kind": "flux", "created": "", "params": {}}))
    with pytest.raises(KeyError):
        history.get("../../elsewhere")


@pytest.mark.parametrize("item_id", ["x" * 5000, "20260130-101500-123456-zzzzzz", "", "."])
def test_long_or_unknown_ids_are_not_found(tmp_path: Path, item_id: str) -> None:
    history = History(tmp_path / "data")
    history.add("flux", {})
    with pytest.raises(KeyError):  # was OSError: File name too long
        history.get(item_id)


def test_created_ids_are_found(tmp_path: Path) -> None:
    history = History(tmp_path / "data")
    item = history.add("flux", {})
    assert history.get(item.id).id == item.id


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown history kind"):
        History(tmp_path).add("video", {})


def test_default_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RYLA_STUDIO_DATA", str(tmp_path / "custom"))
    assert default_data_dir() == tmp_path / "custom"
    monkeypatch.delenv("RYLA_STUDIO_DATA")
    assert default_data_dir() == Path.home() / ".ryla"
