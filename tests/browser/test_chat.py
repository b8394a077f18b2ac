"""The chat UI end to end: Chromium -> Chainlit -> graph -> Ollama / OpenAI emulators, all on loopback."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Literal

from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.chat_page import (
    NODES,
    answer,
    model_status,
    send,
    set_force_local,
    set_task_type,
    step,
    wait_done,
)
from tests.browser.conftest import ROOT, App, guard_offline, open_chat, shot
from tests.conftest import OPENAI_KEY
from usage.row import UsageRow
from usage.store import UsageStore
from validators.mermaid_process import worker_script

MERMAID = "mermaid-mistral"
LLAMA = "llama3:8b-instruct-q4_K_M"
CODELLAMA = "codellama:13b-instruct-q4_K_M"
# A page that tries to phone home and to script the app. The tracker points at an emulator
# that records every request: Playwright does not see requests from sandboxed frames.
HOSTILE_PAGE = """```html
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Bakery</title></head>
<body>
  <h1>Fresh bread</h1>
  <img src="{tracker}" alt="tracker">
  <script>document.body.dataset.ran = "yes"; window.top.document.title = "pwned";</script>
</body>
</html>
```"""
README_SHOT = ROOT / "docs" / "erd-steps.png"
BLOG_ERD = """```mermaid
erDiagram
    USER ||--o{ POST : writes
    USER { int id PK }
    POST { int id PK }
```"""
BLOG_ERD_WITH_TAGS = """```mermaid
erDiagram
    USER ||--o{ POST : writes
    POST }o--o{ TAGS : "tagged with"
    USER { int id PK }
    POST { int id PK }
    TAGS { int id PK }
```"""
SLUGIFY = """```python
import re


def slugify(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
```"""


def test_the_mermaid_checker_starts_with_the_app_not_with_the_first_request(app: App) -> None:
    # The first test of the package: no request has run yet, so only the app's start-up can
    # have started the Node worker.
    assert not [r for r in app.ollama.requests if r.path == "/api/chat"]
    deadline = time.monotonic() + 15
    while not _children_running(app.pid, worker_script().name):  # the bundle's runner, worker.cjs
        assert time.monotonic() < deadline, "no Mermaid worker was started with the app"
        time.sleep(0.2)


def _children_running(pid: int, needle: str) -> bool:
    """Whether a child process of `pid` has `needle` in its command line (read from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and needle in cmdline:
            return True
    return False


def test_the_offline_guard_catches_a_request_to_the_internet(browser: Browser, app: App) -> None:
    # The guard every test relies on, proven not to pass vacuously.
    context = browser.new_context()
    external = guard_offline(context)
    page = context.new_page()
    page.goto(f"{app.url}/public/theme.json")  # any page of the app's origin will do
    page.evaluate("fetch('https://example.com/probe').catch(() => null)")
    context.close()
    assert external == ["https://example.com/probe"]


def test_local_erd_shows_each_step_and_draws_the_diagram(chat: Page, app: App) -> None:
    app.ollama.update_model(MERMAID, token_delay=0.01)  # stream for real: partial text must not be drawn
    send(chat, "ERD for a blog with users, posts and comments")
    wait_done(chat)

    for node in NODES:
        expect(step(chat, node)).to_have_text(re.compile(rf"Used\s+{node}"))
    expect(step(chat, "cloud_fallback")).to_have_count(0)
    steps = chat.locator("[data-step-type=tool], [data-step-type=llm]")
    expect(steps.filter(has_text="Task: erd")).to_have_count(1)
    expect(steps.filter(has_text=re.compile(rf"{MERMAID} (is ready|ready \(loaded in)"))).to_have_count(1)
    expect(steps.filter(has_text="Mermaid syntax valid")).to_have_count(1)

    final = answer(chat)
    expect(final).to_contain_text(re.compile(rf"Success\s*Generated using {MERMAID} \(local\) in \d+\.\d s"))
    expect(final).not_to_contain_text(":::")  # the closing line is drawn as an alert, not raw
    diagram = final.locator(".modelyard-diagram svg")
    expect(diagram).to_be_visible()
    expect(diagram).to_contain_text("CUSTOMER")
    expect(final.locator("pre code")).to_contain_text("erDiagram")  # the source stays visible
    drawn = chat.evaluate("window.modelyardDiagrams")
    assert drawn["failed"] == 0 and drawn["drawn"] >= 1, drawn  # streamed text was never half-drawn

    _readme_screenshot(chat)
    shot(chat, "erd-local")


def _readme_screenshot(page: Page) -> None:
    """The README's picture: the request, its steps and the drawn ERD in one view.

    Always saved under test-artifacts/; copied over the committed docs/erd-steps.png only with
    MODELYARD_README_SHOT=1, so that a test run does not leave the working tree modified.
    """
    page.set_viewport_size({"width": 1280, "height": 1600})
    page.locator("[data-step-type=user_message]").last.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)  # let the scroll settle
    path = shot(page, "erd-steps")
    if os.environ.get("MODELYARD_README_SHOT") == "1":
        README_SHOT.parent.mkdir(exist_ok=True)
        shutil.copy(path, README_SHOT)


