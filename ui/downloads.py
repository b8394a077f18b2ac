"""The files a final answer offers for download: the artifact in the form each task type is used in.

`downloads` is pure (a response in, (name, mime, bytes) tuples out) and imports no Chainlit;
`send_downloads` attaches them to the message already on the page as Chainlit file elements.
The page adds its own SVG and PNG downloads to each drawn diagram (ui/public/modelyard.js).
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ui.answer import jira_markdown, jira_tasks
from validators.code import language_from_request, normalize_language
from validators.syntax import python_error

if TYPE_CHECKING:
    import chainlit as cl

    from nodes.response import ModelResponse
    from validators.jira import JiraTask


class Download(NamedTuple):
    """One file to offer: its name, its media type and its bytes (UTF-8 text)."""

    name: str
    mime: str
    data: bytes


# Jira's CSV importer maps these column names to its fields without any set-up. It has no standard
# acceptance-criteria field: the criteria are appended to the Description.
JIRA_CSV_COLUMNS = ("Summary", "Description", "Issue Type", "Story Points")
# A language (as validators/code.py names it) -> the file extension its code is saved with.
CODE_EXTENSIONS: dict[str, str] = {
    "python": "py",
    "javascript": "js",
    "typescript": "ts",
    "tsx": "tsx",
    "java": "java",
    "go": "go",
    "rust": "rs",
    "bash": "sh",
    "sql": "sql",
    "json": "json",
    "yaml": "yaml",
    "html": "html",
    "mermaid": "mmd",
    "cpp": "cpp",
    "c": "c",
    "csharp": "cs",
    "kotlin": "kt",
    "scala": "scala",
    "php": "php",
    "perl": "pl",
    "lua": "lua",
    "elixir": "ex",
    "powershell": "ps1",
    "ruby": "rb",
    "swift": "swift",
    "haskell": "hs",
}
_CODE_MIME = {"javascript": "text/javascript", "json": "application/json", "html": "text/html"}
# Served as plain bytes to download: a same-origin document the browser would otherwise render (and
# run the model's scripts in) when the link is opened in a tab instead of downloaded.
_ACTIVE_MIME = frozenset({"text/html", "image/svg+xml"})
_SHEBANG = (
    (re.compile(r"^#!\S*(?:/|env\s+)(?:ba|z|da)?sh\b"), "bash"),
    (re.compile(r"^#!\S*(?:/|env\s+)python"), "python"),
    (re.compile(r"^#!\S*(?:/|env\s+)node\b"), "javascript"),
)
# Words that say nothing about the artifact: left out of file names.
_FILLER = frozenset(
    {
        *("a", "an", "the", "for", "of", "and", "or", "to", "with", "in", "on", "at", "by", "from"),
        *("me", "my", "our", "us", "i", "we", "please", "can", "you", "could", "some", "that", "which"),
        *("create", "make", "generate", "write", "draw", "give", "show", "build", "need", "want"),
    }
)
_SLUG_WORDS = 5
_SLUG_CHARS = 40


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def slug(text: str, *, skip: Sequence[str] = ()) -> str:
    """A short file-name-safe summary of `text`: "ERD for a blog with users" -> "blog-users".

    ASCII letters and digits only, at most five words and 40 characters; `skip` words are left out.
    """
    dropped = _FILLER | {word.lower() for word in skip}
    words = [word for word in re.findall(r"[a-z0-9]+", _ascii(text)) if word not in dropped]
    out = ""
    for word in words[:_SLUG_WORDS]:
        joined = f"{out}-{word}" if out else word[:_SLUG_CHARS]
        if len(joined) > _SLUG_CHARS:
            break
        out = joined
    return out


def base_name(task_type: str, prompt: str | None) -> str:
    """The task type, then a slug of the prompt when there is one: "erd-blog-users-posts"."""
    task = re.sub(r"[^a-z0-9]+", "-", _ascii(task_type)).strip("-") or "artifact"
    # Nor a word that would read as the validity mark the page looks for ("...-invalid.html").
    words = slug(prompt or "", skip=[*task.split("-"), "invalid", "unchecked"])
    return f"{task}-{words}" if words else task


def code_language(content: str, prompt: str | None) -> str | None:
    """The language of a code answer, as far as the answer and its request tell; None when unknown.

    The language the request names, else a shebang's, else JSON or Python when it parses as such
    (unnamed code is checked as Python by the validator).
    """
    named = language_from_request(prompt)
    if named is not None:
        return normalize_language(named)
    first = content.lstrip().split("\n", 1)[0]
    for pattern, language in _SHEBANG:
        if pattern.match(first):
            return language
    if content.lstrip()[:1] in ("{", "["):
        try:
            json.loads(content)
        except (ValueError, RecursionError):
            pass
        else:
            return "json"
    return "python" if python_error(content) is None else None


def jira_csv(tasks: Sequence[JiraTask]) -> bytes:
    """The tasks as a CSV file Jira's importer reads (RFC 4180, UTF-8), criteria in the Description."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(JIRA_CSV_COLUMNS)
    for task in tasks:
        description = task.description
        criteria = [c.strip() for c in task.acceptance_criteria if c.strip()]
        if criteria:
            description += "\n\nAcceptance criteria:\n" + "\n".join(f"* {c}" for c in criteria)
        points = "" if task.story_points is None else str(task.story_points)
        writer.writerow([task.summary, description, task.type or "", points])
    return buffer.getvalue().encode("utf-8")


