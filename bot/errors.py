"""Errors written for people.

Raise `UserError` with an English message id (translated when shown) wherever a request cannot
go on; the core turns it into a polite ephemeral reply. Anything else is a bug: it is logged
with an incident id, and the user sees only that id.
"""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    def __init__(self, msgid: str, /, **params: Any) -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.params = params


class NotFound(UserError):
    """A GPT (or anything else) the user named does not exist or is not theirs to see."""
