"""Logging: one line per record, the platform event id on every line of a request, no secrets.

The event id travels in a ContextVar set by `Core.handle`, so every log line written while an
event is handled (in the core, the store, the LLM gateway) carries it without being passed
around. The redaction filter is a last line of defence: secrets are kept out of messages by
construction, and anything that slips through is masked before it is written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from contextvars import ContextVar

current_event: ContextVar[str] = ContextVar("current_event", default="-")

NOISY = ("alembic", "httpx", "httpx2", "httpcore", "openai._base_client", "discord.gateway", "aiosqlite")
FORMAT = "%(asctime)s %(levelname)s %(name)s event=%(event_id)s %(message)s"


class EventIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "event_id"):
            record.event_id = current_event.get()
        return True


class RedactFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "********")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure(level: str, secrets: Iterable[str] = (), *, stream=None) -> logging.Handler:  # type: ignore[no-untyped-def]
    """Install one handler on the root logger; returns it (tests attach their own stream)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(EventIdFilter())
    handler.addFilter(RedactFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_gptstore", False):
            root.removeHandler(old)
    handler._gptstore = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