def _text(content: str) -> bytes:
    return (content.strip("\n") + "\n").encode("utf-8")


def downloads(response: ModelResponse, validator: str | None, prompt: str | None = None) -> list[Download]:
    """The files for a final answer: none for a question's prose or when nothing was delivered.

    A delivered artifact that is not valid (force local, or code no parser could check) keeps its
    files, named so: "erd-invalid.mmd", "code-unchecked.txt".
    """
    if response.prose or not response.content.strip():
        return []
    name = base_name(response.task_type or validator or "artifact", prompt)
    if not response.valid:
        name += "-invalid" if response.checked else "-unchecked"
    content = response.content
    if validator == "jira":
        files = [Download(f"{name}.json", "application/json", _text(content))]
        tasks = jira_tasks(content)
        if tasks is None:
            return files
        table = jira_markdown(tasks)
        return [
            Download(f"{name}.csv", "text/csv", jira_csv(tasks)),
            Download(f"{name}.md", "text/markdown", _text(table)),
            *files,
        ]
    if validator == "mermaid":
        return [Download(f"{name}.mmd", "text/plain", _text(content))]
    if validator == "html":
        return [Download(f"{name}.html", "text/html", _text(content))]
    if validator == "documentation":
        return [Download(f"{name}.md", "text/markdown", _text(content))]
    # The validator's language (it read the fence, which the delivered code no longer has) first.
    language = (response.language or code_language(content, prompt)) if validator == "code" else None
    extension = CODE_EXTENSIONS.get(language or "", "txt")
    return [Download(f"{name}.{extension}", _CODE_MIME.get(language or "", "text/plain"), _text(content))]


def _prompt() -> str | None:
    """The message being answered, as Chainlit's on_message run recorded it (None outside a run)."""
    import chainlit as cl

    run: Any = cl.context.current_run
    text = getattr(run, "input", None)
    return text if isinstance(text, str) and text.strip() else None


async def send_downloads(
    message: cl.Message | cl.ErrorMessage, response: ModelResponse, validator: str | None
) -> None:
    """Attach the answer's downloads to `message` (already sent) as inline file elements."""
    import chainlit as cl

    for file in downloads(response, validator, _prompt()):
        # No blob storage is configured, so the files live in the session only: persisting them in
        # the data layer would just log a warning for each.
        mime = "application/octet-stream" if file.mime in _ACTIVE_MIME else file.mime
        element = cl.File(name=file.name, content=file.data, mime=mime, display="inline")
        await element.send(for_id=message.id, persist=False)
