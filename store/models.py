"""The core's tables.

Conventions: integer ids; timestamps are aware UTC (SQLModel's UTCDateTime stores them the same
way on SQLite and PostgreSQL); constraints live on the tables so the database, not our code, refuses what must
never happen twice (a second identity, a duplicate delivery, a second rating).
A published `GptVersion` is never updated: editing a GPT publishes a new version, and a
conversation stays pinned to the version it started on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Visibility(StrEnum):
    PRIVATE = "private"
    UNLISTED = "unlisted"
    PUBLIC = "public"


class GptStatus(StrEnum):
    PUBLISHED = "published"
    UNPUBLISHED = "unpublished"
    DELETED = "deleted"


class Category(StrEnum):
    WRITING = "Writing"
    PRODUCTIVITY = "Productivity"
    RESEARCH = "Research & Analysis"
    EDUCATION = "Education"
    PROGRAMMING = "Programming"
    LIFESTYLE = "Lifestyle"
    FUN = "Fun"
    OTHER = "Other"


class InvocationStatus(StrEnum):
    PENDING = "pending"
    OK = "ok"
    ERROR = "error"
    BLOCKED = "blocked"


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    display_name: str = Field(max_length=100)
    locale: str = Field(default="en", max_length=10)
    created_at: datetime = Field(default_factory=utcnow)
    # set by the operator (`gptstore creators ban`): the account's GPTs vanish and it cannot publish
    banned_at: datetime | None = None
    ban_reason: str | None = Field(default=None, max_length=500)


class Identity(SQLModel, table=True):
    """A person's user id on one platform, mapped to one account (accounts can be linked)."""

    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_identity_platform_user"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    external_id: str = Field(max_length=64)
    account_id: int = Field(foreign_key="account.id", index=True)
    display_name: str = Field(default="", max_length=100)


class Workspace(SQLModel, table=True):
    """A Discord server or a Slack workspace (the console has one)."""

    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_workspace_platform_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    external_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=100)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class Gpt(SQLModel, table=True):
    """A GPT's identity and its current public face (copied from the current version for search)."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=48, unique=True)
    name_key: str | None = Field(default=None, max_length=40, unique=True)
    creator_id: int = Field(foreign_key="account.id", index=True)
    status: str = Field(default=GptStatus.PUBLISHED, max_length=16)
    visibility: str = Field(default=Visibility.PUBLIC, max_length=16)
    category: str = Field(default=Category.OTHER, max_length=32)
    name: str = Field(max_length=40)
    description: str = Field(default="", max_length=300)
    current_version_id: int | None = Field(default=None)
    version_count: int = 0
    remixed_from_id: int | None = Field(default=None, foreign_key="gpt.id")
    uses: int = 0
    rating_sum: int = 0
    rating_count: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = None
    # set by the operator (`gptstore gpts takedown`): hidden everywhere, answers nothing, earns nothing
    taken_down_at: datetime | None = None
    takedown_reason: str | None = Field(default=None, max_length=500)


class GptVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("gpt_id", "number", name="uq_version_number"),)
    id: int | None = Field(default=None, primary_key=True)
    gpt_id: int = Field(foreign_key="gpt.id", index=True)
    number: int
    name: str = Field(max_length=40)
    description: str = Field(default="", max_length=300)
    instructions: str = Field(max_length=8000)
    starters: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    category: str = Field(max_length=32)
    model: str = Field(max_length=100)
    # how many knowledge files this version carries: an ask of a GPT without any skips retrieval
    knowledge_files: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)


class KnowledgeFile(SQLModel, table=True):
    """A file a creator attached to a GPT, kept only as its passages (members never get the file).

    Immutable once written, so versions share it: a version lists its files in `VersionKnowledge`,
    and a file no version and no draft lists is deleted (store/knowledge.py)."""

    __tablename__ = "knowledge_file"
    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="account.id", index=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    size: int
    sha256: str = Field(max_length=64)
    pages: int | None = None
    passage_count: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class KnowledgePassage(SQLModel, table=True):
    """A stretch of a file, with where it came from, indexed for full-text retrieval (FTS5 table
    `knowledge_fts` on SQLite, the generated `search` tsvector on PostgreSQL: see migration 0007)."""

    __tablename__ = "knowledge_passage"
    id: int | None = Field(default=None, primary_key=True)
    file_id: int = Field(foreign_key="knowledge_file.id", index=True)
    position: int
    heading: str = Field(default="", max_length=300)
    page: int | None = None
    text: str
    embedding: bytes | None = None


class VersionKnowledge(SQLModel, table=True):
    __tablename__ = "version_knowledge"
    version_id: int = Field(foreign_key="gptversion.id", primary_key=True)
    file_id: int = Field(foreign_key="knowledge_file.id", primary_key=True, index=True)


class BuilderDraft(SQLModel, table=True):
    """The DM builder's state, saved after every step so a restart resumes where it was."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", unique=True)
    platform: str = Field(max_length=20)
    channel_ref: str = Field(max_length=64)
    state: str = Field(max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    gpt_id: int | None = Field(default=None, foreign_key="gpt.id")
    remix_of_id: int | None = Field(default=None, foreign_key="gpt.id")
    locale: str = Field(default="en", max_length=10)
    updated_at: datetime = Field(default_factory=utcnow)


class Conversation(SQLModel, table=True):
    __table_args__ = (
        Index("ix_conversation_thread", "platform", "thread_ref"),
        Index("ix_conversation_dm", "platform", "channel_ref", "kind"),
    )
    id: int | None = Field(default=None, primary_key=True)
    gpt_id: int = Field(foreign_key="gpt.id", index=True)
    version_id: int = Field(foreign_key="gptversion.id")
    account_id: int = Field(foreign_key="account.id")
    platform: str = Field(max_length=20)
    workspace_id: int | None = Field(default=None, foreign_key="workspace.id")
    channel_ref: str = Field(max_length=64)
    thread_ref: str | None = Field(default=None, max_length=64)
    message_ref: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=16)  # channel | thread | dm | preview
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Turn(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    role: str = Field(max_length=16)
    content: str
    gpt_id: int | None = Field(default=None)
    invocation_id: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow)


