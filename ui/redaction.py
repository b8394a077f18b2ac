"""Keep API keys out of every log line the CLI and the chat app write, whichever logger writes it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from config.redaction import redact

_installed: tuple[str, ...] = ()


def scrub(record: logging.LogRecord, secrets: tuple[str, ...]) -> logging.LogRecord:
    """Render the record's message and traceback now and replace each secret in them."""
    message = record.getMessage()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    record.msg, record.args = redact(message, secrets), None
    if record.exc_text:
        record.exc_text = redact(record.exc_text, secrets)
        record.exc_info = None  # the scrubbed text stands in for the live traceback
    if record.stack_info:
        record.stack_info = redact(record.stack_info, secrets)
    return record


def install(secrets: Iterable[str]) -> None:
    """Scrub `secrets` from every record created from now on (a record factory: no logger escapes).

    Records are only created for enabled levels, so disabled debug logging costs nothing.
    """
    global _installed
    new = tuple(s for s in secrets if s and s not in _installed)
    if not new:
        return
    _installed = (*_installed, *new)
    base = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub(base(*args, **kwargs), new)

    logging.setLogRecordFactory(factory)