def test_ollama_down_falls_back_to_the_cloud_with_a_warning(chat: Page, app: App) -> None:
    app.ollama_proxy.down()
    chat.click("#model-status-refresh")
    expect(chat.locator("#model-status-error")).to_contain_text("Ollama is not reachable at")

    send(chat, "ERD for an online shop")
    wait_done(chat)

    expect(step(chat, "cloud_fallback")).to_have_text(re.compile(r"Used\s+cloud_fallback"))
    final = answer(chat)
    expect(final).to_contain_text(
        re.compile(
            r"Warning\s*Local model unavailable \(server_down\)\. Used gpt-4o-mini \(cloud\) instead\."
        )
    )
    expect(final.locator(".modelyard-diagram svg")).to_be_visible()
    assert len(app.cloud.requests) == 1
    shot(chat, "fallback-warning")


def test_force_local_switch_blocks_the_cloud_and_the_chat_keeps_serving(chat: Page, app: App) -> None:
    set_force_local(chat, True)
    app.ollama_proxy.down()
    send(chat, "ERD for a library")
    wait_done(chat)

    final = answer(chat)
    expect(final).to_contain_text(f"Local model {MERMAID} failed (server_down")
    expect(final).to_contain_text("No cloud fallback: force local only is on, so no cloud model was tried.")
    expect(final).to_contain_text("Error:")
    expect(step(chat, "cloud_fallback")).to_have_count(0)
    assert app.cloud.requests == []
    shot(chat, "force-local-error")

    # The failure was an answer, not a crash: with Ollama back, the same chat works again,
    # and the switch is still on for it.
    app.ollama_proxy.up()
    send(chat, "ERD for a library, again")
    expect(answer(chat)).to_contain_text(f"Generated using {MERMAID} (local)", timeout=20_000)
    chat.click("#chat-settings-open-modal")
    expect(chat.locator("button#force_local")).to_have_attribute("aria-checked", "true")


def test_status_panel_goes_from_not_loaded_to_ready(chat: Page, app: App) -> None:
    app.ollama.update_model(LLAMA, load_delay=3.0)
    badge = model_status(chat, LLAMA)
    expect(badge).to_have_attribute("data-status", "not_loaded")

    send(chat, "JIRA tickets for a password reset feature")
    expect(badge).to_have_attribute("data-status", "loading", timeout=5_000)
    expect(step(chat, "ensure_model")).to_have_text(re.compile(r"Using\s+ensure_model"))
    expect(chat.get_by_text(f"Loading {LLAMA} (first time ~30-60 s)...")).to_be_visible()
    shot(chat, "status-loading")

    wait_done(chat)
    expect(badge).to_have_attribute("data-status", "ready")
    expect(chat.locator(f'#model-status [data-model="{LLAMA}"]')).to_contain_text("unloads in")
    shot(chat, "status-ready")


def test_warm_and_unload_buttons_change_the_models_status(chat: Page, app: App) -> None:
    app.ollama.update_model(LLAMA, load_delay=1.5)
    row = chat.locator(f'#model-status [data-model="{LLAMA}"]')
    badge = model_status(chat, LLAMA)
    expect(badge).to_have_attribute("data-status", "not_loaded")
    memory = chat.locator("#model-memory")
    expect(memory).to_have_attribute("data-resident", "0")

    row.get_by_role("button", name="Warm").click()
    expect(badge).to_have_attribute("data-status", "loading", timeout=5_000)
    expect(badge).to_have_attribute("data-status", "ready", timeout=10_000)
    expect(chat.locator("#model-status-notice")).to_contain_text(f"{LLAMA} ready (loaded in 1.")
    expect(memory).to_have_attribute("data-resident", str(app.ollama.model(LLAMA).size))
    assert app.ollama.loaded_models() == [LLAMA]
    shot(chat, "panel-warmed")

    row.get_by_role("button", name="Unload").click()
    expect(badge).to_have_attribute("data-status", "not_loaded", timeout=5_000)
    expect(chat.locator("#model-status-notice")).to_have_text(f"Unloaded {LLAMA}")
    expect(memory).to_have_attribute("data-resident", "0")
    assert app.ollama.loaded_models() == []


