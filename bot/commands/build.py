"""Building GPTs in a DM: create, edit, remix, and the creator's own list.

This is the driver around the pure state machine in builder.py: it loads the draft, carries
out the effect a step asks for (drafting with the LLM, a preview answer, publishing), saves the
draft, and renders the prompt for the state it landed in.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import select

from bot import grounding
from bot.catalog import OptionType, action, command, opt
from bot.commands import builder, curation, drafting, knowledge
from bot.commands.builder import Effect, State
from bot.commands.cards import gpt_card
from bot.context import Ctx
from bot.errors import UserError
from bot.i18n import N_
from bot.llm import LLMError
from bot.replies import Button, Card, CardField, DeliveryRefused, Option, Reply, Select, Sent, Style, Target
from store import gpts as store_gpts
from store import knowledge as store_knowledge
from store.models import BuilderDraft, Gpt

log = logging.getLogger(__name__)

PROMPTS: dict[State, str] = {
    State.DESCRIBE: N_("Tell me in your own words what your GPT should do. (Say `fields` to fill it in field by field.)"),
    State.NAME: N_("What is its name? (3 to 40 characters)"),
    State.DESCRIPTION: N_("A one-line description people will see in search (up to 300 characters)."),
    State.INSTRUCTIONS: N_("Its instructions: how should it behave, what should it know, what should it avoid? (up to 8 000 characters)"),
    State.STARTERS: N_("Up to 4 conversation starters, one per line (or `skip`)."),
    State.CATEGORY: N_("Which category? Pick one."),
    State.MODEL: N_("Which model should answer? Pick one."),
    State.VISIBILITY: N_("Who can find it? public (everyone), unlisted (only by its exact name) or private (only you)."),
    State.PREVIEW: N_("Preview: write to your draft as a member would. Say `done` to go back, `publish` to publish. Previews are never counted as uses."),
}
WORDS_HINT = N_("Words that work at any step: back · skip · cancel · preview · publish")


def _models(ctx: Ctx) -> list[str]:
    return list(ctx.settings.llm_models) or [ctx.settings.llm_default_model]


async def _load_draft(ctx: Ctx) -> BuilderDraft | None:
    async with ctx.db.reader() as session:
        return (
            await session.execute(select(BuilderDraft).where(BuilderDraft.account_id == ctx.account_id))
        ).scalar_one_or_none()


async def _begin(ctx: Ctx, state: State, data: dict[str, Any], *, gpt_id: int | None = None,
                 remix_of_id: int | None = None, intro: str) -> None:
    """Open (or reopen) the builder in the actor's DM and save the fresh draft."""
    _not_suspended(ctx)
    existing = await _load_draft(ctx)
    if existing is not None:
        await ctx.say("You already have a GPT in progress; I reopened it in our DM. Say `cancel` there to start over.")
        await _send_dm(ctx, _render(ctx, State(existing.state), existing.data, notes=()))
        return
    sent = await _send_dm(ctx, Reply(text=ctx._(intro)))
    async with ctx.db.session() as session:
        session.add(BuilderDraft(
            account_id=ctx.account_id, platform=ctx.actor.platform,
            channel_ref=sent.channel_id or ctx.place.channel_id, state=state.value, data=data,
            gpt_id=gpt_id, remix_of_id=remix_of_id, locale=ctx.locale,
        ))
    await _send_dm(ctx, _render(ctx, state, data, notes=()))


async def _send_dm(ctx: Ctx, reply: Reply) -> Sent:
    if ctx.place.is_dm:
        return await ctx.send(reply)
    try:
        sent = await ctx.send(Reply(text=reply.text, card=reply.card, actions=reply.actions, target=Target.DM))
    except DeliveryRefused:
        raise UserError("I cannot send you a direct message. Please allow DMs from this server's members, then try again.") from None
    if not ctx.dm_notice_sent:
        ctx.dm_notice_sent = True
        await ctx.say("I sent you a DM to carry on there.")
    return sent


