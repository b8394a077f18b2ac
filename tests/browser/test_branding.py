"""The chat looks like modelyard (issue 10, item 6): its name, logo, favicon and avatar."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import ROOT, App, shot

PUBLIC = ROOT / "ui" / "public"


def test_the_logo_favicon_and_avatar_are_modelyards(app: App) -> None:
    with httpx.Client(base_url=app.url, timeout=10) as client:
        for path, file in (
            ("/logo?theme=dark", "logo_dark.svg"),
            ("/logo?theme=light", "logo_light.svg"),
            ("/favicon", "favicon.svg"),
            ("/avatars/modelyard", "avatars/modelyard.svg"),
        ):
            reply = client.get(path)
            assert reply.status_code == 200, path
            assert reply.headers["content-type"].startswith("image/svg+xml"), path
            assert reply.content == (PUBLIC / file).read_bytes(), path


def test_the_first_visit_shows_modelyards_logo_and_name(chat: Page) -> None:
    expect(chat).to_have_title("modelyard")
    logo = chat.locator('img[src*="/logo"]').first
    expect(logo).to_be_visible()
    assert "modelyard" in (chat.request.get(logo.get_attribute("src") or "").text())


def test_the_first_visit_says_what_the_tool_does_above_the_starters(chat: Page) -> None:
    welcome = chat.locator("#welcome-screen .modelyard-welcome p")
    expect(welcome).to_have_count(2)
    expect(welcome.first).to_contain_text("ERDs, flowcharts, HTML pages, code, docs and JIRA breakdowns")
    expect(welcome.last).to_contain_text("the cloud is used only if the local model fails and you allow it")
    starters = chat.locator("#starters")
    expect(starters).to_be_visible()
    # Both lines are on screen with the starters, above them.
    assert welcome.last.bounding_box()["y"] < starters.bounding_box()["y"]  # type: ignore[index]
    shot(chat, "welcome")
