"""Downloads in the chat: a JIRA answer's table and files, a diagram's MMD, SVG and PNG, and the HTML
Preview offered only on a valid HTML answer."""

from __future__ import annotations

import csv
import io
import json
import struct
import xml.etree.ElementTree as ET
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.browser.chat_page import ANSWER_TIMEOUT_MS, answer, send, set_force_local, wait_done
from tests.browser.conftest import App, shot
from tests.emulators._ollama_defaults import MERMAID_REPLY

LLAMA = "llama3:8b-instruct-q4_K_M"
CODELLAMA = "codellama:13b-instruct-q4_K_M"
TOKEN = "reset-token-" + "x" * 60  # one long word: it must widen its column, not be cut
TASKS: list[dict[str, Any]] = [
    {
        "summary": "Let a user reset a forgotten password by email",
        "description": "Send a one-time link that is valid for one hour. The page it opens asks for the new "
        "password twice, checks it against the password policy, and signs the user in once it is saved.",
        "acceptance_criteria": [
            "The link expires after one hour",
            "A used link is refused, with a message that says why",
        ],
        "story_points": 5,
        "type": "Story",
        "priority": "High",
    },
    {
        "summary": "Rate-limit reset requests",
        "description": f'At most 3 per hour per account, "even" for admins, keyed by {TOKEN}.',
        "acceptance_criteria": ["The fourth request in an hour gets HTTP 429"],
        "story_points": 3,
        "type": "Task",
    },
    {
        "summary": "Audit the resets, café ✓",
        "description": "Record who reset what, and when.",
        "story_points": 2,
    },
]
BROKEN_PAGE = "```html\n<!DOCTYPE html>\n<html><body><div><span>Fresh bread</div></body></html>\n```"
NEXT_FRAMES = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
# What the page script measures of the JIRA table: text cut off in a cell, and what scrolls sideways.
TABLE_LAYOUT_JS = """(table) => {
    const box = table.parentElement;
    const cells = [...table.querySelectorAll('th, td')];
    const lines = (cell) => { const r = document.createRange(); r.selectNodeContents(cell);
        return new Set([...r.getClientRects()].map((rect) => Math.round(rect.top))).size; };
    const wide = [];
    for (let el = box.parentElement; el; el = el.parentElement) {
        if (el.scrollWidth > el.clientWidth + 1) wide.push(el.tagName + '.' + el.className);
    }
    return {
        cut: cells.filter((c) => c.scrollWidth > c.clientWidth + 1 || c.scrollHeight > c.clientHeight + 1)
            .map((c) => c.textContent.slice(0, 30)),
        longest: Math.max(...cells.map((c) => lines(c))),
        overflowX: getComputedStyle(box).overflowX,
        scrolls: box.scrollWidth > box.clientWidth,
        wideAncestors: wide,
    };
}"""


def download(page: Page, target: Locator) -> tuple[str, bytes]:
    """Click `target`; the file the browser saved, with its name."""
    with page.expect_download() as info:
        target.click()
    path = info.value.path()
    return info.value.suggested_filename, path.read_bytes()


