"""A phone-sized window (issue 10, item 1): the answer stays in view, tables scroll in their box."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.chat_page import answer, send, wait_done
from tests.browser.conftest import App, shot

PHONE = {"width": 390, "height": 844}


def _command(page: Page, name: str) -> None:
    page.fill("#chat-input", f"/{name}")
    page.keyboard.press("Enter")  # picks the command
    page.click("#chat-submit")


def test_on_a_phone_the_panel_waits_to_be_asked_for_and_tables_scroll(page: Page, app: App) -> None:
    page.set_viewport_size(PHONE)
    page.goto("/")
    expect(page.locator("#chat-input")).to_be_visible()
    page.wait_for_timeout(2_000)  # the page has reported its width; a wide one has its panel by now
    expect(page.locator("#model-status")).to_have_count(0)

    send(page, "ERD for a blog with users, posts and comments")
    wait_done(page)
    expect(page.locator("#model-status")).to_have_count(0)  # not reopened by the request either
    expect(answer(page).locator(".modelyard-diagram svg")).to_be_in_viewport()
    shot(page, "phone-answer")

    _command(page, "usage")
    table = answer(page).locator("table").first
    expect(table).to_contain_text("success")
    box = table.locator("xpath=..")
    scroll = box.evaluate(
        "el => ({overflow: getComputedStyle(el).overflowX, scroll: el.scrollWidth, client: el.clientWidth})"
    )
    assert scroll["overflow"] in ("auto", "scroll") and scroll["scroll"] > scroll["client"], scroll
    assert table.evaluate("t => t.getBoundingClientRect().right") > PHONE["width"]  # wider than the screen
    # Every column can be reached: scrolled to its end, the box shows the last header cell whole.
    reached = box.evaluate(
        """el => {
            el.scrollLeft = el.scrollWidth;
            const cell = el.querySelector('th:last-child').getBoundingClientRect();
            const view = el.getBoundingClientRect();
            return cell.left >= view.left - 1 && cell.right <= view.right + 1;
        }"""
    )
    assert reached
    shot(page, "phone-usage")

    _command(page, "models")  # asked for: now it opens
    expect(page.locator("#model-status")).to_be_visible()
