"""Every tab's main action through gradio_client, against ryla-backend over the ComfyUI
test double (or no backend at all, for Review and the error paths)."""

from __future__ import annotations

import re
from pathlib import Path

from gradio_client import Client, handle_file
from PIL import Image

from tests.studio.conftest import Studio, running_studio, write_safetensors
from ui.studio.app import build_app
from ui.studio.history_tab import HistoryTab
from ui.studio.status import backend_status
from ui.studio.history import History


def client_for(studio: Studio) -> Client:
    return Client(studio.url, verbose=False)


def rows(table: dict) -> list[list]:
    return table["data"]


def test_every_main_action_has_an_api_name(studio: Studio) -> None:
    names = set(client_for(studio).view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/generate_flux", "/generate_sheet", "/list_loras", "/upload_lora", "/generate_lora",
            "/review", "/list_history", "/reuse_settings"} <= names


def test_flux_dev_batch_with_fixed_seed(studio: Studio) -> None:
    gallery, details, last_seed = client_for(studio).predict(
        "a red fox in snow", "blurry", "512×512 draft", 4, 3.5, "1234", "Dev", 2,
        api_name="/generate_flux")[:3]
    # A fixed seed gives image i the seed seed + i, and each caption says which; seeds are
    # text, which a browser cannot round.
    assert [row[1] for row in rows(details)] == ["1234", "1235"]
    assert last_seed == "1235"
    assert [g["caption"].split(" · ")[0] for g in gallery] == ["seed 1234", "seed 1235"]
    for entry in gallery:
        with Image.open(entry["image"]) as img:
            assert img.size == (512, 512)
    assert all("round trip" in row[2] for row in rows(details))
    item = studio.history.items()[0]
    assert item.kind == "flux" and item.params["prompt"] == "a red fox in snow"
    assert [o["seed"] for o in item.outputs] == [1234, 1235]
    assert all(p.is_file() for p in item.paths())


def test_same_seed_same_image_different_seed_different_image(studio: Studio) -> None:
    client = client_for(studio)
    args = ("a lighthouse", "", "512×512 draft", 4, 3.5)
    first = client.predict(*args, "77", "Dev", 1, api_name="/generate_flux")[0][0]["image"]
    again = client.predict(*args, "77", "Dev", 1, api_name="/generate_flux")[0][0]["image"]
    other = client.predict(*args, "78", "Dev", 1, api_name="/generate_flux")[0][0]["image"]
    assert Path(first).read_bytes() == Path(again).read_bytes()
    assert Path(first).read_bytes() != Path(other).read_bytes()


def test_random_seed_is_reported_and_reusable(studio: Studio) -> None:
    client = client_for(studio)
    _, details, last_seed = client.predict("a boat", "", "512×512 draft", 4, 0, "",
                                           "Schnell", 1, api_name="/generate_flux")[:3]
    assert last_seed == rows(details)[0][1]
    assert int(last_seed) < 2**53  # a random seed a browser shows exactly
    assert client.predict(last_seed, api_name="/reuse_seed") == last_seed


def test_character_sheet_both_methods_same_prompts_and_seeds(studio: Studio, faces: Path) -> None:
    prompts = "front view portrait\nsmiling close-up\nprofile view"
    reference, gallery, summary, table = client_for(studio).predict(
        handle_file(str(faces / "obama_1.jpg")), "Both (compare)", 0.8, 0.8, prompts,
        "512×512 draft", 8, "99", 0.6, api_name="/generate_sheet")[:4]
    assert Path(reference).read_bytes() == (faces / "obama_1.jpg").read_bytes()
    labels = [row[1] for row in rows(table)]
    assert labels == [f"{m} · {n}" for m in ("instantid", "pulid")
                      for n in ("front-view-portrait", "smiling-close-up", "profile-view")]
    assert {row[2] for row in rows(table)} == {"99"}
    assert len(gallery) == 6
    # The double pastes the reference into identity-graph outputs (as InstantID/PuLID keep
    # the face): every output passes, with its similarity in the table and the caption.
    assert all(row[5] == "✔ PASS" for row in rows(table))
    assert all(isinstance(row[4], float) and row[4] > 75 for row in rows(table))
    assert all(re.match(r"✔ PASS \d+\.\d%", g["caption"]) for g in gallery)
    assert "6 images" in summary and "pass 6/6 (**100%**)" in summary
    assert "no face" not in summary
    assert "InstantID (SDXL)" in summary and "PuLID (Flux)" in summary
    item = studio.history.items()[0]
    assert item.kind == "sheet" and len(item.files) == 6
    assert item.summary["count"] == 6 and item.summary["report_files"]


def test_sheet_without_reference_is_a_clear_error(studio: Studio) -> None:
    out = client_for(studio).predict(None, "PuLID (Flux)", 0.8, 0.8, "a", "512×512 draft", 4, "1",
                                     0.6, api_name="/generate_sheet")
    assert "Check the marked settings" in out[4]