@command("gpt", "create", N_("Build a new GPT by chatting with me in a DM"))
async def create(ctx: Ctx) -> None:
    await _begin(ctx, State.DESCRIBE, {}, intro=N_("Let's build a GPT together."))


@command("gpt", "edit", N_("Edit one of your GPTs (publishing makes a new version)"),
         opt("gpt", N_("Your GPT"), OptionType.GPT))
async def edit(ctx: Ctx, gpt: str) -> None:
    found, version = await own_gpt(ctx, gpt)
    data = {
        "name": version.name, "description": version.description, "instructions": version.instructions,
        "starters": list(version.starters), "category": version.category, "model": version.model,
        "visibility": found.visibility, "knowledge": await _knowledge_of(ctx, version.id or 0),
    }
    await _begin(ctx, State.REVIEW, data, gpt_id=found.id,
                 intro=N_("Editing your GPT. Change what you like; publishing makes a new version."))


@command("gpt", "remix", N_("Start a new GPT from a copy of a public one"), opt("gpt", N_("The GPT to remix"), OptionType.GPT))
async def remix(ctx: Ctx, gpt: str) -> None:
    from bot.commands.invoke import resolve

    source = await resolve(ctx, gpt)
    if source.visibility != "public" and source.creator_id != ctx.account_id:
        raise UserError("Only public GPTs can be remixed.")
    async with ctx.db.reader() as session:
        version = await store_gpts.get_version(session, source.current_version_id or 0)
    data = {
        "description": version.description, "starters": list(version.starters), "category": version.category,
        "model": version.model, "remix_source": source.name,
        # another creator's instructions and files are theirs alone: a remix writes its own
        **({"instructions": version.instructions, "knowledge": await _knowledge_of(ctx, version.id or 0)}
           if source.creator_id == ctx.account_id else {}),
    }
    await _begin(ctx, State.NAME, data, remix_of_id=source.id,
                 intro=N_("Remixing a GPT: you start from a copy. Give your remix its own name."))


async def _knowledge_of(ctx: Ctx, version_id: int) -> list[dict[str, Any]]:
    """A version's files as a draft lists them: editing starts from what is published."""
    async with ctx.db.reader() as session:
        files = await store_knowledge.files(session, await store_knowledge.version_file_ids(session, version_id))
    return [{"id": f.id, "name": f.name, "size": f.size, "passages": f.passage_count, "pages": f.pages} for f in files]


async def own_gpt(ctx: Ctx, ref: str) -> tuple[Gpt, Any]:
    from bot.commands.invoke import resolve

    found = await resolve(ctx, ref, purpose=None)
    if found.creator_id != ctx.account_id:
        raise UserError("Only the creator of “{name}” can change it.", name=found.name)
    async with ctx.db.reader() as session:
        version = await store_gpts.get_version(session, found.current_version_id or 0)
    return found, version


# --- the conversation in the DM -------------------------------------------------------------

async def on_dm_message(ctx: Ctx) -> bool:
    """Feed a DM message to the builder if a draft is open; False if there is none."""
    draft = await _load_draft(ctx)
    files = knowledge.incoming_files(ctx)
    if draft is None:
        if files:
            await ctx.send(Reply(text=ctx._(
                "Files become the knowledge of a GPT you are building: start with `/gpt create` (or `/gpt edit <gpt>`), then attach them here.")))
            return not ctx.text.strip()
        return False
    if files:  # a caption beside files is not an answer to the builder's question
        await knowledge.attach(ctx, draft, files)
        return True
    await _step(ctx, draft, ctx.text)
    return True


