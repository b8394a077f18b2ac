"""A reloaded or reopened chat shows every step of every request exactly as it was shown live."""

from __future__ import annotations

import json
import re
import sqlite3

from playwright.sync_api import Page, expect

from tests.browser.chat_page import send, set_force_local, wait_done
from tests.browser.conftest import App

MERMAID = "mermaid-mistral"

# Every graph node's step, in page order: (its name, the text under its header).
STEPS_JS = """() => [...document.querySelectorAll('[data-step-type=tool], [data-step-type=llm]')].map((s) => {
    const header = s.querySelector('[id^="step-"]');
    return [header ? header.id.slice(5) : '?', s.innerText];
})"""


def _steps(page: Page) -> list[list[str]]:
    return page.evaluate(STEPS_JS)  # type: ignore[no-any-return]


def test_dump(chat: Page, app: App) -> None:
    app.ollama.update_model(MERMAID, load_delay=2.0)
    send(chat, "ERD for a blog with users and posts")
    wait_done(chat)
    chat.wait_for_url(re.compile(r"/thread/"))
    app.ollama_proxy.down()
    send(chat, "ERD for an online shop")
    expect(chat.locator("#step-cloud_fallback")).to_have_count(1, timeout=20_000)
    expect(chat.locator("#step-finalize")).to_have_count(2, timeout=20_000)
    set_force_local(chat, True)
    send(chat, "ERD for a library")
    expect(chat.locator("#step-finalize")).to_have_count(3, timeout=20_000)
    chat.wait_for_timeout(1000)
    before = _steps(chat)
    chat.reload()
    expect(chat.locator("#step-finalize")).to_have_count(3)
    chat.wait_for_timeout(1000)
    for b in chat.locator("[data-step-type=tool] button[aria-expanded=false], [data-step-type=llm] button[aria-expanded=false]").all():
        b.click()
    after = _steps(chat)
    db = sqlite3.connect(app.data_dir / "chat.db")
    rows = db.execute('SELECT name, type, "parentId", "createdAt", start, "end", output, "defaultOpen" FROM steps ORDER BY "createdAt"').fetchall()
    print(json.dumps({"before": before, "after": after, "rows": rows}, indent=1))
    assert False