def test_jira_answer_is_a_table_with_csv_markdown_and_json_downloads(chat: Page, app: App) -> None:
    app.ollama.update_model(LLAMA, reply=f"```json\n{json.dumps(TASKS, indent=2, ensure_ascii=False)}\n```")
    send(chat, "JIRA tickets for a password reset feature")
    wait_done(chat)

    final = answer(chat)
    table = final.locator("table")
    expect(table.locator("thead th")).to_have_text(
        ["Summary", "Description", "Acceptance criteria", "Story points", "Type"]
    )
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tbody tr").first).to_contain_text("\u2022 The link expires after one hour")
    expect(final).to_contain_text("Total: 10 story points")
    expect(final.locator("pre code")).to_have_count(0)  # the JSON is a download, not the body
    expect(final.get_by_role("button", name="Preview")).to_have_count(0)

    base = "jira-tickets-password-reset-feature"
    expect(final.locator("a[download]")).to_have_count(3)
    name, data = download(chat, final.locator(f'a[download="{base}.csv"]'))
    assert name == f"{base}.csv"
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == ["Summary", "Description", "Issue Type", "Story Points"]
    assert [row[0] for row in rows[1:]] == [task["summary"] for task in TASKS]
    assert rows[1][1].endswith(
        "\n\nAcceptance criteria:\n* The link expires after one hour\n"
        "* A used link is refused, with a message that says why"
    )
    assert rows[2][1:] == [
        TASKS[1]["description"] + "\n\nAcceptance criteria:\n* " + TASKS[1]["acceptance_criteria"][0],
        "Task",
        "3",
    ]
    assert rows[3][1:] == ["Record who reset what, and when.", "", "2"]

    name, data = download(chat, final.locator(f'a[download="{base}.json"]'))
    assert name == f"{base}.json"
    assert json.loads(data) == [{"acceptance_criteria": [], **task} for task in TASKS]
    name, data = download(chat, final.locator(f'a[download="{base}.md"]'))
    assert name == f"{base}.md"
    markdown = data.decode("utf-8")
    assert markdown.startswith("| Summary | Description | Acceptance criteria | Story points | Type |")
    assert "**Total: 10 story points**" in markdown
    layout = table.evaluate(TABLE_LAYOUT_JS)
    # Nothing cut, the long word broken rather than widening the table, no sideways scrolling at all.
    assert layout["cut"] == [] and layout["longest"] > 2 and not layout["scrolls"], layout
    assert layout["wideAncestors"] == [], layout
    shot(chat, "jira-table")

    # On a phone: the cells keep a readable width, so the table scrolls, in its own box only.
    chat.set_viewport_size({"width": 390, "height": 844})
    chat.keyboard.press("Escape")  # the model panel opens over the chat on a narrow screen
    table.scroll_into_view_if_needed()
    layout = table.evaluate(TABLE_LAYOUT_JS)
    assert layout["cut"] == [] and layout["overflowX"] in ("auto", "scroll") and layout["scrolls"], layout
    assert layout["wideAncestors"] == [], layout
    shot(chat, "jira-table-390")


def test_diagram_downloads_mmd_svg_and_png(chat: Page, app: App) -> None:
    send(chat, "ERD for a blog with users and posts")
    wait_done(chat)
    final = answer(chat)
    expect(final.locator(".modelyard-diagram svg")).to_be_visible()
    expect(final.get_by_role("button", name="Preview")).to_have_count(0)

    name, data = download(chat, final.locator("a[download]"))
    assert name == "erd-blog-users-posts.mmd"
    assert data.decode("utf-8") == MERMAID_REPLY.split("\n", 1)[1].removesuffix("```\n")

    name, data = download(chat, final.get_by_role("button", name="SVG"))
    assert name == "erd-blog-users-posts.svg"
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert float(root.attrib["width"]) > 0 and float(root.attrib["height"]) > 0
    assert b"CUSTOMER" in data and b"url(http" not in data and b"@import" not in data  # self-contained

    name, data = download(chat, final.get_by_role("button", name="PNG"))
    assert name == "erd-blog-users-posts.png"
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert width > 100 and height > 100

    # A canvas the browser will not let the page read back: the failure is said, not swallowed.
    chat.evaluate(
        "() => { HTMLCanvasElement.prototype.toBlob = function () {"
        " throw new DOMException('Tainted canvases may not be exported.', 'SecurityError'); }; }"
    )
    final.get_by_role("button", name="PNG").click()
    expect(final.locator(".modelyard-diagram-note")).to_contain_text("tainted")


def test_preview_only_for_a_valid_html_answer(chat: Page, app: App) -> None:
    send(chat, "HTML sign-in page for a bakery")
    wait_done(chat)
    valid = chat.locator(".ai-message").filter(has=chat.locator('a[download="html-sign-page-bakery.html"]'))
    expect(valid).to_have_count(1)
    expect(valid.get_by_role("button", name="Preview")).to_be_visible()

    set_force_local(chat, True)
    app.ollama.update_model(CODELLAMA, reply=BROKEN_PAGE)
    send(chat, "HTML sign-in page for a bakery, again")
    invalid = answer(chat)
    expect(invalid.locator("a[download]")).to_have_attribute(
        "download", "html-sign-page-bakery-again-invalid.html", timeout=ANSWER_TIMEOUT_MS
    )
    expect(invalid).to_contain_text("Artifact is invalid")
    chat.evaluate(NEXT_FRAMES)  # the page script has seen the files: a Preview would be there by now
    expect(invalid.locator("pre code")).to_contain_text("Fresh bread")
    expect(invalid.get_by_role("button", name="Preview")).to_have_count(0)
    expect(valid.get_by_role("button", name="Preview")).to_be_visible()  # the valid one keeps its own
    shot(chat, "html-invalid-no-preview")