@action("build")
async def build_button(ctx: Ctx, args: list[str]) -> None:
    draft = await _load_draft(ctx)
    if draft is None:
        raise UserError("There is no GPT in progress. `/gpt create` starts one.")
    text = " ".join(args)
    if args and args[0].startswith("set-"):  # a button whose label is the answer
        text = args[0][4:]
    elif args[:1] == ["set"]:  # a select: the chosen value is the answer to the current question
        text = ctx.action.values[0] if ctx.action and ctx.action.values else ""
    elif args[:1] == ["change"]:
        text = "change " + (ctx.action.values[0] if ctx.action and ctx.action.values else "")
    elif args[:1] == ["form"]:  # the current field's text, prefilled in a form, to edit rather than retype
        await ctx.send(_field_form(ctx, draft))
        return
    elif args[:1] == ["field"]:  # that form submitted: its value answers the question the builder asked
        if args[1:2] != [draft.state]:
            raise UserError("This form is out of date: the builder has moved on.")
        text = (ctx.action.form.get("value", "") if ctx.action else "").strip() or "skip"
    await _step(ctx, draft, text)


FORM_LIMIT = 3000  # the longest text every platform's form input holds (Slack's modals)
FORM_FIELDS = {State.NAME: (40, False), State.DESCRIPTION: (300, False), State.INSTRUCTIONS: (8000, True),
               State.STARTERS: (500, True)}


def _form_text(state: State, data: dict[str, Any]) -> str | None:
    """The current value of a text field as a form would show it; None when no form can hold it."""
    current = data.get(state.value)
    if state not in FORM_FIELDS or not current:
        return None
    text = "\n".join(current) if isinstance(current, list) else str(current)
    return text if len(text) <= FORM_LIMIT else None


def _field_form(ctx: Ctx, draft: BuilderDraft) -> Reply:
    from bot.replies import Form, FormField

    state = State(draft.state)
    value = _form_text(state, draft.data)
    if value is None:
        raise UserError("This button is no longer available.")
    limit, long = FORM_FIELDS[state]
    return Reply(form=Form(f"build:field:{state.value}", ctx._("Edit your GPT"), (
        FormField("value", ctx._(PROMPTS[state]), long=long, max_length=min(limit, FORM_LIMIT), value=value),
    )))


async def _step(ctx: Ctx, draft: BuilderDraft, text: str) -> None:
    match knowledge.word(text):
        case ("list", _):
            await ctx.send(Reply(text=knowledge.listing(ctx, draft.data)))
            return
        case ("forget", ref):
            await knowledge.forget(ctx, draft, ref)
            return
    models = _models(ctx)
    llm = ctx.services.llm.configured
    step = builder.advance(State(draft.state), draft.data, text, llm=llm, models=models)
    notes = list(step.notes)
    state, data = step.state, step.data
    if step.effect is Effect.CANCEL:
        async with ctx.db.session() as session:
            await session.execute(delete(BuilderDraft).where(BuilderDraft.id == draft.id))  # type: ignore[arg-type]
        await knowledge.discard(ctx, knowledge.file_ids(draft.data))
        await ctx.send(Reply(text=ctx._("Cancelled. Nothing was published. `/gpt create` starts again.")))
        return
    if step.effect is Effect.DRAFT:
        state, data, notes = await drafting.draft(ctx, data, models)
    if step.effect is Effect.PUBLISH:
        if await _publish(ctx, draft, data):
            return
        state, notes = State.NAME, [builder.Note(N_("That name is taken. Please choose another."))]
    await _save(ctx, draft, state, data)
    if step.effect is Effect.PREVIEW:
        await _preview(ctx, data, step.text)
        return
    await ctx.send(_render(ctx, state, data, notes=notes))


async def _save(ctx: Ctx, draft: BuilderDraft, state: State, data: dict[str, Any]) -> None:
    async with ctx.db.session() as session:
        await session.execute(
            update(BuilderDraft).where(BuilderDraft.id == draft.id).values(state=state.value, data=data)  # type: ignore[arg-type]
        )