def test_add_routes_a_task_to_an_installed_model_from_the_panel(chat: Page, app: App) -> None:
    add = chat.locator("#model-add")
    notice = chat.locator("#model-status-notice")
    add.locator("#model-add-name").fill("nope:1b")
    add.locator("#model-add-task").select_option("architecture")
    add.get_by_role("button", name="Add").click()
    expect(notice).to_contain_text("Not added: ")
    expect(notice).to_contain_text("ollama pull nope:1b")
    written = app.config_home / "modelyard" / "models.yaml"
    assert not written.exists()

    # The first notice redraws the panel, and a fill that lands during the redraw can be lost
    # (1 CI run in 5: the field kept "nope:1b"): fill again until the field holds the new name.
    field = add.locator("#model-add-name")
    for _ in range(5):
        field.fill(CODELLAMA)
        try:
            expect(field).to_have_value(CODELLAMA, timeout=2_000)
            break
        except AssertionError:
            continue
    expect(field).to_have_value(CODELLAMA)
    add.get_by_role("button", name="Add").click()
    expect(notice).to_contain_text(
        f"architecture: model mermaid-mistral -> {CODELLAMA} (previous kept as alternate)"
    )
    codellama = chat.locator(f'#model-status [data-model="{CODELLAMA}"]')
    expect(codellama).to_contain_text("architecture")
    expect(chat.locator(f'#model-status [data-model="{MERMAID}"]')).to_contain_text(
        "architecture (alternate)"
    )
    text = written.read_text(encoding="utf-8")
    assert "# modelyard's default routing table." in text  # the comments are kept
    assert f"model: {CODELLAMA}" in text
    shot(chat, "panel-added")

    # Back to the packaged routing for the next tests (the router serves each change at once:
    # tests/test_models_add.py::test_a_rerouted_router_serves_the_new_model_at_once).
    add.locator("#model-add-name").fill(MERMAID)
    expect(add.locator("#model-add-name")).to_have_value(MERMAID)
    add.get_by_role("button", name="Add").click()
    expect(notice).to_contain_text(f"architecture: model {CODELLAMA} -> {MERMAID}")


def test_task_type_setting_applies_and_html_previews_in_a_sandbox(chat: Page, app: App) -> None:
    tracker = f"{app.cloud.url}/tracker.png"
    app.ollama.update_model(CODELLAMA, reply=HOSTILE_PAGE.format(tracker=tracker))
    set_task_type(chat, "html")
    send(chat, "Something for my bakery")  # no keyword: without the setting this is documentation
    wait_done(chat)

    classified = chat.locator("[data-step-type=tool]").filter(has_text="Task: html (chosen explicitly")
    expect(classified).to_have_count(1)
    final = answer(chat)
    expect(final.locator("pre code")).to_contain_text("<!DOCTYPE html>")
    final.get_by_role("button", name="Preview").click()
    frame = final.locator(".modelyard-preview iframe")
    expect(frame).to_have_attribute("sandbox", "")  # no allow-scripts, no allow-same-origin
    preview = frame.content_frame
    expect(preview.get_by_role("heading", name="Fresh bread")).to_be_visible()
    # Its script never ran, in the preview or against the app, and its CSP kept the image away.
    expect(preview.locator("body")).not_to_have_attribute("data-ran", "yes")
    assert chat.title() != "pwned"
    chat.wait_for_timeout(300)  # time enough for an image request to arrive, were one made
    assert not [r for r in app.cloud.requests if r.path.endswith("tracker.png")]
    shot(chat, "html-preview")


def test_two_tabs_get_their_own_threads_and_a_reload_restores_the_chat(
    context: BrowserContext, app: App
) -> None:
    first, second = context.new_page(), context.new_page()
    try:
        _two_tabs_and_a_reload(first, second)
    finally:
        first.close()
        second.close()


