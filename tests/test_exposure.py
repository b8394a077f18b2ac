"""The chat binds to loopback; anywhere else it demands a password from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.chainlit_app import app_root as make_app_root
from tests.conftest import free_port
from ui.exposure import PASSWORD_ENV, USERNAME_ENV, Access, ExposureError, access_for, is_loopback

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_login(host: str) -> None:
    assert is_loopback(host) and access_for(host, {}).mode == "local"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "gpu-box.lan"])
def test_any_other_address_needs_a_password(host: str) -> None:
    with pytest.raises(ExposureError, match=f"{PASSWORD_ENV} is not set"):
        access_for(host, {})
    with pytest.raises(ExposureError, match="shorter than 12 characters"):
        access_for(host, {PASSWORD_ENV: "hunter2"})
    access = access_for(host, {PASSWORD_ENV: PASSWORD, USERNAME_ENV: "ana"})
    assert access.check("ana", PASSWORD)
    assert not access.check("ana", PASSWORD + "x") and not access.check("bob", PASSWORD)
    assert not Access("local").check("", "")  # the local mode has no password to guess


def _chainlit(root: Path, env: dict[str, str], port: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "chainlit", "run", str(ROOT / "ui" / "app.py"), "--headless"]
    cmd += ["--host", "0.0.0.0", "--port", str(port)]
    return subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture
def app_env(tmp_path: Path) -> dict[str, str]:
    # CI=true would turn on `chainlit run --ci`, which plants a fake OPENAI_API_KEY.
    env = {
        k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in (PASSWORD_ENV, "CI")
    }
    return env | {"MODELYARD_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}


@pytest.fixture
def app_root(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "root").mkdir()
    yield make_app_root(tmp_path / "root")


def test_app_refuses_to_start_on_all_interfaces_without_a_password(
    app_env: dict[str, str], app_root: Path
) -> None:
    proc = _chainlit(app_root, app_env, free_port())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "refusing to serve the chat on 0.0.0.0" in out and f"{PASSWORD_ENV} is not set" in out
    assert "Traceback" not in out


def test_app_on_all_interfaces_asks_for_the_password(app_env: dict[str, str], app_root: Path) -> None:
    port = free_port()
    proc = _chainlit(app_root, app_env | {PASSWORD_ENV: PASSWORD}, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                try:
                    config = client.get("/auth/config")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "chainlit did not start"
                    time.sleep(0.2)
            assert config.json()["passwordAuth"] is True and config.json()["headerAuth"] is False
            assert client.post("/auth/header").status_code >= 400  # no passwordless local login
            wrong = client.post("/login", data={"username": "modelyard", "password": "guess-guess-guess"})
            assert wrong.status_code == 401
            right = client.post("/login", data={"username": "modelyard", "password": PASSWORD})
            assert right.status_code == 200, right.text
    finally:
        proc.terminate()
        proc.communicate(timeout=20)  # also closes the output pipe
