"""Platform adapters: each translates its platform's payloads into core events and core replies
into its platform's messages, and nothing more."""