async def _preview(ctx: Ctx, data: dict[str, Any], text: str) -> None:
    from bot.commands.invoke import GUARD, LLM_MESSAGES

    grounded = await grounding.for_files(ctx, knowledge.file_ids(data), text)
    messages = [{"role": "system", "content": data.get("instructions", "") + GUARD + (grounded.system_text() if grounded else "")}]
    for role, content in data.get("preview_history", [])[-10:]:
        messages.append({"role": role, "content": content})
    messages.append({"role": "user", "content": text[: ctx.settings.max_prompt_chars]})
    parts: list[str] = []

    async def stream():  # type: ignore[no-untyped-def]
        try:
            async for item in ctx.services.llm.stream(model=data.get("model"), messages=messages,
                                                      max_tokens=ctx.settings.llm_max_tokens):
                if isinstance(item, str):
                    parts.append(item)
                    yield item
            if grounded is not None and parts:
                yield "\n\n" + grounded.sources(ctx)
        except LLMError as exc:
            yield "⚠️ " + ctx._(LLM_MESSAGES.get(exc.kind, LLM_MESSAGES[next(iter(LLM_MESSAGES))]))

    await ctx.send(Reply(text=ctx._("*Preview of {name}*", name=data.get("name") or ctx._("your draft")), stream=stream()))
    history = [*data.get("preview_history", []), ["user", text], ["assistant", "".join(parts)]][-10:]
    draft = await _load_draft(ctx)
    if draft is not None:
        await _save(ctx, draft, State.PREVIEW, {**data, "preview_history": history})


async def _publish(ctx: Ctx, draft: BuilderDraft, data: dict[str, Any]) -> bool:
    """Publish in one transaction; False if the name is taken (the builder asks again)."""
    filled = builder.complete_defaults(data, ctx.settings.llm_default_model)
    fields = store_gpts.GptFields(
        name=filled["name"], description=filled["description"], instructions=filled["instructions"],
        starters=tuple(filled["starters"]), category=filled["category"], model=filled["model"],
        visibility=filled["visibility"],
    )
    _not_suspended(ctx)
    await _moderate(ctx, fields)
    try:
        async with ctx.db.session() as session:
            if draft.gpt_id is not None:
                gpt = await session.get(Gpt, draft.gpt_id)
                if gpt is None or gpt.creator_id != ctx.account_id:
                    raise UserError("This GPT is no longer yours to edit.")
                version = await store_gpts.publish_version(session, gpt, fields)
            else:
                gpt, version = await store_gpts.create_gpt(
                    session, creator_id=ctx.account_id, fields=fields, remixed_from_id=draft.remix_of_id
                )
            await store_knowledge.attach(session, version, knowledge.file_ids(data))
            await session.execute(delete(BuilderDraft).where(BuilderDraft.id == draft.id))  # type: ignore[arg-type]
    except store_gpts.NameTaken:
        return False
    card = gpt_card(ctx, gpt, version, ctx.account.display_name, remixed_from=data.get("remix_source"))
    await ctx.send(Reply(
        text=ctx._("Published **{name}** (version {version}). People can find it with `/gpt search` and use it with `/gpt ask {slug}`.",
                   name=gpt.name, version=version.number, slug=gpt.slug),
        card=card,
    ))
    return True


def _not_suspended(ctx: Ctx) -> None:
    """A creator the operator banned builds and publishes nothing (`gptstore creators ban`)."""
    if note := curation.ban_note(ctx):
        raise UserError("{note}", note=note)


async def _moderate(ctx: Ctx, fields: store_gpts.GptFields) -> None:
    if not ctx.settings.moderation_enabled:
        return
    text = "\n".join([fields.name, fields.description, fields.instructions, *fields.starters])
    try:
        flagged = await ctx.services.llm.moderate(text)
    except LLMError:
        raise UserError("The safety check is unavailable right now, so I cannot publish. Please try again shortly.") from None
    if flagged:
        raise UserError("This GPT cannot be published: the safety check flagged {categories}.", categories=", ".join(flagged))


