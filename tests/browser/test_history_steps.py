"""A reloaded or reopened chat shows every step of every request exactly as it was shown live.

One chat holds the requests whose steps were lost or cut short (issue 10, item 2): a local answer
after a slow load (progress lines, then a ready line), a cloud fallback with Ollama down, a
failure with force local on, and the usage command sent without text.
"""

from __future__ import annotations

import re
import sqlite3
import time

from playwright.sync_api import Page, expect

from tests.browser.chat_page import send, set_force_local, wait_done
from tests.browser.conftest import App, open_chat

MERMAID = "mermaid-mistral"
NODE_STEPS = "[data-step-type=tool], [data-step-type=llm]"
# Each graph node's step in page order: its name, whether it is open, and all of its text.
STEPS_JS = """(selector) => [...document.querySelectorAll(selector)].map((step) => {
    const header = [...step.querySelectorAll('[id^="step-"]')].pop();  // inside the step-<id> box
    return [header.id.slice(5), header.getAttribute('aria-expanded'), step.innerText];
})"""
USERS = "[data-step-type=user_message]"
SETTLE_S = 5.0
STOPPED = "**Stopped** by the user"  # how ui/run_view.py ends the step of a stopped request


Shown = tuple[list[list[str | None]], list[str]]


def _shown(page: Page) -> Shown:
    """Every step, and every user bubble (a command shows as its name above the text)."""
    return page.evaluate(STEPS_JS, NODE_STEPS), page.locator(USERS).all_inner_texts()


def _same_as(page: Page, before: Shown) -> Shown:
    """What the page shows once it shows as much as `before` (a resumed thread renders at once)."""
    deadline = time.monotonic() + SETTLE_S
    while (now := _shown(page)) != before and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    return now


def _saved(app: App, thread: str, requests: int) -> None:
    """Wait until chat.db holds each request's answer and its closed steps (written just after)."""
    deadline = time.monotonic() + SETTLE_S
    with sqlite3.connect(app.data_dir / "chat.db") as db:
        while time.monotonic() < deadline:
            answers, open_steps = db.execute(
                """SELECT SUM(type = 'assistant_message'), SUM(type IN ('tool', 'llm') AND "end" IS NULL)
                FROM steps WHERE "threadId" = ?""",
                (thread,),
            ).fetchone()
            if answers == requests and open_steps == 0:
                return
            time.sleep(0.05)
    raise AssertionError(f"chat.db did not get the {requests} answers of thread {thread}")


def test_a_reloaded_or_reopened_chat_shows_every_step_as_it_was(chat: Page, app: App) -> None:
    app.ollama.update_model(MERMAID, load_delay=2.0)  # "Loading..." lines, then "ready (loaded in 2.0 s)"
    send(chat, "ERD for a blog with users and posts")
    wait_done(chat)
    chat.wait_for_url(re.compile(r"/thread/"))  # the first message re-renders the page: type after it
    thread = chat.url.rsplit("/", 1)[1]

    app.ollama_proxy.down()  # server_down: the cloud answers
    send(chat, "ERD for an online shop")
    expect(chat.locator("#step-finalize")).to_have_count(2, timeout=20_000)
    wait_done(chat)
    set_force_local(chat, True)  # server_down and no cloud: a failed request
    send(chat, "ERD for a library")
    expect(chat.locator("#step-finalize")).to_have_count(3, timeout=20_000)
    wait_done(chat)

    chat.fill("#chat-input", "/usage")  # the command alone, no text
    chat.keyboard.press("Enter")
    chat.click("#chat-submit")
    expect(chat.locator(".ai-message table").first).to_be_visible(timeout=20_000)

    before = _shown(chat)
    steps, users = before
    nodes = [name for name, _, _ in steps]
    assert nodes.count("finalize") == 3 and "cloud_fallback" in nodes, nodes
    assert {expanded for _, expanded, _ in steps} == {"true"}, steps  # every step drawn open
    assert any("ready (loaded in" in str(text) for _, _, text in steps), steps
    assert users[-1] == "usage", users
    _saved(app, thread, requests=4)

    chat.reload()
    assert _same_as(chat, before) == before

    open_chat(chat)  # a new chat, then this one from the history sidebar
    chat.locator(f"#thread-{thread} a").click()
    chat.wait_for_url(re.compile(thread))
    assert _same_as(chat, before) == before


def test_a_stopped_request_ends_its_step_and_leaves_no_draft(chat: Page, app: App) -> None:
    app.ollama.update_model(MERMAID, token_delay=1.0)  # a reply that streams slowly: a draft shows
    send(chat, "ERD for a greenhouse")
    draft = chat.locator(".ai-message").filter(has_text="erDiagram")
    expect(draft).to_have_count(1)
    chat.wait_for_url(re.compile(r"/thread/"))
    thread = chat.url.rsplit("/", 1)[1]
    chat.locator("#stop-button").click()
    expect(chat.get_by_text("Task manually stopped.")).to_be_visible()
    step = chat.locator(NODE_STEPS).filter(has_text="Stopped by the user").last
    expect(step).to_contain_text("Generating with mermaid-mistral")
    expect(chat.locator("#step-finalize")).to_have_count(0)  # nothing was delivered
    expect(draft).to_have_count(0)  # and the unchecked half of the reply is gone
    # The history has the step closed, with the line (written just after it is drawn).
    deadline, saved = time.monotonic() + SETTLE_S, []
    while time.monotonic() < deadline:
        with sqlite3.connect(app.data_dir / "chat.db") as db:
            saved = db.execute(
                """SELECT "end", output FROM steps WHERE "threadId" = ? AND name = 'local_generate'""",
                (thread,),
            ).fetchall()
        if len(saved) == 1 and saved[0][0] and STOPPED in saved[0][1]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(saved)
    chat.reload()
    expect(chat.locator(NODE_STEPS).filter(has_text="Stopped by the user")).to_have_count(1)
