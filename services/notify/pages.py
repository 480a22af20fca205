"""The pages behind the signed links in messages: a provider accepts or declines a referral
(``/r/{id}/accept``, ``/r/{id}/decline``), a caregiver answers the follow-up question
(``/f/{id}/yes``, ``/f/{id}/no``). GET shows what will happen, POST does it: following a
link never acts on its own."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.notify import follow_ups, repository, service
from services.notify.dependencies import begin, context_of
from services.notify.links import ACCEPT, DECLINE, NO, YES
from services.notify.service import CAREGIVER_LINK, provider_actor
from services.notify.templates import render_page
from shared.access_log import Action
from shared.contracts import RejectionReason, SignalReceived

router = APIRouter(include_in_schema=False)

Expires = Annotated[int, Query(alias="exp")]
Signature = Annotated[str, Query(alias="sig", max_length=128)]


def _message(title: str, text: str, status_code: int) -> HTMLResponse:
    return HTMLResponse(render_page("message", "nl", title=title, text=text), status_code=status_code)


def _link_refused() -> HTMLResponse:
    return _message(
        "Deze link werkt niet (meer)",
        "De link is ongeldig of verlopen. Gebruik de nieuwste e-mail, of neem contact op met Signaal naar Steun.",
        403,
    )


async def _form(request: Request) -> dict[str, str]:
    # A plain urlencoded form; parsed here rather than adding a multipart dependency.
    fields = parse_qs((await request.body()).decode(errors="replace"))
    return {key: values[0] for key, values in fields.items()}


@router.get("/r/{referral_id}/{action}", response_class=HTMLResponse)
async def referral_page(
    request: Request,
    referral_id: UUID,
    action: Literal["accept", "decline"],
    exp: Expires,
    sig: Signature,
    reason: RejectionReason = RejectionReason.NO_CAPACITY,
) -> HTMLResponse:
    ctx = context_of(request)
    if not ctx.links.valid(ACCEPT if action == "accept" else DECLINE, referral_id, exp, sig, ctx.clock.now()):
        return _link_refused()
    async with begin(request) as uow:
        referral = await repository.referral(uow.conn, referral_id)
        await uow.log_access(
            provider_actor(referral), Action.READ, "referral", referral_id, outcome="ok" if referral else "not_found"
        )
    if referral is None:
        return _message("Onbekende aanmelding", "Deze aanmelding bestaat niet (meer).", 404)
    return HTMLResponse(
        render_page("referral", "nl", referral=referral, action=action, reason=reason.value, outcome=None)
    )


@router.post("/r/{referral_id}/{action}", response_class=HTMLResponse)
async def referral_answer(
    request: Request,
    referral_id: UUID,
    action: Literal["accept", "decline"],
    exp: Expires,
    sig: Signature,
) -> HTMLResponse:
    ctx = context_of(request)
    if not ctx.links.valid(ACCEPT if action == "accept" else DECLINE, referral_id, exp, sig, ctx.clock.now()):
        return _link_refused()
    form = await _form(request)
    try:
        reason = RejectionReason(form.get("reason", "other")) if action == "decline" else None
    except ValueError:
        return _message("Onbekende reden", f"{form.get('reason')!r} is geen reden die wij kennen.", 422)
    async with begin(request) as uow:
        answered = await service.answer_referral(
            uow, ctx, referral_id, action == "accept", reason, (form.get("note") or "").strip()[:2000] or None
        )
    return _answered(answered, action)


def _answered(answered: service.Answered, action: str) -> HTMLResponse:
    if answered.before is None:
        return _message("Onbekende aanmelding", "Deze aanmelding bestaat niet (meer).", 404)
    if answered.illegal:
        return HTMLResponse(
            render_page(
                "referral",
                "nl",
                referral=answered.before,
                action=action,
                reason=None,
                outcome="Deze aanmelding heeft al een andere status; er is niets veranderd.",
            ),
            status_code=409,
        )
    outcome = (
        "Dank u wel, uw antwoord is vastgelegd."
        if answered.changed
        else "Dit antwoord was al vastgelegd; er is niets veranderd."
    )
    return HTMLResponse(
        render_page("referral", "nl", referral=answered.after, action=action, reason=None, outcome=outcome)
    )


async def _follow_up_language(request: Request, follow_up_id: UUID) -> str | None:
    async with begin(request) as uow:
        row = await repository.follow_up(uow.conn, follow_up_id)
    if row is None or row["signal"] is None:
        return None
    return SignalReceived.model_validate(row["signal"]).caregiver.preferred_language.value


@router.get("/f/{follow_up_id}/{answer}", response_class=HTMLResponse)
async def follow_up_page(
    request: Request,
    follow_up_id: UUID,
    answer: Literal["yes", "no"],
    exp: Expires,
    sig: Signature,
) -> HTMLResponse:
    ctx = context_of(request)
    if not ctx.links.valid(YES if answer == "yes" else NO, follow_up_id, exp, sig, ctx.clock.now()):
        return _link_refused()
    language = await _follow_up_language(request, follow_up_id)
    async with begin(request) as uow:
        await uow.log_access(
            CAREGIVER_LINK, Action.READ, "follow_up", follow_up_id, outcome="ok" if language else "not_found"
        )
    if language is None:
        return _message("Onbekende vraag", "Deze vraag bestaat niet (meer).", 404)
    return HTMLResponse(render_page("follow_up", language, arrived=answer == "yes", recorded=None))


@router.post("/f/{follow_up_id}/{answer}", response_class=HTMLResponse)
async def follow_up_answer(
    request: Request,
    follow_up_id: UUID,
    answer: Literal["yes", "no"],
    exp: Expires,
    sig: Signature,
) -> HTMLResponse:
    ctx = context_of(request)
    if not ctx.links.valid(YES if answer == "yes" else NO, follow_up_id, exp, sig, ctx.clock.now()):
        return _link_refused()
    language = await _follow_up_language(request, follow_up_id)
    async with begin(request) as uow:
        recorded = await follow_ups.record_answer(uow.conn, ctx, follow_up_id, answer == "yes")
        await uow.log_access(
            CAREGIVER_LINK,
            Action.UPDATE,
            "follow_up",
            follow_up_id,
            outcome="ok" if recorded is not None else "not_found",
        )
    if recorded is None or language is None:
        return _message("Onbekende vraag", "Deze vraag bestaat niet (meer).", 404)
    return HTMLResponse(render_page("follow_up", language, arrived=answer == "yes", recorded=recorded))
