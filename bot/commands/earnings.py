"""Creators' money: `/gpt earnings`, `/gpt payout-settings`, `/gpt link`, and statement DMs.

The rules are shown where the money is (points per person per day, the cap, the minimum payout),
so a creator can check their own figures. Payout details are private: the settings work in a DM
only, and the destination is never shown back in full.

Statements reach DMs through the adapters: after each close the scheduler awaits the callables in
`services.extras["after_close"]`; an adapter that can write DMs calls
`statement_dms(services, "<platform>", send_dm)` when it starts, which registers that hook and
returns the catch-up delivery and the unregistering function. `send_dm(user_id, reply)` sends one
DM (raising DeliveryRefused if the platform refuses); who gets which statement is decided here.
`pending_statements()` lists what is still to deliver, for adapters that prefer to poll.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing import ledger, linking, payouts, statements
from billing.close import Rules
from billing.estimates import estimate
from billing.money import fmt
from bot.catalog import action, command, opt
from bot.context import Ctx, Services
from bot.errors import UserError
from bot.i18n import N_
from bot.replies import Button, Card, CardField, DeliveryRefused, Form, FormField, Reply, Style
from store.links import LinkRefused, issue_code
from store.models import Gpt, utcnow

log = logging.getLogger(__name__)

REASONS = {
    "not_opted_in": N_("you have not opted in to payouts (`/gpt payout-settings` in a DM with me)"),
    "region": N_("payouts are not available in your region"),
    "banned": N_("your account is suspended"),
}
RULES = N_(
    "One point per person per day they use your GPT successfully; your own use and previews do not count; "
    "one person gives a GPT at most {cap} points per period. The pool is shared in proportion to points. "
    "Balances under {minimum} carry over to the next period."
)
# raised as msgids by store.links and billing.payouts (outside bot/): declared here for translation
RAISED_ELSEWHERE = (
    N_("This link code is not valid. Ask for a new one with `/gpt link` on your other account."),
    N_("This code is yours: enter it with `/gpt link <code>` on your other platform or account."),
    N_("This link code was already used. Ask for a new one with `/gpt link`."),
    N_("This link code has expired. Ask for a new one with `/gpt link`."),
    N_("These identities already share one account."),
    N_("A payout destination is 3 to 200 characters long."),
    N_("To opt in, tell me where to be paid (a destination)."),
    N_("A region is a two-letter country code, such as FR or US."),
)
SendDM = Callable[[str, Reply], Awaitable[object]]
Translate = Callable[..., str]


def span(start: datetime, end: datetime) -> str:
    """'2026-11-01 → 2026-12-01', with times when a boundary is not at midnight (UTC)."""
    midnight = all(moment.hour == moment.minute == moment.second == 0 for moment in (start, end))
    pattern = "%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M:%S"
    return f"{start:{pattern}} → {end:{pattern}} UTC"


# --- /gpt earnings ---------------------------------------------------------------------------

@command("gpt", "earnings", N_("Your points and estimated share this period, and your statements"))
async def earnings(ctx: Ctx) -> None:
    rules = Rules.from_settings(ctx.settings)
    async with ctx.db.session() as session:
        est = await estimate(session, ctx.settings, ctx.account_id, utcnow())
        past = await statements.for_account(session, ctx.account_id, limit=6)
        names = {gpt.id: gpt.name for gpt in [await session.get(Gpt, g.gpt_id) for g in est.gpts] if gpt is not None}
        balance = await ledger.balance(session, ledger.creator(ctx.account_id))
    plan, line, mine = est.plan, est.line, est.gpts
    money = rules.currency
    fields = [
        CardField(ctx._("Pool so far"), ctx._("{pool} (fixed {fixed} + share of revenue {revenue})",
                  pool=fmt(plan.pool, money), fixed=fmt(rules.fixed_pool, money), revenue=fmt(plan.revenue_part, money))),
        CardField(ctx._("Your points"), ctx._("{points} of {total}", points=line.points if line else 0,
                                               total=sum(g.points for g in plan.gpts))),
    ]
    if line is not None and not line.eligible:
        fields.append(CardField(ctx._("Estimated share"), ctx._("none: {reason}", reason=ctx._(REASONS[line.reason]))))
    else:
        fields.append(CardField(ctx._("Estimated share"), fmt(line.share if line else 0, money)))
    fields.append(CardField(ctx._("Balance carried over"), fmt(balance, money)))
    fields += [
        CardField(names.get(g.gpt_id, "?"), ctx._("{points} points · {users} people", points=g.points, users=g.users))
        for g in mine[:20]
    ]
    cards = [Card(
        title=ctx._("Earnings this period ({span})", span=span(plan.starts_at, plan.ends_at)),
        fields=tuple(fields),
        footer=ctx._(RULES, cap=rules.user_cap, minimum=fmt(rules.min_payout, money)),
    )]
    if past:
        cards.append(Card(title=ctx._("Your statements"), description="\n".join(
            _statement_line(ctx._, view) for view in past
        )))
    await ctx.send(Reply(cards=tuple(cards), ephemeral=True))


def _statement_line(_: Translate, view: statements.StatementView) -> str:
    s = view.statement
    text = _("**{span}** · {points} points · share {share}", span=span(view.starts_at, view.ends_at),
             points=s.points, share=fmt(s.share_micros, s.currency))
    if s.payout_micros:
        return text + " · " + _("paid {amount}", amount=fmt(s.payout_micros, s.currency))
    if s.carried_out_micros:
        return text + " · " + _("carried over {amount}", amount=fmt(s.carried_out_micros, s.currency))
    return text


# --- statements in DMs -----------------------------------------------------------------------

def statement_reply(_: Translate, view: statements.StatementView, rules_cap: int) -> Reply:
    """A closed period's statement as its creator reads it in a DM (`_(msgid, **params)`)."""
    s, money = view.statement, view.statement.currency
    fields = [
        CardField(_("Points"), str(s.points)),
        CardField(_("Your share"), fmt(s.share_micros, money)),
        CardField(_("Carried in"), fmt(s.carried_in_micros, money)),
        CardField(_("Paid out"), fmt(s.payout_micros, money)),
        CardField(_("Carried over"), fmt(s.carried_out_micros, money)),
    ]
    fields += [CardField(name, _("{points} points", points=points)) for name, points in view.gpts[:10]]
    if not s.eligible:
        description = _("You were left out of this period's split: {reason}.", reason=_(REASONS.get(s.reason, s.reason)))
    elif s.payout_micros:
        description = _("{amount} is on its way to your payout destination ({mask}).",
                         amount=fmt(s.payout_micros, money), mask=s.destination_mask or "?")
    else:
        description = _("Your balance is under the minimum payout, so it carries over to the next period.")
    return Reply(card=Card(
        title=_("Your statement for {span}", span=span(view.starts_at, view.ends_at)),
        description=description, fields=tuple(fields), footer=_("At most {cap} points per person per GPT.", cap=rules_cap),
    ))