def test_lora_upload_list_and_generate(backend_server, tmp_path: Path) -> None:
    with running_studio(backend_server.url, tmp_path / "data") as studio:
        client = client_for(studio)
        table, choice, trigger = client.predict(api_name="/list_loras")
        assert rows(table) == []
        lora = write_safetensors(tmp_path / "maya.safetensors")
        message, table, choice, trigger = client.predict(
            handle_file(str(lora)), "maya", "mayax", api_name="/upload_lora")
        assert "maya" in message
        assert rows(table) == [["maya", "mayax"]]
        assert trigger == "mayax"
        gallery, details = client.predict("maya", "mayax", 0.6, "portrait in a garden",
                                          "512×512 draft", 4, 3.5, "5", 1,
                                          api_name="/generate_lora")[:2]
        assert len(gallery) == 1 and rows(details)[0][1] == "5"
        item = studio.history.items()[0]
        assert item.kind == "lora"
        assert (item.params["lora_id"], item.params["lora_strength"]) == ("maya", 0.6)


def test_unknown_lora_shows_the_backends_message(studio: Studio) -> None:
    notice = client_for(studio).predict("nobody", "", 0.8, "x", "512×512 draft", 4, 3.5, "1", 1,
                                        api_name="/generate_lora")[2]
    assert "nobody" in notice and "Traceback" not in notice
    assert "“Refresh list”" in notice and "GET /loras" not in notice


def test_comfyui_failure_shows_its_message(backend_server, tmp_path: Path) -> None:
    backend_server.double.fail_next("CUDA out of memory (from the double)")
    with running_studio(backend_server.url, tmp_path / "data") as studio:
        notice = client_for(studio).predict("a cat", "", "512×512 draft", 4, 3.5, "1", "Dev", 1,
                                            api_name="/generate_flux")[3]
    assert "CUDA out of memory" in notice and "Traceback" not in notice


def test_z_image_turbo_choice_runs_z_image_and_its_settings_come_back(
        studio: Studio, backend_server_session) -> None:
    client = client_for(studio)
    # The guidance slider's value (3.5) is not sent: Z-Image-Turbo has no guidance field.
    gallery, details, last_seed = client.predict(
        "a lighthouse, quick draft", "fog", "512×512 draft", 8, 3.5, "73150", "Z-Image Turbo", 2,
        api_name="/generate_flux")[:3]
    assert [row[1] for row in rows(details)] == ["73150", "73151"] and last_seed == "73151"
    for seed in (73150, 73151):
        (job,) = [j for j in backend_server_session.double.jobs  # the double is shared: match both
                  if any(n["inputs"].get("seed") == seed for n in j.graph.values())
                  and any(n["inputs"].get("text") == "a lighthouse, quick draft" for n in j.graph.values())]
        classes = {n["class_type"]: n["inputs"] for n in job.graph.values()}
        assert classes["UNETLoader"]["unet_name"] == "z_image_turbo_bf16.safetensors"
        assert classes["KSampler"]["steps"] == 8 and classes["KSampler"]["cfg"] == 1.0
    item = studio.history.items()[0]
    assert (item.kind, item.params["model"], item.params["steps"]) == ("flux", "Z-Image Turbo", 8)
    assert [o["seed"] for o in item.outputs] == [73150, 73151]
    restored = client.predict(item.id, api_name="/reuse_settings")
    prompt, negative, size, steps, guidance, seed, model, batch = restored[:8]
    assert (prompt, negative, size, steps, seed, model, batch) == (
        "a lighthouse, quick draft", "fog", "512×512 draft", 8, "73150", "Z-Image Turbo", 2)


def test_z_image_turbo_steps_beyond_its_range_are_named(studio: Studio) -> None:
    out = client_for(studio).predict("a cat", "", "512×512 draft", 60, 3.5, "1", "Z-Image Turbo", 1,
                                     api_name="/generate_flux")
    assert "Check the marked settings" in out[3]


def test_model_choice_sets_its_defaults_and_disables_what_it_lacks(studio: Studio) -> None:
    from ui.studio.flux_tab import FluxTab

    tab = FluxTab(studio.client, studio.history)
    steps, guidance = tab.sampling_defaults("Z-Image Turbo")
    assert (steps["value"], steps["interactive"], guidance["interactive"]) == (8, True, False)
    assert "value" not in guidance  # the slider keeps its value; it is not sent
    steps, guidance = tab.sampling_defaults("Schnell")
    assert (steps["value"], guidance["value"], guidance["interactive"]) == (4, 0.0, False)
    # A model restored from history only enables or disables sliders: values stay.
    # Mode (standard/fast) is a Flux choice: Z-Image Turbo has no such field.
    assert [u.get("value", "kept") for u in tab.slider_states("Z-Image Turbo")] == ["kept"] * 3
    assert [u["interactive"] for u in tab.slider_states("Z-Image Turbo")] == [True, False, False]
    assert [u["interactive"] for u in tab.slider_states("Dev")] == [True, True, True]
    # Schnell takes a guidance field but does nothing with it: disabled too.
    assert [u["interactive"] for u in tab.slider_states("Schnell")] == [True, False, False]


