"""ryla-studio's command line: defaults, the --share password rule, and a share link
that cannot be opened leaving the studio running locally."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.builders import free_port
from tests.studio.conftest import REPO_ROOT, closed_port_url
from ui.studio.app import DEFAULT_USER, parse_args, resolve_auth
from ui.studio.login_limit import FREE_FAILURES


def test_defaults_match_the_spec() -> None:
    args = parse_args([])
    assert (args.host, args.port, args.share, args.auth) == ("127.0.0.1", 7860, False, None)


def test_share_without_a_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RYLA_STUDIO_PASSWORD", raising=False)
    with pytest.raises(SystemExit, match="RYLA_STUDIO_PASSWORD"):
        resolve_auth(None, share=True)


def test_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RYLA_STUDIO_PASSWORD", "s3cret-pass")
    assert resolve_auth(None, share=True) == (DEFAULT_USER, "s3cret-pass")


def test_a_share_password_has_at_least_8_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RYLA_STUDIO_PASSWORD", "x")
    with pytest.raises(SystemExit, match="at least 8"):
        resolve_auth(None, share=True)
    with pytest.raises(SystemExit, match="at least 8"):
        resolve_auth("maya:1234567", share=True)
    assert resolve_auth("maya:12345678", share=True) == ("maya", "12345678")


def test_auth_flag_wins_and_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RYLA_STUDIO_PASSWORD", "from-env")
    assert resolve_auth("maya:pw:with:colons", share=True) == ("maya", "pw:with:colons")
    for bad in ("nopassword", "user:", ":pw"):
        with pytest.raises(SystemExit, match="user:password"):
            resolve_auth(bad, share=False)


def test_no_password_and_no_share_means_open_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RYLA_STUDIO_PASSWORD", raising=False)
    assert resolve_auth(None, share=False) is None


def test_share_that_cannot_open_keeps_the_studio_running(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("RYLA_STUDIO_PASSWORD", None)
    log = tmp_path / "studio.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ui.studio.app", "--share", "--auth", "maya:password1", "--port", str(port),
             "--backend-url", closed_port_url(), "--data-dir", str(tmp_path / "data")],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        text = ""
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text()
            if "keeps running locally" in text or "Running on public URL" in text:
                break
            time.sleep(0.5)
        assert proc.poll() is None, f"studio exited:\n{text}"
        if "Running on public URL" not in text:
            # No network here: the studio says so and goes on serving on loopback.
            assert f"keeps running locally at http://127.0.0.1:{port}" in text
        # Gradio's own hint contradicts --share: the studio keeps it quiet.
        assert "share=True" not in text
        # The password applies: the app config is closed without a login, open with it.
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/config", timeout=10).status_code == 401
        # Before login the page names no endpoint (Gradio embeds them all by default).
        page = requests.get(f"{base}/", timeout=10)
        assert page.status_code == 200 and "window.gradio_api_info = {};" in page.text
        assert "generate_flux" not in page.text
        with requests.Session() as session:
            login = session.post(f"{base}/login", data={"username": "maya", "password": "password1"},
                                 timeout=10)
            assert login.status_code == 200
            assert session.get(f"{base}/config", timeout=10).status_code == 200
            assert "generate_flux" in session.get(f"{base}/", timeout=10).text
            # Only the history is served, not the rest of the data folder.
            (tmp_path / "data").mkdir(exist_ok=True)
            secret = tmp_path / "data" / "not-shown.txt"
            secret.write_text("private")
            shown = tmp_path / "data" / "history" / "shown.txt"
            shown.parent.mkdir(exist_ok=True)
            shown.write_text("history")
            assert session.get(f"{base}/gradio_api/file={secret}", timeout=10).status_code != 200
            assert session.get(f"{base}/gradio_api/file={shown}", timeout=10).text == "history"
        # Failed logins are rate-limited: after FREE_FAILURES wrong passwords even the
        # right one is refused for a while.
        for _ in range(FREE_FAILURES):
            wrong = requests.post(f"{base}/login", data={"username": "maya", "password": "guess"},
                                  timeout=10)
            assert wrong.status_code == 400
        locked = requests.post(f"{base}/login", data={"username": "maya", "password": "password1"},
                               timeout=10)
        assert locked.status_code == 429
        assert locked.json()["detail"].startswith("too many attempts, try again in ")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