class Invocation(SQLModel, table=True):
    """One use of a GPT: written pending before the LLM is called, completed after."""

    __table_args__ = (
        Index("ix_invocation_gpt_day", "gpt_id", "day"),
        Index("ix_invocation_created", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    event_key: str | None = Field(default=None, max_length=160, unique=True)
    gpt_id: int = Field(foreign_key="gpt.id")
    version_id: int = Field(foreign_key="gptversion.id")
    account_id: int = Field(foreign_key="account.id", index=True)
    workspace_id: int | None = Field(default=None, foreign_key="workspace.id")
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    platform: str = Field(max_length=20)
    status: str = Field(default=InvocationStatus.PENDING, max_length=16, index=True)
    is_preview: bool = False
    is_creator: bool = False
    error_code: str | None = Field(default=None, max_length=32)
    model: str = Field(default="", max_length=100)
    latency_ms: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    day: date = Field(default_factory=lambda: utcnow().date())
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class Rating(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("gpt_id", "account_id", name="uq_rating_once"),)
    id: int | None = Field(default=None, primary_key=True)
    gpt_id: int = Field(foreign_key="gpt.id", index=True)
    account_id: int = Field(foreign_key="account.id")
    stars: int = Field(ge=1, le=5)
    review: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Feedback(SQLModel, table=True):
    """Thumbs up / down under one answer; one vote per person per answer."""

    __table_args__ = (UniqueConstraint("invocation_id", "account_id", name="uq_feedback_once"),)
    id: int | None = Field(default=None, primary_key=True)
    invocation_id: int = Field(foreign_key="invocation.id")
    gpt_id: int = Field(foreign_key="gpt.id", index=True)
    account_id: int = Field(foreign_key="account.id")
    value: int  # +1 or -1
    created_at: datetime = Field(default_factory=utcnow)


class Report(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    gpt_id: int = Field(foreign_key="gpt.id", index=True)
    account_id: int = Field(foreign_key="account.id")
    reason: str = Field(max_length=1000)
    status: str = Field(default="open", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class SeenEvent(SQLModel, table=True):
    """Platform deliveries already handled: a retry or a second replica finds its key here."""

    key: str = Field(primary_key=True, max_length=160)
    created_at: datetime = Field(default_factory=utcnow, index=True)
