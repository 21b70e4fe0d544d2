"""Grounding an answer in a GPT's knowledge: the passages for a question, within a token budget.

The passages go into the system message with where they come from, the model is asked to cite
them, and the member sees a sources line under the answer naming the files (and pages) it was
given. Retrieval reads only the files of the version the conversation is pinned to.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from bot.context import Ctx
from bot.llm import LLMError
from store import knowledge as store_knowledge
from store.knowledge import Found

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
"""A conservative estimate (English runs ~4 characters a token): the budget is a bound, not a bill."""
CANDIDATES = 12
RRF_K = 60


@dataclass(frozen=True, slots=True)
class Grounding:
    passages: tuple[Found, ...]

    def system_text(self) -> str:
        """For the model, in English like the rest of the system message."""
        blocks = []
        for index, found in enumerate(self.passages, 1):
            where = f"*{found.file_name}*" + (f", p. {found.page}" if found.page else "")
            heading = f" — {found.heading}" if found.heading else ""
            blocks.append(f"[{index}] {where}{heading}\n{found.text}")
        return (
            "\n\n---\nKnowledge: passages from files your creator attached. Ground your answer in them when "
            "they are relevant and cite where each fact comes from, like (from *file name*, p. 4). If they do "
            "not answer the question, say so instead of guessing.\n\n" + "\n\n".join(blocks)
        )

    def sources(self, ctx: Ctx) -> str:
        """`Sources: *notes.pdf* (p. 2, 4) · *faq.md*`, in the member's language."""
        pages: dict[str, set[int]] = {}
        for found in self.passages:
            pages.setdefault(found.file_name, set()).update([found.page] if found.page else [])
        parts = []
        for name, numbers in pages.items():
            shown = f"*{name}*"
            if numbers:
                shown += " (" + ctx._("p. {pages}", pages=", ".join(str(n) for n in sorted(numbers))) + ")"
            parts.append(shown)
        return "📎 " + ctx._("Sources: {files}", files=" · ".join(parts))


async def for_version(ctx: Ctx, version_id: int, knowledge_files: int, question: str) -> Grounding | None:
    """The grounding of one answer; None when the version has no files or nothing fits."""
    if not knowledge_files or ctx.settings.knowledge_context_tokens <= 0:
        return None
    async with ctx.db.lookups() as session:
        file_ids = await store_knowledge.version_file_ids(session, version_id)
    return await for_files(ctx, file_ids, question)


async def for_files(ctx: Ctx, file_ids: Sequence[int], question: str) -> Grounding | None:
    if not file_ids or ctx.settings.knowledge_context_tokens <= 0:
        return None
    # Only SELECTs, and on PostgreSQL without a transaction: no BEGIN and ROLLBACK round trips, and
    # no transaction left open while the question's embedding is fetched from the LLM endpoint.
    async with ctx.db.lookups() as session:
        found = await store_knowledge.search(session, file_ids, question, limit=CANDIDATES)
        if ctx.settings.knowledge_embedding_model:
            found = await _by_meaning(ctx, session, file_ids, question, found)
        if not found:  # a question that names nothing in the files ("what is this about?"): their openings
            found = await store_knowledge.openings(session, file_ids)
    chosen = _within_budget(found, ctx.settings.knowledge_context_tokens * CHARS_PER_TOKEN)
    return Grounding(tuple(chosen)) if chosen else None


def _within_budget(found: Sequence[Found], budget_chars: int) -> list[Found]:
    chosen: list[Found] = []
    used = 0
    for passage in found:
        if used + len(passage.text) > budget_chars:
            continue  # a shorter, lower-ranked passage may still fit
        chosen.append(passage)
        used += len(passage.text)
    return chosen


async def _by_meaning(ctx: Ctx, session, file_ids: Sequence[int], question: str, found: list[Found]) -> list[Found]:  # type: ignore[no-untyped-def]
    """Fuse the text ranking with similarity of embeddings (reciprocal rank fusion): robust to
    the two scores' different scales, and a passage that shares no word with the question can
    still rank when it means the same thing."""
    stored = await store_knowledge.embeddings(session, file_ids)
    if not stored:
        return found
    try:
        [query] = await ctx.services.llm.embed([question], model=ctx.settings.knowledge_embedding_model or "")
    except LLMError as exc:
        log.warning("embeddings unavailable, ranking by words alone: %s", exc)
        return found
    q = _vector(query)
    scored = sorted(((sum(a * b for a, b in zip(q, _vector(vector), strict=False)), pid) for pid, vector in stored),
                    reverse=True)[:CANDIDATES]
    fused: dict[int, float] = {}
    for rank, passage in enumerate(found):
        fused[passage.id] = fused.get(passage.id, 0.0) + 1.0 / (RRF_K + rank)
    for rank, (_, pid) in enumerate(scored):
        fused[pid] = fused.get(pid, 0.0) + 1.0 / (RRF_K + rank)
    order = sorted(fused, key=lambda pid: -fused[pid])[:CANDIDATES]
    known = {p.id: p for p in found}
    missing = [pid for pid in order if pid not in known]
    for passage in await store_knowledge.passages(session, missing):
        known[passage.id] = passage
    return [known[pid] for pid in order if pid in known]


def _vector(packed: bytes) -> array[float]:
    vector = array("f")
    vector.frombytes(packed)
    return vector
