"""The pages behind the signed links in messages: a provider accepts or declines a referral
(``/r/{id}/accept``, ``/r/{id}/decline``), a caregiver answers the follow-up question
(``/f/{id}/yes``, ``/f/{id}/no``). GET shows what will happen, POST does it: following a
link never acts on its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from services.notify import service
from services.notify.dependencies import Context
from services.notify.domain import Referral
from services.notify.links import ACCEPT, DECLINE, NO, YES
from services.notify.templates import render_page
from shared.contracts import RejectionReason

router = APIRouter(include_in_schema=False)

Expires = Annotated[int, Query(alias="exp")]
Signature = Annotated[str, Query(alias="sig", max_length=128)]
Action = Literal["accept", "decline"]
Answer = Literal["yes", "no"]


@dataclass(frozen=True)
class Message:
    """A page that only says something: what happened, and what to do."""

    title: str
    text: str
    status_code: int


LINK_REFUSED = Message(
    "Deze link werkt niet (meer)",
    "De link is ongeldig of verlopen. Gebruik de nieuwste e-mail, of neem contact op met Signaal naar Steun.",
    403,
)
UNKNOWN_REFERRAL = Message("Onbekende aanmelding", "Deze aanmelding bestaat niet (meer).", 404)
UNKNOWN_QUESTION = Message("Onbekende vraag", "Deze vraag bestaat niet (meer).", 404)
# What the referral page says after an answer.
RECORDED = "Dank u wel, uw antwoord is vastgelegd."
ALREADY_RECORDED = "Dit antwoord was al vastgelegd; er is niets veranderd."
ALREADY_OTHER = "Deze aanmelding heeft al een andere status; er is niets veranderd."


def render_message(message: Message) -> HTMLResponse:
    return HTMLResponse(
        render_page("message", "nl", title=message.title, text=message.text), status_code=message.status_code
    )


def referral_link(ctx: Context, referral_id: UUID, action: Action, exp: Expires, sig: Signature) -> bool:
    """Whether the link's signature is valid for this referral and action, and unexpired."""
    return ctx.links.valid(ACCEPT if action == "accept" else DECLINE, referral_id, exp, sig, ctx.clock.now())


def follow_up_link(ctx: Context, follow_up_id: UUID, answer: Answer, exp: Expires, sig: Signature) -> bool:
    """Whether the link's signature is valid for this question and answer, and unexpired."""
    return ctx.links.valid(YES if answer == "yes" else NO, follow_up_id, exp, sig, ctx.clock.now())


ReferralLink = Annotated[bool, Depends(referral_link)]
FollowUpLink = Annotated[bool, Depends(follow_up_link)]


async def _form(request: Request) -> dict[str, str]:
    # A plain urlencoded form; parsed here rather than adding a multipart dependency.
    fields = parse_qs((await request.body()).decode(errors="replace"))
    return {key: values[0] for key, values in fields.items()}


def _referral_page(
    referral: Referral, action: str, *, reason: str | None = None, outcome: str | None = None, status_code: int = 200
) -> HTMLResponse:
    page = render_page("referral", "nl", referral=referral, action=action, reason=reason, outcome=outcome)
    return HTMLResponse(page, status_code=status_code)


@router.get("/r/{referral_id}/{action}", response_class=HTMLResponse)
async def referral_page(
    ctx: Context,
    valid: ReferralLink,
    referral_id: UUID,
    action: Action,
    reason: RejectionReason = RejectionReason.NO_CAPACITY,
) -> HTMLResponse:
    if not valid:
        return render_message(LINK_REFUSED)
    async with ctx.begin() as uow:
        referral = await service.open_referral(uow, referral_id)
    if referral is None:
        return render_message(UNKNOWN_REFERRAL)
    return _referral_page(referral, action, reason=reason.value)


@router.post("/r/{referral_id}/{action}", response_class=HTMLResponse)
async def referral_answer(
    request: Request, ctx: Context, valid: ReferralLink, referral_id: UUID, action: Action
) -> HTMLResponse:
    if not valid:
        return render_message(LINK_REFUSED)
    form = await _form(request)
    try:
        reason = RejectionReason(form.get("reason", "other")) if action == "decline" else None
    except ValueError:
        return render_message(Message("Onbekende reden", f"{form.get('reason')!r} is geen reden die wij kennen.", 422))
    note = (form.get("note") or "").strip()[:2000] or None
    async with ctx.begin() as uow:
        answered = await service.answer_referral(uow, ctx, referral_id, action == "accept", reason, note)
    return _answered(answered, action)


def _answered(answered: service.Answered, action: str) -> HTMLResponse:
    if answered.before is None:
        return render_message(UNKNOWN_REFERRAL)
    if answered.illegal or answered.after is None:
        return _referral_page(answered.before, action, outcome=ALREADY_OTHER, status_code=409)
    return _referral_page(answered.after, action, outcome=RECORDED if answered.changed else ALREADY_RECORDED)


@router.get("/f/{follow_up_id}/{answer}", response_class=HTMLResponse)
async def follow_up_page(ctx: Context, valid: FollowUpLink, follow_up_id: UUID, answer: Answer) -> HTMLResponse:
    if not valid:
        return render_message(LINK_REFUSED)
    async with ctx.begin() as uow:
        follow_up = await service.open_follow_up(uow, follow_up_id)
    if follow_up is None or follow_up.signal is None:
        return render_message(UNKNOWN_QUESTION)
    language = follow_up.signal.caregiver.preferred_language.value
    return HTMLResponse(render_page("follow_up", language, arrived=answer == "yes", recorded=None))


@router.post("/f/{follow_up_id}/{answer}", response_class=HTMLResponse)
async def follow_up_answer(ctx: Context, valid: FollowUpLink, follow_up_id: UUID, answer: Answer) -> HTMLResponse:
    if not valid:
        return render_message(LINK_REFUSED)
    async with ctx.begin() as uow:
        answered = await service.answer_follow_up(uow, ctx, follow_up_id, answer == "yes")
    if answered is None:
        return render_message(UNKNOWN_QUESTION)
    return HTMLResponse(
        render_page("follow_up", answered.language, arrived=answer == "yes", recorded=answered.recorded)
    )
