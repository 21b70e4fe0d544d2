"""Knowledge: how fast files become passages, and how fast an answer finds its passages.

Indexing: a generated Markdown document (and a generated PDF when fpdf2 is installed) through
extraction and splitting, then through storage in the backend (passages plus their full-text
index), in MB/s. Retrieval: the step every ask of a GPT with knowledge adds (the version's files,
then the ranked passages for the question), over stores of GPTs × 20 files × 8 passages,
p50/p99, and how it grows as the store grows ×10. Target: retrieval p99 ≤ 30 ms on SQLite at
1 000 GPTs × 20 files.
"""

from __future__ import annotations

import hashlib
import random
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, text, update

from bench import report
from bench.harness import bench_settings, running_bot
from bench.report import Row, percentile
from bench.seed import _fix_sequences, _Zipf, analyze, seeded_store, vocabulary
from bot import grounding
from knowledge.extract import extract
from knowledge.split import split
from store import knowledge as store_knowledge
from store.db import Database
from store.models import GptVersion, KnowledgeFile, KnowledgePassage, VersionKnowledge

NAME = "knowledge"
FILES_PER_GPT = 20
PASSAGES_PER_FILE = 8
MB = 1024 * 1024


def _document(rng: random.Random, zipf: _Zipf, size: int) -> str:
    """Markdown of about `size` bytes: headings, paragraphs of Zipf-distributed words."""
    parts: list[str] = []
    total = 0
    section = 0
    while total < size:
        section += 1
        block = [f"## Section {section}: {' '.join(zipf.pick(3))}\n"]
        for _ in range(rng.randint(3, 8)):
            block.append(" ".join(zipf.pick(rng.randint(40, 120))) + ".\n")
        text = "\n".join(block) + "\n"
        parts.append(text)
        total += len(text)
    return "".join(parts)


def _pdf(rng: random.Random, zipf: _Zipf, pages: int) -> bytes | None:
    try:
        from fpdf import FPDF
    except ImportError:
        return None
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for _ in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 5, " ".join(zipf.pick(450)))
    return bytes(pdf.output())


async def _indexing(backend: str, db: Database, quick: bool) -> list[Row]:
    rng = random.Random(3)
    zipf = _Zipf(vocabulary(), rng)
    rows: list[Row] = []
    size = MB if quick else 10 * MB
    data = _document(rng, zipf, size).encode()
    started = time.perf_counter()
    passages = split(extract("bench.md", data))
    parsed = time.perf_counter() - started
    rows.append(report.info(NAME, f"Markdown {len(data) / MB:.0f} MB: extract + split", len(data) / MB / parsed, "MB/s",
                            backend=backend, note=f"{len(passages)} passages"))
    started = time.perf_counter()
    async with db.session() as session:
        await store_knowledge.add_file(session, owner_id=1, name="bench.md", kind="markdown", size=len(data),
                                       sha256=hashlib.sha256(data).hexdigest(), pages=None,
                                       passages=[(p.text, p.heading, p.page) for p in passages])
    stored = time.perf_counter() - started
    rows.append(report.info(NAME, f"Markdown {len(data) / MB:.0f} MB: extract + split + store", len(data) / MB / (parsed + stored),
                            "MB/s", backend=backend, note="passages + full-text index, one transaction"))
    pdf = _pdf(rng, zipf, 5 if quick else 100)
    if pdf is not None:
        started = time.perf_counter()
        pdf_passages = split(extract("bench.pdf", pdf))
        took = time.perf_counter() - started
        pages = max(p.page or 0 for p in pdf_passages)
        rows.append(report.info(NAME, f"PDF {pages} pages ({len(pdf) / MB:.1f} MB): extract + split", pages / took,
                                "pages/s", backend=backend))
    return rows


