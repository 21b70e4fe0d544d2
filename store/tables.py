"""Every table module, imported once so SQLModel's metadata knows them all (migrations, tests)."""

from store import models  # noqa: F401