async def pending_statements(services: Services, platform: str, *, limit: int = 100) -> list[tuple[str, Reply, int]]:
    """(user id on `platform`, the DM to send, statement id) for statements not delivered yet."""
    found = []
    async with services.db.reader() as session:
        for recipient in await statements.pending(session, platform=platform, limit=limit):
            view = await statements.get(session, recipient.statement_id)
            if view is None:
                continue

            def tr(msgid: str, /, _locale: str = recipient.locale, **params: object) -> str:
                return services.tr(_locale, msgid, **params)

            found.append((recipient.user_id, statement_reply(tr, view, services.settings.rewards_user_cap), recipient.statement_id))
    return found


async def deliver_statements(services: Services, platform: str, send_dm: SendDM) -> int:
    """Send every pending statement once (claimed before sending); returns how many were sent."""
    sent = 0
    for user_id, reply, statement_id in await pending_statements(services, platform):
        async with services.db.session() as session:
            if not await statements.mark_delivered(session, statement_id):
                continue  # another replica is delivering it
        try:
            await send_dm(user_id, reply)
            sent += 1
        except Exception as exc:  # refused or failed: give the claim back, the next run tries again
            async with services.db.session() as session:
                await statements.unmark_delivered(session, statement_id)
            if isinstance(exc, DeliveryRefused):
                log.info("statement %d: DMs closed on %s; will retry", statement_id, platform)
            else:
                log.exception("statement %d: delivery on %s failed; will retry", statement_id, platform)
    return sent


@dataclass(frozen=True, slots=True)
class StatementDMs:
    """An adapter's statement delivery: `deliver()` once at start (statements of a close that
    happened while it was down), `unregister()` when it stops."""

    deliver: Callable[[], Awaitable[int]]
    unregister: Callable[[], None]


def statement_dms(services: Services, platform: str, send_dm: SendDM) -> StatementDMs:
    """Register the after-close hook that delivers `platform`'s pending statements through `send_dm`.

    The hook delivers after every scheduler run, closes or not, so a statement refused earlier
    (DMs closed) goes out at a later run once the platform accepts it."""

    async def deliver() -> int:
        return await deliver_statements(services, platform, send_dm)

    async def after_close(plans: list[Any]) -> None:
        await deliver()

    hooks: list[Any] = services.extras.setdefault("after_close", [])
    hooks.append(after_close)

    def unregister() -> None:
        if after_close in hooks:
            hooks.remove(after_close)

    return StatementDMs(deliver, unregister)


async def catch_up_statements(dms: StatementDMs, platform: str) -> None:
    """The start-up delivery, for a background task: a failure is logged, the next run retries."""
    try:
        sent = await dms.deliver()
    except Exception:
        log.exception("delivering pending statements on %s failed; the next close retries", platform)
        return
    if sent:
        log.info("delivered %d pending statement(s) on %s", sent, platform)


# --- /gpt payout-settings --------------------------------------------------------------------

def _require_dm(ctx: Ctx) -> None:
    if not ctx.place.is_dm:
        raise UserError("Payout settings are private: use `/gpt payout-settings` in a DM with me. Nothing was saved.")


def _yes_no(value: str) -> bool:
    word = value.strip().lower()
    if word in ("yes", "y", "on", "true", "in", "oui"):
        return True
    if word in ("no", "n", "off", "false", "out", "non"):
        return False
    raise UserError("Answer yes or no to opt in.")