def _two_tabs_and_a_reload(first: Page, second: Page) -> None:
    for page in (first, second):
        open_chat(page)
    send(first, "ERD for a zoo")
    send(second, "ERD for a farm")
    for page in (first, second):
        wait_done(page)
        expect(answer(page)).to_contain_text("Generated using")
        expect(page).to_have_url(re.compile(r"/thread/[0-9a-f-]{36}$"))  # a persisted thread each
    assert first.url != second.url
    expect(first.locator("[data-step-type=user_message]")).to_contain_text(["ERD for a zoo"])
    expect(second.locator("[data-step-type=user_message]")).to_contain_text(["ERD for a farm"])

    first.reload()
    expect(first.locator("[data-step-type=user_message]")).to_contain_text(["ERD for a zoo"])
    expect(answer(first)).to_contain_text(f"Generated using {MERMAID} (local)")
    expect(answer(first).locator(".modelyard-diagram svg")).to_be_visible()
    expect(model_status(first, MERMAID)).to_be_visible()  # the panel comes back too
    shot(first, "reloaded")


def test_usage_dashboard_starter_shows_the_table_and_chart(chat: Page, app: App) -> None:
    with UsageStore.in_data_dir(app.data_dir) as store:  # the server's own usage.db
        store.record_sync(_usage_row(MERMAID, "local", tokens=120))
        store.record_sync(_usage_row("gpt-4o-mini", "cloud", tokens=80))
    threads_before = _thread_names(app)
    chat.click("#starter-usage-dashboard")

    tables = answer(chat).locator("table")
    expect(tables).to_have_count(2)  # per model, then quality per model and task type
    table = tables.first
    expect(table).to_contain_text("success")
    expect(tables.last.locator("tr", has_text=MERMAID)).to_contain_text("erd")
    expect(table.locator("tr", has_text=MERMAID)).to_contain_text("local")
    cloud_row = table.locator("tr", has_text="gpt-4o-mini")
    expect(cloud_row).to_contain_text("100%")  # every cloud row counts as a fallback
    expect(answer(chat).locator(".modelyard-diagram svg")).to_contain_text("Requests per model")
    expect(answer(chat).get_by_text("pie showData")).to_be_hidden()  # the chart's source is not shown
    shot(chat, "usage")

    # The starter sent no message: no chat named after it in the history, no thread in the URL.
    expect(chat.locator("[data-step-type=user_message]")).to_have_count(0)
    chat.wait_for_timeout(500)  # Chainlit would write a thread right after a first message
    assert _thread_names(app) == threads_before
    assert "/thread/" not in chat.url
    expect(chat.locator("#thread-history")).not_to_contain_text("usage dashboard")

    # A request after it starts the chat, named after the request, with the dashboard kept in it.
    send(chat, "ERD for a zoo")
    wait_done(chat)
    chat.wait_for_url(re.compile(r"/thread/"))
    expect(chat.locator("#thread-history")).to_contain_text("ERD for a zoo")
    assert _thread_names(app) == [*threads_before, "ERD for a zoo"]
    chat.reload()
    expect(chat.locator(".ai-message table")).to_have_count(2)
    expect(answer(chat)).to_contain_text("Generated using")


def _thread_names(app: App) -> list[str]:
    with sqlite3.connect(app.data_dir / "chat.db") as db:
        return [name for (name,) in db.execute('SELECT "name" FROM threads ORDER BY "createdAt"')]


def _usage_row(model: str, location: Literal["local", "cloud"], *, tokens: int) -> UsageRow:
    return UsageRow(
        thread_id="seeded",
        task_type="erd",
        model=model,
        provider="ollama" if location == "local" else "openai",
        location=location,
        status="success",
        fallback_reason=None if location == "local" else "server_down",
        local_model=MERMAID,
        load_time_s=None,
        first_token_s=0.1,
        generation_time_s=1.5,
        input_tokens=tokens,
        output_tokens=tokens,
        validation="valid",
        validation_error=None,
        attempts=1,
        error_message=None,
        local_outcome="valid" if location == "local" else "failed",
        cloud_model=None if location == "local" else model,
        cloud_provider=None if location == "local" else "openai",
        cloud_attempts=0 if location == "local" else 1,
    )


