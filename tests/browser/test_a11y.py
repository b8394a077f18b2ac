"""Accessibility (issue 10, item 9): axe-core scans the chat, settings, panel and dashboard views.

axe-core comes from npm, pinned by tests/browser/axe/package-lock.json (`make test` runs its
`npm ci`), and is injected from node_modules: nothing is fetched. A serious or critical violation
fails the test; the counts per view and impact are printed (`pytest -s`) and written to
test-artifacts/a11y.json. The console is watched too: Radix warns there when a dialog has no
title or no description (Chainlit's Readme, search and phone sheets had none; ui/public/modelyard.js
supplies them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, ViewportSize, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.chat_page import answer, open_settings, send, wait_done
from tests.browser.conftest import ARTIFACTS, ROOT, SETTLE_JS, App, shot
from tests.browser.test_chat import MERMAID, _usage_row
from usage.store import UsageStore

AXE = ROOT / "tests" / "browser" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
IMPACTS = ("minor", "moderate", "serious", "critical")
BLOCKING = ("serious", "critical")
# What @radix-ui/react-dialog logs for a dialog without a title or without a description.
RADIX_WARNING = re.compile(r"`DialogContent` requires a `DialogTitle`|Missing `Description`")
PHONE: ViewportSize = {"width": 390, "height": 844}
# Chainlit keeps the chosen theme in the browser profile, which the package's tests share.
THEME_KEY = "vite-ui-theme"

# view -> its scan's summary, written to test-artifacts/a11y.json when the module is done.
REPORT: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    if not AXE.is_file():
        pytest.fail(f"no axe-core at {AXE}: run `make test` (or `npm ci` in {AXE.parents[2]})")
    yield
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "a11y.json").write_text(json.dumps(REPORT, indent=2) + "\n", encoding="utf-8")


@pytest.fixture
def console(page: Page) -> Iterator[list[str]]:
    """Every console message of the test's page; no Radix dialog warning may be among them."""
    seen: list[str] = []

    def record(message: ConsoleMessage) -> None:
        seen.append(f"{message.type}: {message.text}")

    page.on("console", record)
    yield seen
    radix = [text for text in seen if RADIX_WARNING.search(text)]
    assert not radix, "Radix dialog warnings:\n" + "\n".join(radix)


def open_chat(page: Page) -> None:
    """A new chat with the models panel open: asked for (as its Refresh does) if not sent on its own."""
    page.goto("/")
    page.wait_for_selector("#chat-input")
    for _ in range(10):
        try:
            page.wait_for_selector("#model-status", timeout=1_500)
            return
        except PlaywrightTimeout:
            page.evaluate("window.postMessage({ modelyard: 'refresh_models' }, window.location.origin)")
    page.wait_for_selector("#model-status")


def scan(page: Page, view: str, include: list[str] | None = None) -> dict[str, Any]:
    """Run axe on the page (or the parts `include` selects); record and print the view's counts."""
    page.evaluate(SETTLE_JS)
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=AXE)
    violations = page.evaluate(
        """async (include) => {
            const { violations } = await axe.run(include ? { include } : document, {
                resultTypes: ['violations'],
            });
            return violations.map((v) => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                nodes: v.nodes.map((n) => ({
                    target: n.target.join(' '),
                    html: n.html,
                    summary: n.failureSummary,
                })),
            }));
        }""",
        include,
    )
    counts = {impact: 0 for impact in IMPACTS}
    rules: dict[str, list[str]] = {impact: [] for impact in IMPACTS}
    for v in violations:
        counts[v["impact"]] += 1
        rules[v["impact"]].append(f"{v['id']} ({len(v['nodes'])})")
    REPORT[view] = {"counts": counts, "rules": rules, "violations": violations}
    print(f"\na11y {view}: " + "; ".join(f"{i} {counts[i]} {' '.join(rules[i])}".rstrip() for i in IMPACTS))
    return REPORT[view]


def assert_no_blocking(views: dict[str, dict[str, Any]]) -> None:
    blocking = {
        view: [v for v in summary["violations"] if v["impact"] in BLOCKING] for view, summary in views.items()
    }
    blocking = {view: found for view, found in blocking.items() if found}
    assert not blocking, "serious or critical violations:\n" + json.dumps(blocking, indent=2)


def choose_theme(page: Page, name: str) -> None:
    page.click("#theme-toggle")
    page.get_by_role("menuitem", name=name).click()


def test_the_chat_settings_and_panel_have_no_serious_violations(
    page: Page, app: App, console: list[str]
) -> None:
    open_chat(page)
    send(page, "ERD for a blog with users, posts and comments")
    wait_done(page)
    page.wait_for_url(re.compile(r"/thread/"))  # the first message re-renders the page
    diagram = answer(page).locator(".modelyard-diagram")
    expect(diagram.locator("svg")).to_be_visible()
    views = {"chat": scan(page, "chat")}

    open_settings(page)
    # A dialog that has its own description keeps it (modelyard.js drops only dangling ones).
    expect(page.locator("#chat-settings")).to_have_accessible_description(re.compile(r"\S"))
    views["settings"] = scan(page, "settings")
    shot(page, "a11y-settings")
    page.keyboard.press("Escape")
    expect(page.locator("#chat-settings")).to_be_hidden()

    # The side view that holds the panel: its title bar (with the close button) and the panel.
    expect(page.locator("#model-status")).to_be_visible()
    views["panel"] = scan(page, "panel", include=["#side-view-title", "#side-view-content"])

    # Chainlit's other dialogs on this page, which had no description (see `console`).
    for opener, title in (("#readme-button", "Readme"), ("#search-chats-button", "Search")):
        page.click(opener)
        dialog = page.get_by_role("dialog")
        expect(dialog).to_have_accessible_name(re.compile(title))
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()

    # The same page in the light theme (the default one is dark): other colours, other contrasts.
    try:
        choose_theme(page, "Light Theme")
        expect(diagram).to_have_attribute("data-key", re.compile(r"^default\n"))  # redrawn light
        expect(diagram.locator("svg")).to_be_visible()
        views["chat (light)"] = scan(page, "chat (light)")
        shot(page, "a11y-chat-light")
    finally:
        page.evaluate(f"localStorage.removeItem('{THEME_KEY}')")

    assert_no_blocking(views)


def test_the_usage_dashboard_has_no_serious_violations(page: Page, app: App, console: list[str]) -> None:
    with UsageStore.in_data_dir(app.data_dir) as store:
        store.record_sync(_usage_row(MERMAID, "local", tokens=120))
        store.record_sync(_usage_row("gpt-4o-mini", "cloud", tokens=80))
    open_chat(page)
    page.click("#starter-usage-dashboard")
    expect(answer(page).locator("table")).to_have_count(2)
    expect(answer(page).locator(".modelyard-diagram svg")).to_contain_text("Requests per model")
    assert_no_blocking({"dashboard": scan(page, "dashboard")})


def test_the_phone_sheets_have_a_title_and_no_dangling_description(page: Page, console: list[str]) -> None:
    # On a phone the chat list and the models panel open as sheets (Radix dialogs); Chainlit gives
    # the first no title and neither a description.
    page.set_viewport_size(PHONE)
    open_chat(page)
    panel = page.get_by_role("dialog").filter(has=page.locator("#model-status"))
    expect(panel).to_have_accessible_name(re.compile(r"\S"))
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()

    page.click("#sidebar-trigger-button")
    sidebar = page.get_by_role("dialog")
    expect(sidebar).to_have_accessible_name("Sidebar")
    expect(sidebar).not_to_have_attribute("aria-describedby", re.compile(r"."))
