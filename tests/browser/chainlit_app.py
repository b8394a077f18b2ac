"""A Chainlit server started by the tests (or the benchmarks): its private app root, its start."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from ui import setup_frontend

ROOT = Path(__file__).resolve().parents[2]


def app_root(root: Path) -> Path:
    """A private Chainlit app root: its `.files/` and translations stay out of the repository.

    Chainlit reads .chainlit/, chainlit.md and public/ from its app root and deletes .files/
    there when it stops; the committed config and assets are linked or copied in.
    """
    (root / ".chainlit").mkdir(parents=True)
    shutil.copy(ROOT / ".chainlit" / "config.toml", root / ".chainlit" / "config.toml")
    shutil.copy(ROOT / "chainlit.md", root / "chainlit.md")
    (root / "public").symlink_to(ROOT / "ui" / "public", target_is_directory=True)
    (root / "ui" / "build").mkdir(parents=True)
    (root / "ui" / "build" / "frontend").symlink_to(setup_frontend.BUILD_DIR, target_is_directory=True)
    return root


class NotReady(RuntimeError):
    """The server exited, or did not answer in time."""


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Return once `url` answers 200; NotReady when `proc` exits first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotReady(f"chainlit exited with {proc.returncode}")
        try:
            with urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (URLError, OSError):
            time.sleep(0.1)
    raise NotReady(f"chainlit did not answer {url} within {timeout:g} s")
