"""Typed doors to the Chainlit calls it leaves unannotated (mypy --strict refuses to call those).

One place for the `type: ignore`s instead of one at every call site.
"""

from __future__ import annotations

import chainlit as cl
from chainlit.utils import utc_now

Sendable = cl.Step | cl.Message | cl.ErrorMessage | cl.ChatSettings


def now() -> str:
    """Chainlit's timestamp format for a step's start and end."""
    return str(utc_now())  # type: ignore[no-untyped-call]


async def send(item: Sendable) -> None:
    """Put a step, message or settings panel on the page (and in the chat history)."""
    await item.send()  # type: ignore[no-untyped-call]


async def update(item: cl.Step) -> None:
    """Re-send a step that is already on the page."""
    await item.update()  # type: ignore[no-untyped-call]


async def remove(item: cl.Step | cl.Message) -> None:
    """Take a step or message off the page (and out of the chat history)."""
    await item.remove()  # type: ignore[no-untyped-call]
