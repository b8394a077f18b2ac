"""Turning configured reply text into token-like stream pieces."""

from __future__ import annotations

import re

_MAX_PIECE = 12  # longer words are cut into 8-char pieces, roughly a real token stream
_CUT = 8


def split_tokens(text: str) -> list[str]:
    """Split ``text`` into pieces that concatenate back to exactly ``text``.

    Each piece carries its leading whitespace (" word"), like BPE tokens do, so a
    client that naively joins the stream gets the original text back.
    """
    pieces: list[str] = []
    for word in re.findall(r"\s*\S+", text):
        if len(word) <= _MAX_PIECE:
            pieces.append(word)
        else:
            pieces.extend(word[i : i + _CUT] for i in range(0, len(word), _CUT))
    tail = text[sum(map(len, pieces)) :]
    if tail:  # trailing whitespace/newlines
        pieces.append(tail)
    return pieces


def count_tokens(text: str) -> int:
    """A plausible, deterministic token count (never zero, like a real prompt eval)."""
    return max(1, len(split_tokens(text)))
