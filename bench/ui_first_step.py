"""`ui_first_step`: in Chromium, the time from pressing send to the first step on screen.

The chat app runs as `make run` would (Chainlit serving ui/app.py) against an Ollama emulator
that answers at once; the page is driven by Playwright in Debian's Chromium. Each sample is a
new chat, timed inside the page: a click listener notes the send, an observer the first step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.emulated import PROMPT, ROOT
from bench.results import Row, ms
from tests.browser.chainlit_app import app_root, wait_ready
from tests.conftest import free_port
from tests.emulators.ollama import OllamaEmulator

CHROMIUM = os.environ.get("MODELYARD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
TIMER_JS = """() => {
    window.__sent = null; window.__step = null;
    document.querySelector('#chat-submit').addEventListener('click', () => {
        window.__sent = performance.now();
    }, { capture: true, once: true });
    new MutationObserver((_, observer) => {
        if (window.__sent !== null && document.querySelector('#step-classify_task')) {
            window.__step = performance.now();
            observer.disconnect();
        }
    }).observe(document.body, { childList: true, subtree: true });
}"""


def ui_first_step_row(n: int) -> Row:
    with tempfile.TemporaryDirectory() as tmp, OllamaEmulator() as ollama:
        root = app_root(Path(tmp) / "root")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_API_KEY", "OPENAI_API_KEY", "CI")}
        env |= {
            "OLLAMA_HOST": ollama.url,
            "MODELYARD_DATA_DIR": str(Path(tmp) / "data"),
            "CHAINLIT_APP_ROOT": str(root),
            "PYTHONPATH": str(ROOT),
            "XDG_CONFIG_HOME": str(Path(tmp) / "xdg"),
        }
        env.pop("CHAINLIT_AUTH_SECRET", None)
        cmd = [sys.executable, "-m", "chainlit", "run", str(ROOT / "ui" / "app.py"), "--headless"]
        cmd += ["--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        samples: list[float] = []
        try:
            wait_ready(url, proc, 90.0)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                login = playwright.request.new_context(base_url=url)
                assert login.post("/auth/header").ok
                context = browser.new_context(base_url=url, storage_state=login.storage_state())
                page = context.new_page()
                for i in range(3 + n):  # a new chat each time; the first three warm the page and app
                    page.goto("/")
                    page.wait_for_selector("#model-status")
                    page.fill("#chat-input", f"{PROMPT} {i}")
                    page.evaluate(TIMER_JS)
                    page.click("#chat-submit")
                    page.wait_for_selector("#step-classify_task")
                    page.wait_for_function("window.__step !== null")
                    elapsed = page.evaluate("window.__step - window.__sent") / 1000
                    page.wait_for_selector("#step-finalize")  # let the request end before the next
                    if i >= 3:
                        samples.append(elapsed)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    median, p95 = ms(samples)
    return Row(
        "ui_first_step",
        "in Chromium: send pressed to the first step (classify_task) on screen, instant model",
        "p50 <= 300 ms",
        median <= 300,
        median,
        p95,
        samples=len(samples),
    )
