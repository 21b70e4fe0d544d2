"""The platform-neutral core: events in, replies out; the LLM gateway.

Nothing under `bot/` except `bot/adapters/` knows Discord or Slack exist.
"""