@command("gpt", "payout-settings", N_("Opt in to creator payouts, set your region and where to be paid (DM only)"),
         opt("opt_in", N_("yes or no"), required=False, max_length=5),
         opt("region", N_("Your country, two letters (e.g. FR)"), required=False, max_length=2),
         opt("destination", N_("Where to be paid (e.g. paypal:you@example.com or an IBAN)"), required=False, max_length=200))
async def payout_settings(ctx: Ctx, opt_in: str | None = None, region: str | None = None,
                          destination: str | None = None) -> None:
    _require_dm(ctx)
    if opt_in is None and region is None and destination is None:
        await _show_settings(ctx)
        return
    await _save(ctx, _yes_no(opt_in) if opt_in else None, region, destination)


async def _save(ctx: Ctx, opted_in: bool | None, region: str | None, destination: str | None) -> None:
    key = ctx.settings.rewards_payout_key
    try:
        async with ctx.db.session() as session:
            await payouts.save(session, ctx.account_id, opted_in=opted_in, region=region, destination=destination,
                               key=key.get_secret_value() if key else None)
    except payouts.PayoutError as exc:
        raise UserError(str(exc)) from None
    await _show_settings(ctx, saved=True)


async def _show_settings(ctx: Ctx, *, saved: bool = False) -> None:
    from billing.scoring import ineligible

    async with ctx.db.reader() as session:
        row = await payouts.get(session, ctx.account_id)
        reason = (await ineligible(session, [ctx.account_id], ctx.settings.rewards_eligible_regions))[ctx.account_id]
    fields = (
        CardField(ctx._("Opted in"), ctx._("yes") if row and row.opted_in else ctx._("no")),
        CardField(ctx._("Region"), (row.region if row else "") or "—"),
        CardField(ctx._("Paid to"), (row.destination_mask if row else "") or "—"),
        CardField(ctx._("In the next split"), ctx._("yes") if not reason else ctx._("no: {reason}", reason=ctx._(REASONS[reason]))),
    )
    toggle = (Button(ctx._("Opt out"), "payout-opt:no") if row and row.opted_in
              else Button(ctx._("Opt in"), "payout-opt:yes", Style.PRIMARY))
    await ctx.send(Reply(
        text=ctx._("Saved.") if saved else "",
        card=Card(ctx._("Your payout settings"), fields=fields,
                  footer=ctx._("Only the ends of your payout destination are ever shown.")),
        actions=(Button(ctx._("Edit"), "payout-edit"), toggle), ephemeral=True,
    ))


@action("payout-edit")
async def payout_edit(ctx: Ctx, args: list[str]) -> None:
    _require_dm(ctx)
    await ctx.send(Reply(form=Form("payout-save", ctx._("Payout settings"), (
        FormField("opt_in", ctx._("Opt in (yes or no)"), max_length=5),
        FormField("region", ctx._("Country, two letters"), required=False, max_length=2),
        FormField("destination", ctx._("Where to be paid (leave empty to keep it)"), required=False, max_length=200),
    ))))


@action("payout-save")
async def payout_save(ctx: Ctx, args: list[str]) -> None:
    _require_dm(ctx)
    form = ctx.action.form if ctx.action else {}
    opt_in = (form.get("opt_in") or "").strip()
    await _save(ctx, _yes_no(opt_in) if opt_in else None, form.get("region") or None, form.get("destination") or None)


@action("payout-opt")
async def payout_opt(ctx: Ctx, args: list[str]) -> None:
    _require_dm(ctx)
    await _save(ctx, bool(args) and args[0] == "yes", None, None)


# --- /gpt link -------------------------------------------------------------------------------

@command("gpt", "link", N_("Join your accounts on two platforms: get a code here, enter it there"),
         opt("code", N_("The code from your other account (leave empty to get one)"), required=False, max_length=20))
async def link(ctx: Ctx, code: str | None = None) -> None:
    if not code:
        async with ctx.db.session() as session:
            fresh = await issue_code(session, account_id=ctx.account_id, platform=ctx.actor.platform)
        await ctx.say(
            "Your link code: **{code}**. On your other platform, run `/gpt link {code}` within 15 minutes. "
            "Your GPTs, earnings and ratings will then be in one account.", code=fresh,
        )
        return
    # codes are short enough to type, so guessing is bounded per account: 5 tries per 15 minutes
    from bot import policy

    attempt = await policy.limiter(ctx.services).take(f"link:{ctx.account_id}", capacity=5, per_second=5 / 900)
    if not attempt.allowed:
        raise UserError("Too many link attempts. Please try again in {minutes} minutes.",
                        minutes=max(1, round(attempt.retry_after / 60)))
    try:
        joined = await linking.link_with_code(ctx.db, code=code, account_id=ctx.account_id,
                                              currency=ctx.settings.rewards_currency)
    except LinkRefused as exc:
        raise UserError(exc.msgid) from None
    await ctx.say("Linked: this identity now shares one account with your other one ({gpts} GPT(s) moved over).",
                  gpts=joined.gpts)
