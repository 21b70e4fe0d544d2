"""Every table module, imported once so SQLModel's metadata knows them all (migrations, tests)."""

from store import (  # noqa: F401
    adapter_state,
    models,
    policy,
    ratelimit,
    rewards,
    slack_installations,
)
