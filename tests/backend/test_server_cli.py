"""`ryla-backend`'s command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.server import main, parse_args, settings_from_args
from backend.settings import Settings


def test_help_exits_zero_and_names_the_flags(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--comfyui-url"):
        assert flag in out


def test_defaults_and_flags(monkeypatch):
    monkeypatch.delenv("RYLA_COMFYUI_URL", raising=False)
    args = parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    assert settings_from_args(args).comfyui_url == "http://127.0.0.1:8188"
    args = parse_args(["--comfyui-url", "http://gpu:9000", "--models-dir", "/m", "--port", "9001"])
    settings = settings_from_args(args)
    assert settings.comfyui_url == "http://gpu:9000"
    assert settings.lora_dir == Path("/m/loras")


def test_settings_from_env():
    settings = Settings.from_env({"RYLA_API_TOKEN": "t", "RYLA_DEADLINE_S": "12.5",
                                  "POSTHOG_API_KEY": "k", "RYLA_MODELS_DIR": "/models"})
    assert settings.api_token == "t" and settings.deadline_s == 12.5
    assert settings.lora_dir == Path("/models/loras") and settings.posthog_api_key == "k"
    with pytest.raises(ValueError, match="RYLA_DEADLINE_S"):
        Settings.from_env({"RYLA_DEADLINE_S": "soon"})


def test_fast_mode_compiles_unless_the_deployment_turns_it_off():
    assert Settings.from_env({}).fast_mode_compile is True
    assert Settings.from_env({"RYLA_FAST_MODE_COMPILE": "1"}).fast_mode_compile is True
    for off in ("0", "false", " OFF ", "no"):
        assert Settings.from_env({"RYLA_FAST_MODE_COMPILE": off}).fast_mode_compile is False, off


def test_every_limit_is_settable_from_the_environment():
    settings = Settings.from_env({"RYLA_MAX_LORA_BYTES": "1048576", "RYLA_MAX_IMAGE_PIXELS": "4000000",
                                  "RYLA_MAX_BODY_BYTES": "2048", "RYLA_RETENTION_DAYS": "7"})
    assert (settings.max_lora_bytes, settings.max_image_pixels) == (1048576, 4_000_000)
    assert (settings.max_body_bytes, settings.retention_days) == (2048, 7.0)
    with pytest.raises(ValueError, match="RYLA_RETENTION_DAYS"):
        Settings.from_env({"RYLA_RETENTION_DAYS": "0"})


def test_settings_built_directly_read_no_environment(monkeypatch):
    monkeypatch.setenv("RYLA_API_TOKEN", "from-the-shell")
    monkeypatch.setenv("RYLA_DEADLINE_S", "5")
    assert Settings().api_token is None and Settings().deadline_s == 600.0
    assert Settings.from_env().api_token == "from-the-shell"  # from_env reads os.environ
    assert Settings.from_env({}).api_token is None  # ... or only the mapping it is given
    assert Settings.from_env({}, deadline_s=9.0).deadline_s == 9.0  # flags win
