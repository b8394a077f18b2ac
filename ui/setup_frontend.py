"""Prepare the chat UI's offline front end; run before `chainlit run` (idempotent, ~1 s).

    uv run python -m ui.setup_frontend

1. copies `mermaid.min.js` from the npm package the project pins (validators/mermaid_worker)
   into ui/public/vendor/, so diagrams render without a CDN;
2. rebuilds ui/build/frontend/ from the installed Chainlit's frontend/dist without the KaTeX
   stylesheet and the Google Fonts links its index.html points at the internet for
   (ui/public/theme.json's `custom_fonts: []` drops the font stylesheet too, even without it);
3. links `public` -> `ui/public`, because Chainlit serves /public from the app root only.

Everything it writes is generated and gitignored. Run it again after upgrading Chainlit or
mermaid: the app refuses to look offline-ready when the stamps do not match (see `check`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MERMAID_PACKAGE = ROOT / "validators" / "mermaid_worker"
MERMAID_DIST = MERMAID_PACKAGE / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
PUBLIC_SOURCE = ROOT / "ui" / "public"
VENDOR_DIR = PUBLIC_SOURCE / "vendor"
BUILD_DIR = ROOT / "ui" / "build" / "frontend"
PUBLIC_LINK = ROOT / "public"
STAMP = ".modelyard-stamp.json"

# What Chainlit's index.html asks the internet for. Each pattern must match: a Chainlit
# upgrade that changes the page must fail here, not quietly go online again.
_EXTERNAL_TAGS = {
    "KaTeX stylesheet": re.compile(
        r"\s*<link\s[^>]*href=\"https://cdn\.jsdelivr\.net/npm/katex[^\"]*\"[^>]*/>"
    ),
    "Google Fonts preconnect": re.compile(r"\s*<link\s[^>]*rel=\"preconnect\"[^>]*fonts\.g[^>]*/>"),
    # Between Chainlit's FONT markers; the markers stay so theme.json's custom_fonts still works.
    "Google Fonts stylesheet": re.compile(
        r"\s*<link\s[^>]*href=\"https://fonts\.googleapis\.com/css[^\"]*\"[^>]*/>"
    ),
}


class SetupError(Exception):
    """Set-up cannot continue; the message says what to do."""


def chainlit_dist() -> Path:
    """The installed Chainlit's frontend/dist, found without importing chainlit.

    Importing it would load its config and create `.files/` and `.chainlit/` in the cwd.
    """
    spec = importlib.util.find_spec("chainlit")
    if spec is None or not spec.submodule_search_locations:
        raise SetupError("chainlit is not installed: run `uv sync` first")
    dist = Path(next(iter(spec.submodule_search_locations))) / "frontend" / "dist"
    if not (dist / "index.html").is_file():
        raise SetupError(f"{dist}/index.html not found: is the chainlit installation complete?")
    return dist


def versions() -> dict[str, str]:
    """The Chainlit and mermaid versions the generated files were made from."""
    package = json.loads((MERMAID_DIST.parent.parent / "package.json").read_text(encoding="utf-8"))
    return {"chainlit": importlib.metadata.version("chainlit"), "mermaid": str(package["version"])}


def ensure_mermaid() -> None:
    """Install the pinned npm packages when node_modules is missing (`npm ci`, lockfile only)."""
    if MERMAID_DIST.is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SetupError(f"{MERMAID_DIST} is missing and npm is not installed: install Node.js 20+")
    print(f"setup: npm ci in {MERMAID_PACKAGE.relative_to(ROOT)}", file=sys.stderr)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=MERMAID_PACKAGE, check=True)
    if not MERMAID_DIST.is_file():
        raise SetupError(f"npm ci did not produce {MERMAID_DIST}")


def offline_index(html: str) -> str:
    """Chainlit's index.html without the tags that reach for the internet."""
    for what, pattern in _EXTERNAL_TAGS.items():
        html, count = pattern.subn("", html)
        if not count:
            raise SetupError(
                f"{what} not found in Chainlit's index.html: the page changed; update ui/setup_frontend.py"
            )
    if re.search(r"(href|src)=\"https?://", html):
        raise SetupError("Chainlit's index.html still loads something from the internet; update the patterns")
    return html


def build_frontend(stamp: dict[str, str]) -> None:
    """Regenerate ui/build/frontend from Chainlit's dist (source maps left out: 25 MB, devtools only)."""
    dist = chainlit_dist()
    if BUILD_DIR.exists():
        shutil.rmtree(BUILD_DIR)
    shutil.copytree(dist, BUILD_DIR, ignore=shutil.ignore_patterns("*.map"))
    index = BUILD_DIR / "index.html"
    index.write_text(offline_index(index.read_text(encoding="utf-8")), encoding="utf-8")
    (BUILD_DIR / STAMP).write_text(json.dumps(stamp), encoding="utf-8")


def copy_mermaid(stamp: dict[str, str]) -> None:
    """Put mermaid.min.js where the page loads it from: /public/vendor/."""
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy2(MERMAID_DIST, VENDOR_DIR / "mermaid.min.js")
    (VENDOR_DIR / STAMP).write_text(json.dumps(stamp), encoding="utf-8")


def link_public() -> None:
    """`public` -> `ui/public`: Chainlit reads theme.json and serves /public from the app root."""
    target = Path("ui") / "public"
    if PUBLIC_LINK.is_symlink():
        if PUBLIC_LINK.resolve() == PUBLIC_SOURCE:
            return
        PUBLIC_LINK.unlink()
    elif PUBLIC_LINK.exists():
        raise SetupError(f"{PUBLIC_LINK} exists and is not a link to ui/public: move it away")
    PUBLIC_LINK.symlink_to(target, target_is_directory=True)


def check() -> list[str]:
    """What is missing or stale in the generated front end (empty when it is ready)."""
    problems = []
    try:
        expected = versions()
    except (OSError, ValueError, KeyError):
        return ["mermaid is not installed in validators/mermaid_worker"]
    for what, stamp in (("frontend build", BUILD_DIR / STAMP), ("mermaid copy", VENDOR_DIR / STAMP)):
        try:
            found = json.loads(stamp.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            problems.append(f"{what} is missing")
            continue
        if found != expected:
            problems.append(f"{what} was made for {found}, installed are {expected}")
    if not PUBLIC_LINK.is_dir():
        problems.append("the `public` link to ui/public is missing")
    return problems


def main() -> int:
    """Generate everything; exit 1 with a reason when that is not possible."""
    try:
        ensure_mermaid()
        stamp = versions()
        copy_mermaid(stamp)
        build_frontend(stamp)
        link_public()
    except (SetupError, OSError, subprocess.CalledProcessError) as exc:
        print(f"setup: {exc}", file=sys.stderr)
        return 1
    print(f"setup: offline front end ready (chainlit {stamp['chainlit']}, mermaid {stamp['mermaid']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
