"""How a GPT looks in a reply: one card builder shared by info, search, mine and publish."""

from __future__ import annotations

from bot.context import Ctx
from bot.i18n import N_
from bot.replies import Button, Card, CardField, Style
from store.models import Gpt, GptVersion

# Values stored in English and translated where shown (`ctx._(gpt.category)`): declared here so
# that they are extracted into the catalogues with every other message.
TERMS = (
    N_("Writing"), N_("Productivity"), N_("Research & Analysis"), N_("Education"), N_("Programming"),
    N_("Lifestyle"), N_("Fun"), N_("Other"), N_("public"), N_("unlisted"), N_("private"), N_("published"),
    N_("unpublished"), N_("deleted"), N_("name"), N_("description"), N_("instructions"), N_("starters"),
    N_("category"), N_("model"), N_("visibility"),
)


def rating_text(ctx: Ctx, gpt: Gpt) -> str:
    if not gpt.rating_count and not (gpt.thumbs_up or gpt.thumbs_down):
        return ctx._("not rated yet")
    parts = []
    if gpt.rating_count:
        parts.append(f"★ {gpt.rating_sum / gpt.rating_count:.1f} ({gpt.rating_count})")
    if gpt.thumbs_up or gpt.thumbs_down:
        parts.append(f"👍 {gpt.thumbs_up} · 👎 {gpt.thumbs_down}")
    return " · ".join(parts)


def gpt_line(ctx: Ctx, gpt: Gpt, creator: str) -> str:
    return ctx._("**{name}** (`{slug}`) by {creator} · {category} · {rating}",
                  name=gpt.name, slug=gpt.slug, creator=creator, category=ctx._(gpt.category),
                  rating=rating_text(ctx, gpt)) + f"\n{gpt.description}"


def gpt_card(
    ctx: Ctx, gpt: Gpt, version: GptVersion | None, creator: str, *, engaged: int | None = None,
    remixed_from: str | None = None,
) -> Card:
    fields = [
        CardField(ctx._("Creator"), creator),
        CardField(ctx._("Category"), ctx._(gpt.category)),
        CardField(ctx._("Version"), str(version.number if version else gpt.version_count)),
        CardField(ctx._("Rating"), rating_text(ctx, gpt)),
        CardField(ctx._("Uses"), str(gpt.uses)),
    ]
    if version is not None and version.knowledge_files:
        fields.append(CardField(ctx._("Knowledge files"), str(version.knowledge_files)))
    if engaged is not None:
        fields.append(CardField(ctx._("Engaged people, 7 days"), str(engaged)))
    if gpt.visibility != "public":
        fields.append(CardField(ctx._("Visibility"), ctx._(gpt.visibility)))
    footer = f"/gpt ask {gpt.slug} …"
    if remixed_from:
        footer = ctx._("Remixed from {source}", source=remixed_from) + " · " + footer
    return Card(title=gpt.name, description=gpt.description, fields=tuple(fields), footer=footer)


def starter_buttons(gpt: Gpt, version: GptVersion | None) -> tuple[Button, ...]:
    if version is None:
        return ()
    return tuple(
        Button(label=starter[:80], action_id=f"starter:{gpt.id}:{index}", style=Style.PRIMARY)
        for index, starter in enumerate(version.starters[:4])
    )
