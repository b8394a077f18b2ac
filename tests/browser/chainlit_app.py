"""A private Chainlit app root for a server started by the tests (or the benchmarks)."""

from __future__ import annotations

import shutil
from pathlib import Path

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
