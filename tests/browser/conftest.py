"""The chat UI in a real browser: Chainlit on loopback against the emulators, driven by Playwright.

One Chainlit process serves the whole browser suite (it takes ~10 s to start); every test gets
a fresh browser context, so a new chat and thread, and emulators reset to their defaults.
Debian's Chromium is used as installed (`apt-get install chromium`); nothing is downloaded.

Playwright, the browser and the app live for this package only, not the whole session:
pytest-playwright's session-scoped sync Playwright keeps an event loop running on the main
thread until it stops, and every pytest-asyncio test collected after this package would then
fail with "Runner.run() cannot be called from a running event loop".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    BrowserType,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)

from tests.browser.chainlit_app import NotReady, app_root, wait_ready
from tests.browser.proxy import SwitchableProxy
from tests.conftest import OPENAI_KEY, free_port
from tests.emulators.ollama import OllamaEmulator
from tests.emulators.openai_compat import OpenAIEmulator
from ui import setup_frontend

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("MODELYARD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Two tabs of one context are tested at once: keep the hidden one running at full speed.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
# Any URL whose host is not loopback; data: and blob: URLs never reach the network layer.
NOT_LOOPBACK = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost|\[::1\])([:/]|$))")
STARTUP_S = 60.0
VIEWPORT = {"width": 1280, "height": 900}
SERVER_PROBLEM = re.compile(r" - ERROR - |Traceback|Exception ignored|An (unexpected )?error occurred")

# Chainlit's page is heavy (a 5 MB bundle): on a busy 2-core CI box 5 s is not always enough.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    pw = sync_playwright().start()
    yield pw
    pw.stop()


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return getattr(playwright, browser_name)  # type: ignore[no-any-return]


@pytest.fixture(scope="package")
def launch_browser(
    browser_type_launch_args: dict[str, Any], browser_type: BrowserType
) -> Callable[..., Browser]:
    def launch(**kwargs: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set MODELYARD_CHROMIUM)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@dataclass
class App:
    """The running chat app and the servers behind it."""

    url: str
    ollama: OllamaEmulator
    cloud: OpenAIEmulator
    ollama_proxy: SwitchableProxy
    data_dir: Path
    log: Path
    config_home: Path
    """The app's XDG_CONFIG_HOME: where the panel's Add writes the user config file."""
    pid: int
    """The Chainlit server's process id."""


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    try:
        wait_ready(url, proc, STARTUP_S)
    except NotReady as exc:
        pytest.fail(f"{exc}:\n{log.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()  # uvicorn shuts down: on_app_shutdown closes the router
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="package")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    if setup_frontend.check():  # the set-up step normally ran already; make sure of it
        assert setup_frontend.main() == 0, "ui/setup_frontend.py failed"
    ARTIFACTS.mkdir(exist_ok=True)
    root = app_root(tmp_path_factory.mktemp("chainlit-root"))
    log = ARTIFACTS / "chainlit.log"
    with OllamaEmulator() as ollama, OpenAIEmulator() as cloud:
        proxy = SwitchableProxy(int(urlsplit(ollama.url).port or 0))
        proxy.up()
        port = free_port()
        data_dir = tmp_path_factory.mktemp("data")
        # No Gemini key: the cloud is the OpenAI emulator only, whatever the developer's shell has.
        env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_API_KEY", "MODELYARD_CONFIG")}
        env |= {
            "OLLAMA_HOST": proxy.url,
            "OPENAI_BASE_URL": cloud.url,
            "OPENAI_API_KEY": OPENAI_KEY,
            "MODELYARD_DATA_DIR": str(data_dir),
            "CHAINLIT_APP_ROOT": str(root),
            "PYTHONPATH": str(ROOT),
            # The panel's Add writes the user config file: the app's own, never the other tests'.
            "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("app-xdg")),
        }
        env.pop("CHAINLIT_AUTH_SECRET", None)
        # `chainlit run` reads CI=true (set by CI) as --ci and replaces OPENAI_API_KEY with a fake.
        env.pop("CI", None)
        cmd = [sys.executable, "-m", "chainlit", "run", str(ROOT / "ui" / "app.py"), "--headless"]
        cmd += ["--host", "127.0.0.1", "--port", str(port)]
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, proc, log)
            yield App(url, ollama, cloud, proxy, data_dir, log, Path(env["XDG_CONFIG_HOME"]), proc.pid)
        finally:
            _stop(proc)
            proxy.close()


