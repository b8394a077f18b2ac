"""How the browser tests operate the chat page (Chainlit 2.12's element ids)."""

from __future__ import annotations

import re
from weakref import WeakKeyDictionary

from playwright.sync_api import Locator, Page, expect

NODES = ("classify_task", "ensure_model", "local_generate", "validate_output", "finalize")
ANSWER_TIMEOUT_MS = 20_000


# How many finished requests a page showed when its latest message was sent: `wait_done` waits
# for the one after them. The previous turn's step must not pass for the new one (it reads "Used
# finalize" before the new turn has drawn any step), or a test ends with its request in flight.
_finished_before: WeakKeyDictionary[Page, int] = WeakKeyDictionary()


def send(page: Page, text: str) -> None:
    _finished_before[page] = page.locator("#step-finalize").count()
    page.fill("#chat-input", text)
    page.click("#chat-submit")


def step(page: Page, node: str) -> Locator:
    """The latest step of a graph node (its header reads "Using NODE", then "Used NODE")."""
    return page.locator(f"#step-{node}").last


def wait_done(page: Page) -> None:
    """Wait until the last sent request's last step has finished (the first one, if none was sent)."""
    done = page.locator("#step-finalize").nth(_finished_before.pop(page, 0))
    expect(done).to_have_text(re.compile(r"Used\s+finalize"), timeout=ANSWER_TIMEOUT_MS)


def answer(page: Page) -> Locator:
    """The latest assistant message: after `wait_done`, the final answer (closing with an alert)."""
    return page.locator(".ai-message").last


def model_status(page: Page, model: str) -> Locator:
    """The status badge of one model in the sidebar's model panel."""
    return page.locator(f'#model-status [data-model="{model}"] [data-status]')


def open_settings(page: Page) -> None:
    page.click("#chat-settings-open-modal")
    expect(page.locator("#chat-settings")).to_be_visible()


def set_force_local(page: Page, on: bool) -> None:
    """Flip the "Force local only" switch to `on` and confirm the settings."""
    open_settings(page)
    switch = page.locator("button#force_local[role=switch]")
    if (switch.get_attribute("aria-checked") == "true") != on:
        switch.click()
    expect(switch).to_have_attribute("aria-checked", "true" if on else "false")
    page.click("#confirm")
    expect(page.locator("#chat-settings")).to_be_hidden()


def set_task_type(page: Page, task: str) -> None:
    """Choose a task type in the settings and confirm."""
    open_settings(page)
    page.click("button#task_type[role=combobox]")
    page.get_by_role("option", name=task, exact=True).click()
    expect(page.locator("button#task_type")).to_contain_text(task)
    page.click("#confirm")
    expect(page.locator("#chat-settings")).to_be_hidden()