def test_a_refused_prompt_gets_a_reply_and_no_key_reaches_the_history(chat: Page, app: App) -> None:
    send(chat, "ERD " + "x" * 100_000)  # over routing.max_prompt_bytes: refused, never sent
    expect(
        chat.get_by_text(re.compile(r"Not sent to any model: .* over the limit of 100,000 bytes"))
    ).to_be_visible()
    assert [r for r in app.ollama.requests if r.path == "/api/chat"] == []
    chat.wait_for_url(re.compile(r"/thread/"))  # the first message re-renders the page: type after it
    # The message itself is shown collapsed, with a way to read all of it.
    bubble = chat.locator("[data-step-type=user_message] .message-content").last
    expect(bubble).to_have_attribute("data-modelyard-long", "collapsed")
    assert _height(bubble) < 400

    # The cloud echoes the key in its error, as OpenAI does; the chat must show neither half of it.
    app.cloud.configure(status_error=(401, f"Incorrect API key provided: {OPENAI_KEY}"))
    app.ollama_proxy.down()
    send(chat, "ERD for a zoo")
    wait_done(chat)
    expect(answer(chat)).to_contain_text("rejected the API key")
    chat.wait_for_timeout(500)  # Chainlit writes the last steps to chat.db right after sending them
    half = OPENAI_KEY[: len(OPENAI_KEY) // 2]
    for path in [*app.data_dir.glob("*.db*"), app.log]:
        data = path.read_bytes()
        assert OPENAI_KEY.encode() not in data and half.encode() not in data, path
    assert half not in chat.content()


def test_a_long_message_is_collapsed_behind_show_all(chat: Page, app: App) -> None:
    spec = ("ERD for a library. " + "Members borrow books and pay fines for late returns. " * 380).strip()
    assert len(spec) > 20_000
    send(chat, spec)
    wait_done(chat)
    bubble = chat.locator("[data-step-type=user_message] .message-content").last
    toggle = chat.locator("[data-step-type=user_message] .modelyard-show-all").last
    expect(toggle).to_have_text(f"Show all ({len(spec):,} characters)")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    assert _height(bubble) < 400
    expect(answer(chat)).to_be_in_viewport()  # the answer is not pushed thousands of pixels down

    toggle.click()
    expect(toggle).to_have_text("Show less")
    assert _height(bubble) > 3_000  # all of it, readable in place
    toggle.click()
    assert _height(bubble) < 400

    chat.reload()  # a reopened chat collapses it again
    expect(chat.locator("[data-step-type=user_message] .modelyard-show-all")).to_have_count(1)
    assert _height(chat.locator("[data-step-type=user_message] .message-content").last) < 400
    # A short message has no toggle.
    send(chat, "ERD for a zoo")
    wait_done(chat)
    expect(chat.locator("[data-step-type=user_message] .modelyard-show-all")).to_have_count(1)


def _height(locator: Locator) -> float:
    expect(locator).to_be_visible()  # a reloading page may have it in the DOM but not laid out yet
    box = locator.bounding_box()
    assert box is not None
    return box["height"]


def test_each_turn_decides_new_or_revision_and_goes_back_to_the_erd(chat: Page, app: App) -> None:
    app.ollama.update_model(MERMAID, replies=[BLOG_ERD, BLOG_ERD_WITH_TAGS])
    app.ollama.update_model(CODELLAMA, reply=SLUGIFY)
    turns = [
        ("ERD for a blog with users and posts", "New request: erd"),
        ("Write a Python function that slugifies post titles", "New request: code"),
        ("go back to the ERD and add a TAGS table", "Revising the ERD from turn 1"),
    ]
    for n, (text, decision) in enumerate(turns):
        send(chat, text)
        wait_done(chat)
        # The classify_task step shows the task line, then the turn's decision.
        decided = chat.locator("[data-step-type=tool]").filter(has_text=decision)
        expect(decided).to_have_count(1)
        expect(decided).to_contain_text(re.compile(r"Task: (erd|code) \("))
        if n == 0:
            chat.wait_for_url(re.compile(r"/thread/"))  # the first message re-renders the page

    expect(answer(chat).locator(".modelyard-diagram svg")).to_contain_text("TAGS")
    chats = [r.body for r in app.ollama.requests if r.path == "/api/chat"]
    # Ollama names an untagged model ":latest" on the wire.
    assert [c["model"].removesuffix(":latest") for c in chats] == [MERMAID, CODELLAMA, MERMAID]
    code_turn, erd_turn = (c["messages"][-1]["content"] for c in chats[1:])
    assert "USER ||--o{ POST" not in code_turn and "Revise it" not in code_turn
    assert "USER ||--o{ POST" in erd_turn and "Revise it as follows" in erd_turn
    assert "add a TAGS table" in erd_turn and "slugify" not in erd_turn
    shot(chat, "turns-back-to-erd")