def _render(ctx: Ctx, state: State, data: dict[str, Any], *, notes: Any) -> Reply:
    lines = [ctx._(note.msgid, **note.params) for note in notes]
    actions: list[Button | Select] = []
    card = None
    if state is State.REVIEW:
        card = _draft_card(ctx, data)
        lines.append(ctx._("Say publish, preview, change <field>, redraft or cancel."))
        lines.append(ctx._("Attach files to this DM to give it knowledge it draws on and cites."))
        actions = [
            Button(ctx._("Publish"), "build:publish", Style.PRIMARY),
            Button(ctx._("Preview"), "build:preview"),
            *( [Button(ctx._("Redraft"), "build:redraft")] if ctx.services.llm.configured and data.get("idea") else [] ),
            Button(ctx._("Cancel"), "build:cancel", Style.DANGER),
            Select("build:change", ctx._("Change a field…"), tuple(
                Option(ctx._(f.value), f.value) for f in builder.FIELDS if f is not State.MODEL or len(_models(ctx)) > 1
            )),
        ]
    else:
        lines.append(ctx._(PROMPTS[state]))
        current = data.get(state.value)
        if state is State.NAME and data.get("remix_source"):
            lines.append(ctx._("Remixed from {source}.", source=data["remix_source"]))
        if state is State.DESCRIPTION and not current and data.get("suggested_description"):
            lines.append(ctx._("Suggestion from your idea: {text}", text=data["suggested_description"]))
        if current and state in builder.FIELDS:
            shown = "\n".join(current) if isinstance(current, list) else str(current)
            lines.append(ctx._("Current: {value} (say `skip` to keep it)", value=shown[:500]))
            if _form_text(state, data) is not None:
                actions = [Button(ctx._("Edit in a form"), "build:form")]
        if state is State.CATEGORY:
            actions = [Select("build:set", ctx._("Category"), tuple(Option(ctx._(c), c) for c in builder.CATEGORIES))]
            lines.append(", ".join(f"{i}. {ctx._(c)}" for i, c in enumerate(builder.CATEGORIES, 1)))
        elif state is State.MODEL:
            actions = [Select("build:set", ctx._("Model"), tuple(Option(m, m) for m in _models(ctx)))]
        elif state is State.VISIBILITY:
            actions = [Button(ctx._(v), f"build:set-{v}") for v in builder.VISIBILITIES]
        if state is not State.PREVIEW:
            lines.append(f"_{ctx._(WORDS_HINT)}_")
    return Reply(text="\n".join(lines), card=card, actions=tuple(actions))


def _draft_card(ctx: Ctx, data: dict[str, Any]) -> Card:
    def shown(key: str) -> str:
        value = data.get(key)
        if isinstance(value, list):
            return "\n".join(f"• {v}" for v in value) or "—"
        return str(value)[:1000] if value else "—"

    fields = [
        CardField(ctx._("Name"), shown("name")),
        CardField(ctx._("Category"), ctx._(shown("category")) if data.get("category") else "—"),
        CardField(ctx._("Visibility"), ctx._(shown("visibility")) if data.get("visibility") else ctx._("public")),
        CardField(ctx._("Description"), shown("description"), inline=False),
        CardField(ctx._("Instructions"), shown("instructions"), inline=False),
        CardField(ctx._("Conversation starters"), shown("starters"), inline=False),
        CardField(ctx._("Knowledge"), "\n".join(f"• {knowledge.summary(ctx, item)}" for item in knowledge.files_of(data))
                  or ctx._("none yet: attach files to this DM"), inline=False),
    ]
    return Card(title=ctx._("Your draft"), fields=tuple(fields), footer=ctx._(WORDS_HINT))


@action("create")
async def create_button(ctx: Ctx, args: list[str]) -> None:
    await create(ctx)