async def _seed_files(db: Database, gpts: int) -> None:
    """FILES_PER_GPT files of PASSAGES_PER_FILE passages for each seeded GPT's version."""
    rng = random.Random(11)
    zipf = _Zipf(vocabulary(), rng)
    now = datetime.now(UTC)
    file_id = 0
    passage_id = 0
    if db.is_sqlite:
        # the seeded catalogue was analysed before any knowledge existed: statistics saying the
        # FTS5 shadow tables are empty steer FTS5's own lookups to slow plans as they fill
        async with db.session() as session:
            await session.execute(text("DELETE FROM sqlite_stat1 WHERE tbl LIKE 'knowledge%'"))
        await db.engine.dispose()  # connections read the statistics when they open
    async with db.session() as session:
        for gpt in range(1, gpts + 1):
            files: list[dict[str, Any]] = []
            links: list[dict[str, Any]] = []
            passages: list[dict[str, Any]] = []
            for _ in range(FILES_PER_GPT):
                file_id += 1
                files.append({"id": file_id, "owner_id": 1, "name": f"file-{file_id}.md", "kind": "markdown",
                              "size": 6000, "sha256": f"{file_id:064x}", "pages": None,
                              "passage_count": PASSAGES_PER_FILE, "created_at": now})
                links.append({"version_id": gpt, "file_id": file_id})
                for position in range(PASSAGES_PER_FILE):
                    passage_id += 1
                    passages.append({"id": passage_id, "file_id": file_id, "position": position,
                                     "heading": " ".join(zipf.pick(3)), "page": None,
                                     "text": " ".join(zipf.pick(rng.randint(80, 140))), "embedding": None})
            await session.execute(insert(KnowledgeFile), files)
            await session.execute(insert(VersionKnowledge), links)
            await session.execute(insert(KnowledgePassage), passages)
        await session.execute(update(GptVersion).values(knowledge_files=FILES_PER_GPT))
    await _fix_sequences(db, ("knowledge_file", "knowledge_passage"))
    await analyze(db)


async def _questions(db: Database, gpts: int, count: int, rng: random.Random) -> list[tuple[int, str]]:
    """(version id, question) pairs: a few words of one of that GPT's passages, as people ask."""
    picked: list[tuple[int, str]] = []
    async with db.reader() as session:
        for _ in range(count):
            version = rng.randint(1, gpts)
            files = await store_knowledge.version_file_ids(session, version)
            found = await store_knowledge.openings(session, [rng.choice(files)], limit=1)
            words = found[0].text.split()
            picked.append((version, "what about " + " ".join(rng.sample(words, 4)) + "?"))
    return picked


async def run(quick: bool, backends: list[str]) -> list[Row]:
    sizes = [10, 100] if quick else [100, 1_000]
    count = 100 if quick else 1_000
    rows: list[Row] = []
    for backend in backends:
        p99s: list[float] = []
        for index, gpts in enumerate(sizes):
            async with seeded_store(backend, gpts=gpts, users=10) as (store, _), \
                    running_bot(bench_settings(store.url, None)) as app:
                await _seed_files(app.db, gpts)
                ctx: Any = SimpleNamespace(settings=app.settings, db=app.db, services=app.core.services)
                questions = await _questions(app.db, gpts, count + 20, random.Random(gpts))
                times: list[float] = []
                grounded = 0
                for i, (version, question) in enumerate(questions):
                    started = time.perf_counter()
                    found = await grounding.for_version(ctx, version, FILES_PER_GPT, question)
                    if i >= 20:
                        times.append(time.perf_counter() - started)
                        grounded += found is not None
                if index == 0:
                    rows += await _indexing(backend, app.db, quick)
            label = f"{gpts:,} GPTs × {FILES_PER_GPT} files".replace(",", " ")
            p99 = percentile(times, 99) * 1000
            p99s.append(p99)
            rows += [
                report.info(NAME, f"retrieval p50, {label}", percentile(times, 50) * 1000, "ms", backend=backend,
                            note=f"{gpts * FILES_PER_GPT * PASSAGES_PER_FILE:,} passages".replace(",", " ")),
                report.at_most(NAME, f"retrieval p99, {label}", p99, "ms", 30, backend=backend,
                               note="" if backend == "sqlite" else "target is for SQLite"),
                report.info(NAME, f"questions grounded, {label}", 100.0 * grounded / len(times), "%", backend=backend),
            ]
        # informative: the target for knowledge is the p99 itself; the growth comes from the
        # doclists of a question's common words, which span the whole store
        rows.append(report.info(NAME, f"retrieval p99 growth, store ×{sizes[-1] // sizes[0]}", p99s[-1] / p99s[0], "×",
                                backend=backend))
    return rows