@pytest.fixture(autouse=True)
def fresh_servers(app: App) -> Iterator[None]:
    """Emulators back to their defaults, Ollama reachable; no server-side error while the test ran."""
    app.ollama.reset()
    app.cloud.reset()
    app.ollama_proxy.up()
    start = app.log.stat().st_size
    yield
    app.ollama_proxy.up()
    with app.log.open("rb") as log:
        log.seek(start)
        new = log.read().decode(errors="replace")
    # Also catches Chainlit's data layer, which only logs a failed write ("An error occurred").
    problems = [line for line in new.splitlines() if SERVER_PROBLEM.search(line)]
    assert not problems, "the server logged errors:\n" + new


@pytest.fixture(scope="package")
def external_requests() -> list[str]:
    """Every request the package's pages tried to send beyond loopback."""
    return []


@pytest.fixture(scope="package")
def context(
    browser: Browser, playwright: Playwright, app: App, external_requests: list[str]
) -> Iterator[BrowserContext]:
    """One browser profile for the package, already signed in as the app's local user.

    Each test opens its own tabs, and each tab is a new Chainlit session: a new chat and thread.
    Sharing the profile shares the HTTP and compiled-script caches, and skips the trip through
    /login: on a busy 2-core box a tab is ready in ~1-2 s instead of ~4-5 s.
    """
    login = playwright.request.new_context(base_url=app.url)
    assert login.post("/auth/header").ok, "the app's header login failed"
    state = login.storage_state()
    login.dispose()
    context = browser.new_context(base_url=app.url, viewport=VIEWPORT, storage_state=state)
    guard_offline(context, external_requests)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    yield page
    page.close()


@pytest.fixture(autouse=True)
def offline(external_requests: list[str]) -> Iterator[None]:
    """Fail the test if one of its pages asked for anything beyond loopback."""
    seen = len(external_requests)
    yield
    assert external_requests[seen:] == [], f"the page tried to reach the internet: {external_requests[seen:]}"


def guard_offline(context: BrowserContext, external: list[str] | None = None) -> list[str]:
    """Abort every request of `context` that would leave loopback; return the list recording them.

    The pattern is matched inside the browser driver, so loopback traffic is never intercepted
    (intercepting every asset made each page load ~2 s slower).
    """
    external = [] if external is None else external

    def refuse(route: Route) -> None:
        external.append(route.request.url)
        route.abort()

    context.route(NOT_LOOPBACK, refuse)
    return external


@pytest.fixture
def chat(page: Page, app: App) -> Page:
    """A page with a new chat open and ready for input."""
    open_chat(page)
    return page


def open_chat(page: Page) -> None:
    """Open a new chat and wait for its session (the model panel comes from on_chat_start)."""
    page.goto("/")
    page.wait_for_selector("#model-status")


def shot(page: Page, name: str) -> Path:
    """Save a screenshot under test-artifacts/, once the sidebar has finished sliding in."""
    page.evaluate(SETTLE_JS)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path)
    return path


# Two frames (the sidebar starts its slide in a requestAnimationFrame), then the page's finite
# CSS transitions and animations (loading shimmers loop forever), then two frames in a row without
# a DOM change (at most 3 s): public/modelyard.js names a new button one frame after it appears,
# so a page caught mid-render would show a nameless button no user ever meets.
SETTLE_JS = """async () => {
    const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
    await frame();
    await frame();
    await Promise.all(document.getAnimations()
        .filter((a) => a.effect && a.effect.getComputedTiming().iterations !== Infinity)
        .map((a) => a.finished.catch(() => null)));
    let changed = false;
    const watch = new MutationObserver(() => { changed = true; });
    watch.observe(document.body, { childList: true, subtree: true, attributes: true, characterData: true });
    const until = performance.now() + 3000;
    for (let quiet = 0; quiet < 2 && performance.now() < until; ) {
        changed = false;
        await frame();
        quiet = changed ? 0 : quiet + 1;
    }
    watch.disconnect();
}"""
