"""The operator's settings.

Everything the bot reads from its environment lives here, in one pydantic-settings object that
`bootstrap()` receives; nothing reads the environment at import time. Environment variables are
`GPTSTORE_<FIELD>`; `.env` and a TOML file (``--config``) use the same keys, either as
``GPTSTORE_FIELD`` or as the bare lower-case field name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MICROS = 1_000_000
CommaList = Annotated[list[str], NoDecode]


def _env(name: str, *more: str) -> AliasChoices:
    """Accept GPTSTORE_NAME (env, .env, TOML), the bare field name (TOML) and any extra alias."""
    return AliasChoices(f"GPTSTORE_{name.upper()}", name, *more)


class SettingsError(Exception):
    """A setting has a value the bot cannot start with; the message names it and what it accepts."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # store
    database_url: str = Field("sqlite+aiosqlite:///./gptstore.db", validation_alias=_env("database_url"))
    database_pool_size: int = Field(10, ge=1, le=200, validation_alias=_env("database_pool_size"))
    database_lock_timeout: float = Field(15.0, gt=0, le=300, validation_alias=_env("database_lock_timeout"))

    # LLM gateway
    llm_base_url: str | None = Field(None, validation_alias=_env("llm_base_url", "OPENAI_BASE_URL"))
    llm_api_key: SecretStr | None = Field(None, validation_alias=_env("llm_api_key", "OPENAI_API_KEY"))
    llm_default_model: str = Field("gpt-4o-mini", min_length=1, validation_alias=_env("llm_default_model"))
    llm_models: CommaList = Field(default_factory=list, validation_alias=_env("llm_models"))
    llm_timeout: float = Field(60.0, gt=0, le=600, validation_alias=_env("llm_timeout"))
    llm_max_retries: int = Field(2, ge=0, le=10, validation_alias=_env("llm_max_retries"))
    llm_stall_timeout: float = Field(30.0, gt=0, le=600, validation_alias=_env("llm_stall_timeout"))
    llm_moderation: bool | None = Field(None, validation_alias=_env("llm_moderation"))
    llm_max_tokens: int = Field(1000, ge=16, le=100_000, validation_alias=_env("llm_max_tokens"))
    llm_local: bool = Field(True, validation_alias=_env("llm_local"))

    # conversations
    max_prompt_chars: int = Field(4000, ge=100, le=100_000, validation_alias=_env("max_prompt_chars"))
    history_turns: int = Field(20, ge=0, le=200, validation_alias=_env("history_turns"))
    default_locale: str = Field("en", pattern=r"^(en|fr)$", validation_alias=_env("default_locale"))
    # events worked on at once until their first reply; under a burst the rest wait, first come first served
    # (raise it for a distant database: each event's turn then waits on its round trips)
    starts_at_once: int = Field(8, ge=1, le=1000, validation_alias=_env("starts_at_once"))

    # knowledge: files creators attach to their GPTs
    knowledge_max_files: int = Field(20, ge=0, le=1000, validation_alias=_env("knowledge_max_files"))
    knowledge_max_file_mb: float = Field(10.0, gt=0, le=500, validation_alias=_env("knowledge_max_file_mb"))
    knowledge_max_total_mb: float = Field(50.0, gt=0, le=5000, validation_alias=_env("knowledge_max_total_mb"))
    knowledge_context_tokens: int = Field(1500, ge=0, le=100_000, validation_alias=_env("knowledge_context_tokens"))
    knowledge_embedding_model: str | None = Field(None, validation_alias=_env("knowledge_embedding_model"))

    # Discord
    discord_token: SecretStr | None = Field(None, validation_alias=_env("discord_token"))
    discord_dev_guild: int | None = Field(None, validation_alias=_env("discord_dev_guild"))
    discord_message_content: bool = Field(False, validation_alias=_env("discord_message_content"))
    discord_shard_count: int | None = Field(None, ge=1, validation_alias=_env("discord_shard_count"))
    discord_shard_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, validation_alias=_env("discord_shard_ids")
    )

    # Slack
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("slack_bot_token"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=_env("slack_signing_secret"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("slack_app_token"))
    slack_client_id: str | None = Field(None, validation_alias=_env("slack_client_id"))
    slack_client_secret: SecretStr | None = Field(None, validation_alias=_env("slack_client_secret"))
    slack_host: str = Field("127.0.0.1", validation_alias=_env("slack_host"))
    slack_port: int = Field(3000, ge=1, le=65535, validation_alias=_env("slack_port"))
    slack_admin_users: CommaList = Field(default_factory=list, validation_alias=_env("slack_admin_users"))

    # at rest: seals tokens stored in the database (a key file beside an embedded SQLite store if unset)
    secret_key: SecretStr | None = Field(None, validation_alias=_env("secret_key"))

    # shared limits
    redis_url: SecretStr | None = Field(None, validation_alias=_env("redis_url"))
    # token buckets (a minute's worth of burst, refilled evenly); 0 turns one off
    rate_member_per_minute: int = Field(30, ge=0, le=100_000, validation_alias=_env("rate_member_per_minute"))
    rate_workspace_per_minute: int = Field(1200, ge=0, le=1_000_000, validation_alias=_env("rate_workspace_per_minute"))

    # rewards (integer micro-units of `rewards_currency`)
    rewards_currency: str = Field("USD", pattern=r"^[A-Z]{3}$", validation_alias=_env("rewards_currency"))
    rewards_period_cron: str = Field("0 0 1 * *", validation_alias=_env("rewards_period_cron"))
    rewards_pool_micros: int = Field(100 * MICROS, ge=0, validation_alias=_env("rewards_pool_micros"))
    rewards_revenue_share_bps: int = Field(
        5000, ge=0, le=10_000, validation_alias=_env("rewards_revenue_share_bps")
    )
    rewards_user_cap: int = Field(10, ge=1, validation_alias=_env("rewards_user_cap"))
    rewards_min_payout_micros: int = Field(
        10 * MICROS, ge=0, validation_alias=_env("rewards_min_payout_micros")
    )
    rewards_eligible_regions: CommaList = Field(
        default_factory=list, validation_alias=_env("rewards_eligible_regions")
    )
    # encrypts creators' payout destinations at rest; without it only a hash and a mask are kept
    rewards_payout_key: SecretStr | None = Field(None, validation_alias=_env("rewards_payout_key"))

    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", validation_alias=_env("log_level"))

    @field_validator("llm_models", "slack_admin_users", "rewards_eligible_regions", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _split_ints(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        return value

    @field_validator("rewards_period_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"a 5-field cron expression such as '0 0 1 * *' (monthly): {exc}") from None
        return value

    @model_validator(mode="after")
    def _default_model_allowed(self) -> Settings:
        if self.llm_models and self.llm_default_model not in self.llm_models:
            self.llm_models = [self.llm_default_model, *self.llm_models]
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings, dotenv_settings]
        if settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)

    # derived facts -------------------------------------------------------------------------
    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url or self.llm_api_key)

    @property
    def moderation_enabled(self) -> bool:
        if self.llm_moderation is not None:
            return self.llm_moderation
        return bool(self.llm_api_key) and (self.llm_base_url or "").startswith("https://api.openai.com")

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction filter."""
        values = [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]
        if "@" in self.database_url and ":" in self.database_url.split("://", 1)[1].split("@")[0]:
            values.append(self.database_url.split("://", 1)[1].split("@")[0].split(":", 1)[1])
        return [v for v in values if v]

    def masked(self) -> dict[str, str]:
        """The effective settings for `gptstore config show`, secrets replaced by a mask."""
        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = "********" if value.get_secret_value() else ""
            elif name == "database_url" and "@" in value:
                scheme, _, rest = value.partition("://")
                creds, _, host = rest.rpartition("@")
                user = creds.split(":", 1)[0]
                shown[name] = f"{scheme}://{user}:****@{host}" if ":" in creds else value
            else:
                shown[name] = "" if value is None else str(value)
        return shown


def load_settings(config_file: Path | str | None = None, /, **overrides: Any) -> Settings:
    """Build the settings, or raise SettingsError whose text names every wrong setting."""
    cls: type[Settings] = Settings
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise SettingsError(f"The config file {path} does not exist.")

        class _FromToml(Settings):
            model_config = SettingsConfigDict(toml_file=path)

        cls = _FromToml
    try:
        return cls(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            env_name = field if field.startswith("GPTSTORE_") else f"GPTSTORE_{field.upper()}"
            got = error.get("input")
            lines.append(f"{env_name}: {error['msg']} (got {got!r})" if "SECRET" not in field.upper() and "TOKEN" not in env_name and "KEY" not in env_name else f"{env_name}: {error['msg']}")
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(lines)) from None
