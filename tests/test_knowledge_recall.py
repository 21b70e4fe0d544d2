"""Retrieval quality on a small labelled set: questions people would ask, each with the passage that
answers it. Recall@k is printed (`pytest -s`) and must stay above a floor, on both databases,
through the real extraction, splitting, storage and full-text ranking."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from knowledge.extract import extract
from knowledge.split import split
from store import knowledge as store_knowledge
from store.db import Database, make_engine
from store.migrate import upgrade
from tests.knowledge_files import pdf_bytes

MANUAL = """# Aurora X2 coffee machine — user manual

## Unpacking

Remove the protective film from the drip tray and keep the box for at least thirty days in case of a return.

## Filling the water tank

Lift the tank at the back of the machine, rinse it, and fill it with fresh cold water up to the MAX line. Never use sparkling water.

## Descaling

Descale every three months, or when the orange droplet light blinks. Use half a litre of white vinegar mixed with half a litre of water and run the descaling program by holding both cup buttons for five seconds.

## Grinder settings

The grinder has nine settings. Turn the dial clockwise for a finer grind and a stronger espresso; only adjust it while the grinder is running.

## Milk frother

Purge the steam wand for two seconds before and after frothing. Wipe it with a damp cloth immediately so that milk does not dry on it.

## Error codes

E1 means the water tank is empty or not seated properly. E4 means the brewing unit is blocked: switch off, remove the brewing unit and rinse it under the tap. E7 means the machine overheated; let it cool for thirty minutes.

## Warranty

The warranty covers manufacturing defects for two years from the date of purchase. Damage caused by limescale is not covered if the machine was never descaled.
"""

COURSE = [
    "Introduction to Statistics. Lectures take place on Mondays and Wednesdays at 10am in the Turing auditorium.",
    "Assessment. The midterm is worth twenty-five percent and the final project is worth fifty percent of the mark. "
    "Weekly quizzes make up the remaining quarter.",
    "Late policy. Assignments submitted late lose ten percent per day, up to three days, after which they receive zero.",
    "Software. We use R and RStudio; install both before the first lab session. Python users may use pandas instead.",
    "Standard deviation measures how spread out values are around the mean; it is the square root of the variance.",
    "A p-value is the probability of observing data at least as extreme as the sample, assuming the null hypothesis is true.",
]

# (question, the words that identify the answering passage)
QUESTIONS: list[tuple[str, str]] = [
    ("How often should I descale the machine?", "every three months"),
    ("What does error E4 mean?", "brewing unit is blocked"),
    ("The display shows E1, what should I do?", "water tank is empty"),
    ("How do I make my espresso stronger?", "finer grind"),
    ("Can I put sparkling water in the tank?", "Never use sparkling water"),
    ("How long is the warranty?", "two years"),
    ("Is limescale damage covered by the warranty?", "limescale is not covered"),
    ("How do I clean the steam wand?", "Purge the steam wand"),
    ("What mixture do I use for descaling?", "white vinegar"),
    ("Should I keep the box?", "keep the box"),
    ("The machine overheated, what now?", "cool for thirty minutes"),
    ("When are the lectures?", "Mondays and Wednesdays"),
    ("How much is the final project worth?", "final project is worth fifty percent"),
    ("What happens if I submit my assignment late?", "lose ten percent per day"),
    ("Which software do we need to install?", "RStudio"),
    ("What is a standard deviation?", "square root of the variance"),
    ("Explain p-values", "null hypothesis"),
    ("Can I use Python instead of R?", "pandas"),
    ("How much are the quizzes worth?", "Weekly quizzes"),
    ("What is the midterm weight?", "midterm is worth twenty-five percent"),
]
TOP_K = 3
FLOOR = 0.9


async def test_recall_on_a_labelled_set(database_url: str) -> None:
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("SELECT 1"))
    await upgrade(engine)
    db = Database(engine)
    try:
        ids = []
        async with db.session() as session:
            await session.execute(text("INSERT INTO account (display_name, locale, created_at) VALUES ('c', 'en', CURRENT_TIMESTAMP)"))
            owner = (await session.execute(text("SELECT max(id) FROM account"))).scalar_one()
            for name, data in (("manual.md", MANUAL.encode()), ("course.pdf", pdf_bytes(COURSE))):
                passages = split(extract(name, data), target_chars=400, overlap_chars=80)
                row = await store_knowledge.add_file(
                    session, owner_id=owner, name=name, kind=name.rsplit(".", 1)[1], size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(), pages=None,
                    passages=[(p.text, p.heading, p.page) for p in passages])
                ids.append(row.id)
        hits = 0
        missed = []
        async with db.reader() as session:
            for question, marker in QUESTIONS:
                found = await store_knowledge.search(session, ids, question, limit=TOP_K)
                if any(marker in passage.text for passage in found):
                    hits += 1
                else:
                    missed.append(question)
        recall = hits / len(QUESTIONS)
        print(f"\nknowledge recall@{TOP_K} on {engine.dialect.name}: {recall:.2f} ({hits}/{len(QUESTIONS)}); missed: {missed}")
        assert recall >= FLOOR, missed
    finally:
        await db.dispose()
