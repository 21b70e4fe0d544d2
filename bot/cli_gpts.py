"""`gptstore gpts`: list, export and import GPT definitions (to move them between stores)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import col, select

from bot.cli import ConfigOpt, console, err, settings_or_exit

app = typer.Typer(help="GPTs in the store.", no_args_is_help=True)


async def _with_db(settings, work):  # type: ignore[no-untyped-def]
    from store.db import Database, make_engine
    from store.migrate import upgrade

    db = Database(make_engine(settings.database_url))
    try:
        if settings.is_sqlite:
            await upgrade(db.engine)
        return await work(db)
    finally:
        await db.dispose()


@app.command("list")
def list_gpts(config: ConfigOpt = None) -> None:
    """Every GPT with its status, visibility and uses."""
    from store.models import Gpt

    settings = settings_or_exit(config)

    async def work(db):  # type: ignore[no-untyped-def]
        async with db.reader() as session:
            return list((await session.execute(select(Gpt).order_by(col(Gpt.id)))).scalars())

    table = Table("slug", "name", "status", "visibility", "version", "uses")
    for gpt in asyncio.run(_with_db(settings, work)):
        table.add_row(gpt.slug, gpt.name, gpt.status, gpt.visibility, str(gpt.version_count), str(gpt.uses))
    console.print(table)


@app.command("export")
def export(config: ConfigOpt = None, output: Annotated[Path | None, typer.Option("--output", "-o")] = None) -> None:
    """Write the current version of every GPT as JSON (stdout by default)."""
    from store.models import Account, Gpt, GptStatus, GptVersion

    settings = settings_or_exit(config)

    async def work(db):  # type: ignore[no-untyped-def]
        async with db.reader() as session:
            rows = await session.execute(
                select(Gpt, GptVersion, Account)
                .join(GptVersion, GptVersion.id == Gpt.current_version_id)  # type: ignore[arg-type]
                .join(Account, Account.id == Gpt.creator_id)  # type: ignore[arg-type]
                .where(Gpt.status != GptStatus.DELETED)
                .order_by(col(Gpt.id))
            )
            return [
                {
                    "slug": gpt.slug, "name": v.name, "description": v.description, "instructions": v.instructions,
                    "starters": v.starters, "category": v.category, "model": v.model, "visibility": gpt.visibility,
                    "creator": account.display_name,
                    "knowledge": await _knowledge(session, v.id) if v.knowledge_files else [],
                }
                for gpt, v, account in rows.all()
            ]

    text = json.dumps({"gptstore": 1, "gpts": asyncio.run(_with_db(settings, work))}, indent=2, ensure_ascii=False)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        console.print(f"Wrote {output}")
    else:
        sys.stdout.write(text + "\n")


async def _knowledge(session, version_id: int) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A version's files as passages (the files themselves are not kept: see store/knowledge.py)."""
    from store import knowledge as store_knowledge
    from store.models import KnowledgePassage

    files = await store_knowledge.files(session, await store_knowledge.version_file_ids(session, version_id))
    out = []
    for f in files:
        passages = (await session.execute(
            select(KnowledgePassage).where(KnowledgePassage.file_id == f.id).order_by(col(KnowledgePassage.position))
        )).scalars()
        out.append({"name": f.name, "kind": f.kind, "size": f.size, "sha256": f.sha256, "pages": f.pages,
                    "passages": [{"text": p.text, "heading": p.heading, "page": p.page} for p in passages]})
    return out


@app.command("import")
def import_(path: Path, config: ConfigOpt = None, creator: Annotated[str, typer.Option(help="The account that will own imported GPTs.")] = "operator") -> None:
    """Import GPT definitions from an export; GPTs whose name exists are skipped."""
    from bot.commands import builder
    from store import knowledge as store_knowledge
    from store.accounts import resolve_account
    from store.gpts import GptFields, NameTaken, create_gpt

    settings = settings_or_exit(config)
    try:
        items: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["gpts"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        err.print(f"[red]{path} is not a gptstore export: {exc}[/red]")
        raise typer.Exit(2) from None
    models = list(settings.llm_models) or [settings.llm_default_model]

    async def work(db):  # type: ignore[no-untyped-def]
        created, skipped = 0, []
        for item in items:
            problems = []
            values: dict[str, Any] = {}
            for state in (builder.State.NAME, builder.State.DESCRIPTION, builder.State.INSTRUCTIONS,
                          builder.State.CATEGORY, builder.State.VISIBILITY):
                value, note = builder.validate(state, str(item.get(state.value, "")), models)
                if note:
                    problems.append(state.value)
                values[state.value] = value
            starters, note = builder.validate(builder.State.STARTERS, "\n".join(item.get("starters", [])), models)
            if problems or note:
                skipped.append(f"{item.get('name', '?')} (invalid: {', '.join(problems or ['starters'])})")
                continue
            fields = GptFields(starters=tuple(starters), model=str(item.get("model") or settings.llm_default_model), **values)
            try:
                async with db.session() as session:
                    account = await resolve_account(session, platform="cli", user_id=creator, display_name=creator, locale="en")
                    _, version = await create_gpt(session, creator_id=account.id or 0, fields=fields)
                    file_ids = []
                    for file in item.get("knowledge") or []:
                        row = await store_knowledge.add_file(
                            session, owner_id=account.id or 0, name=str(file["name"]), kind=str(file["kind"]),
                            size=int(file["size"]), sha256=str(file["sha256"]), pages=file.get("pages"),
                            passages=[(str(p["text"]), str(p.get("heading") or ""), p.get("page")) for p in file["passages"]],
                        )
                        file_ids.append(row.id or 0)
                    await store_knowledge.attach(session, version, file_ids)
                created += 1
            except NameTaken:
                skipped.append(f"{fields.name} (name exists)")
        return created, skipped

    created, skipped = asyncio.run(_with_db(settings, work))
    console.print(f"Imported {created} GPT(s).")
    for line in skipped:
        console.print(f"  skipped: {line}")
