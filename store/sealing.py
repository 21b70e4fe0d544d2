"""Secrets at rest: tokens and similar values are sealed (Fernet) before they reach a row.

The key is the operator's GPTSTORE_SECRET_KEY. The embedded SQLite store, meant to run with no
setup, gets a random key file beside the database instead (`<db>.key`, mode 0600): the key
stays on the machine that holds the data, and never in the database itself. A PostgreSQL store
shared by replicas needs the same key on every replica, so there it must be configured.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "sealed:v1:"
SENSITIVE_SUFFIXES = ("token", "secret", "password")


class SealingUnavailable(Exception):
    """No key to seal with: the message says which setting to set."""


class Sealer:
    def __init__(self, key: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))

    def seal(self, value: str) -> str:
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise SealingUnavailable(
                "A sealed value cannot be opened with this GPTSTORE_SECRET_KEY (was the key changed?)."
            ) from None

    def seal_fields(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Seal every string field whose name says it is a secret (…token, …secret)."""
        return {k: self.seal(v) if _sensitive(k) and isinstance(v, str) and v else v for k, v in data.items()}

    def open_fields(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self.open(v) if isinstance(v, str) and v.startswith(PREFIX) else v for k, v in data.items()}


def _sensitive(name: str) -> bool:
    return name.lower().endswith(SENSITIVE_SUFFIXES)


def sealer_for(database_url: str, secret_key: str | None) -> Sealer:
    if secret_key:
        return Sealer(secret_key)
    if database_url.startswith("sqlite") and ":memory:" not in database_url:
        path = Path(database_url.split(":///", 1)[1] + ".key")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return Sealer(path.read_text().strip())
    raise SealingUnavailable(
        "Set GPTSTORE_SECRET_KEY (a long random string, the same on every replica) so that tokens can be "
        "stored encrypted in the shared database."
    )