def test_invalid_settings_are_named(studio: Studio) -> None:
    out = client_for(studio).predict("   ", "", "512×512 draft", 4, 3.5, "1", "Dev", 1,
                                     api_name="/generate_flux")
    assert "Check the marked settings" in out[3]


def test_unreachable_backend_is_a_gradio_error(offline_studio: Studio) -> None:
    notice = client_for(offline_studio).predict("a cat", "", "512×512 draft", 4, 3.5, "1", "Dev",
                                                1, api_name="/generate_flux")[3]
    assert "cannot be reached" in notice and "Traceback" not in notice


def test_status_line_says_whether_the_backend_answers(studio: Studio, offline_studio: Studio) -> None:
    up = backend_status(studio.client)
    down = backend_status(offline_studio.client)
    assert "Backend ok" in up and studio.client.base_url in up
    assert "Backend unreachable" in down and "Review and History still work" in down


def test_review_works_without_a_backend(offline_studio: Studio, faces: Path) -> None:
    reference, gallery, summary, table, report = client_for(offline_studio).predict(
        handle_file(str(faces / "obama_1.jpg")),
        [handle_file(str(faces / "obama_2.jpg")), handle_file(str(faces / "biden_1.jpg"))],
        0.6, api_name="/review")[:5]
    verdicts = {row[1]: row[5] for row in rows(table)}
    assert verdicts == {"obama_2.jpg": "✔ PASS", "biden_1.jpg": "✘ FAIL"}
    same, other = (next(r for r in rows(table) if r[1] == name) for name in ("obama_2.jpg", "biden_1.jpg"))
    assert same[3] < 0.6 < other[3]
    assert gallery[0]["caption"].startswith("✔ PASS")
    assert "pass 1/2 (**50%**)" in summary
    assert sorted(Path(p).suffix for p in report) == [".csv", ".json", ".png"]
    assert Path(reference).is_file()


def test_history_survives_a_restart_and_settings_come_back(studio: Studio, backend_server_session) -> None:
    client = client_for(studio)
    client.predict("a snowy cabin", "people", "832×1216 portrait", 6, 2.5, "4242", "Dev", 1, "fast",
                   api_name="/generate_flux")
    item_id = studio.history.items()[0].id
    # the mode reached ComfyUI: the model in fp8, compiled
    job = [j for j in backend_server_session.double.jobs  # the double is shared: match both
           if any(n["inputs"].get("seed") == 4242 for n in j.graph.values())
           and any(n["inputs"].get("text") == "a snowy cabin" for n in j.graph.values())][-1]
    assert {n["class_type"] for n in job.graph.values()} >= {"TorchCompileModel"}
    # A restart: a new app over the same data folder lists the item and restores its settings.
    restarted = HistoryTab(History(studio.history.root))
    table, _ = restarted.list_history()
    assert table[0][0] == item_id and table[0][3] == "a snowy cabin"
    gallery, params = restarted.show_history_item(item_id)
    assert params["params"]["steps"] == 6 and params["outputs"][0]["seed"] == 4242
    assert len(gallery) == 1
    restored = client.predict(item_id, api_name="/reuse_settings")
    # The Tabs output is layout, not data: the API returns the 27 fields only.
    assert len(restored) == 27
    prompt, negative, size, steps, guidance, seed, model, batch, mode = restored[:9]
    assert (prompt, negative, size, steps, guidance, seed, model, batch, mode) == (
        "a snowy cabin", "people", "832×1216 portrait", 6, 2.5, "4242", "Dev", 1, "fast")


def test_build_app_does_not_need_a_backend(tmp_path: Path) -> None:
    from ui.client import RylaClient

    app = build_app(RylaClient("http://127.0.0.1:9"), History(tmp_path))
    api_names = {fn.api_name for fn in app.fns.values() if fn.api_name}
    assert "review" in api_names and "generate_flux" in api_names


def test_a_missing_model_is_named_with_the_operators_commands_behind_an_expander(
        backend_server, tmp_path: Path) -> None:
    backend_server.double.set_installed({})  # no model files at all
    with running_studio(backend_server.url, tmp_path / "data") as studio:
        out = client_for(studio).predict("a cat", "", "512×512 draft", 4, 3.5, "1", "Dev", 1,
                                         api_name="/generate_flux")
        status = backend_status(studio.client)
    notice, details = out[3], out[4]  # the expander is layout: the API leaves it out
    assert "A model is not installed" in notice and "operator must install" in notice
    assert "flux1-dev" in notice and "hf download" not in notice
    assert "hf download" in details  # the commands, for the operator, in the expander
    assert "models missing" in status and "flux-dev" in status.split("models missing")[1]
