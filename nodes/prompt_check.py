"""Refuse prompts that must never reach a model: empty, blank, oversized, undecodable, control bytes."""

from __future__ import annotations

import re

# The C0 and C1 controls (Unicode category Cc) except tab, newline and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class BadPromptError(ValueError):
    """A prompt we refuse before any model sees it (a usage error: CLI exit 2, a reply in the chat)."""


def check_prompt(prompt: object, max_bytes: int) -> str:
    """Return `prompt` when a model may receive it; raise BadPromptError saying what to fix."""
    if not isinstance(prompt, str):
        raise BadPromptError(f"the prompt must be text, got {type(prompt).__name__}")
    if not prompt.strip():
        raise BadPromptError('the prompt is empty: say what to produce, e.g. "ERD for a blog"')
    try:
        size = len(prompt.encode("utf-8"))
    except UnicodeEncodeError as exc:  # lone surrogates: bytes that were not UTF-8 on the command line
        raise BadPromptError(
            f"the prompt is not valid UTF-8 (undecodable bytes at character {exc.start + 1}); "
            "re-save or re-type it as UTF-8"
        ) from None
    if size > max_bytes:
        raise BadPromptError(
            f"the prompt is {size:,} bytes, over the limit of {max_bytes:,} bytes "
            "(routing.max_prompt_bytes); shorten it or raise the limit"
        )
    control = _CONTROL.search(prompt)
    if control is not None:
        raise BadPromptError(
            f"the prompt contains a control character (U+{ord(control.group()):04X}) at character "
            f"{control.start() + 1}; remove it and send the text again"
        )
    return prompt
