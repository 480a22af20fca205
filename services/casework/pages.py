"""The workbench pages (server-rendered, Dutch first, ``?lang=en`` for English, usable
without JavaScript): sign-in by a one-time link, the work queues, the case page and its
forms. Routes only translate HTTP to the use cases in ``service``; every POST carries the
session's CSRF token, and answers with a redirect (so a reload never repeats an action)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.casework import labels, service
from services.casework.config import CaseworkSettings
from services.casework.dependencies import CaseworkContext, context_of
from shared.contracts import CloseReason
from shared.http import form_fields

router = APIRouter(include_in_schema=False)
SESSION_COOKIE = "sts_consultant"
LANGUAGE_COOKIE = "sts_lang"
TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        labels=labels,
        close_reasons=[r.value for r in CloseReason],
        contact_kinds=service.CONTACT_KINDS,
        contact_outcomes=service.CONTACT_OUTCOMES,
    )
    return env


def _settings(request: Request) -> CaseworkSettings:
    return context_of(request).settings


def _now() -> datetime:
    return datetime.now(UTC)


def _language(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    return asked if asked in labels.LANGUAGES else "nl"


def render(request: Request, page: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    language = _language(request)
    zone = ZoneInfo(_settings(request).timezone)
    template = _environment().get_template(f"{page}.html.j2")
    html = template.render(
        language=language,
        path=request.url.path,
        local=lambda at: at.astimezone(zone).strftime("%d-%m-%Y %H:%M"),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    if request.query_params.get("lang") in labels.LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="lax")
    return response


def _message(request: Request, title: str, text: str, status_code: int) -> HTMLResponse:
    return render(request, "message", status_code, title=title, text=text, consultant=None)


async def _consultant(request: Request) -> Any:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    async with context_of(request).begin() as uow:
        return await uow.cases.session(token, _now())


# Messages, (title, text).
SIGNED_OUT = (
    "Niet aangemeld",
    "Meld u aan met de link die u van de beheerder kreeg (python -m services.casework.cli sign-in-link --email …).",
)
LINK_UNUSABLE = (
    "Deze link werkt niet (meer)",
    "Een aanmeldlink werkt één keer en verloopt. Vraag een nieuwe aan "
    "(python -m services.casework.cli sign-in-link --email …).",
)
FORM_EXPIRED = ("Formulier verlopen", "Laad de pagina opnieuw en probeer het nog eens.")


def _signed_out(request: Request) -> HTMLResponse:
    return _message(request, *SIGNED_OUT, 401)


@router.get("/aanmelden", response_class=HTMLResponse)
async def sign_in(request: Request, token: str = "") -> Response:
    async with context_of(request).begin() as uow:
        signed_in = await service.sign_in(uow, _settings(request), token, _now()) if token else None
    if signed_in is not None:
        return _start_session(request, *signed_in)
    if await _consultant(request) is not None:  # the link was used already, in this browser
        return RedirectResponse("/", status_code=303)
    return _message(request, *LINK_UNUSABLE, 403)


def _start_session(request: Request, session: str, expires: datetime) -> Response:
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        expires=expires,
        httponly=True,
        samesite="lax",
        secure=not _settings(request).insecure_cookies,
    )
    return response


@router.post("/afmelden")
async def sign_out(request: Request) -> Response:
    consultant, form = await _consultant(request), await form_fields(request)
    if consultant is not None and _csrf_ok(consultant, form):
        async with context_of(request).begin() as uow:
            await uow.cases.end_session(request.cookies[SESSION_COOKIE])
    response = _message(request, "Afgemeld", "U bent afgemeld.", 200)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
async def workbench(request: Request) -> HTMLResponse:
    consultant = await _consultant(request)
    if consultant is None:
        return _signed_out(request)
    async with context_of(request).begin() as uow:
        view = await service.workbench(uow, _settings(request), consultant, _now())
    return render(request, "workbench", consultant=consultant, hours=_settings(request).crisis_deadline_hours, **view)


@router.get("/zaken/{case_id}", response_class=HTMLResponse)
async def case_page(request: Request, case_id: UUID) -> HTMLResponse:
    consultant = await _consultant(request)
    if consultant is None:
        return _signed_out(request)
    return await _case(request, consultant, case_id)


async def _case(
    request: Request, consultant: Any, case_id: UUID, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    try:
        async with context_of(request).begin() as uow:
            view = await service.case_page(uow, _settings(request), consultant, case_id, _now())
    except service.Refused as refused:
        return _message(request, "Niet gevonden", str(refused), refused.status)
    return render(
        request,
        "case",
        status_code,
        consultant=consultant,
        error=error,
        done=request.query_params.get("gedaan"),
        hours=_settings(request).crisis_deadline_hours,
        **view,
    )


def _csrf_ok(consultant: Any, form: dict[str, list[str]]) -> bool:
    given = (form.get("csrf") or [""])[0]
    return hmac.compare_digest(given.encode(), consultant.csrf_token.encode())


def _one(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0].strip()


Action = Callable[
    [service.CaseworkUnitOfWork, CaseworkContext, Any, UUID, dict[str, list[str]], datetime], Awaitable[None]
]


def _answers(form: dict[str, list[str]]) -> list[int | None]:
    count = int(_one(form, "items") or 0)
    return [
        int(v) if (v := _one(form, f"item{i}")).lstrip("-").isdigit() else None for i in range(1, min(count, 100) + 1)
    ]


@dataclass(frozen=True)
class CaseForm:
    """A form of the case page: its use case, and what the case page then confirms (``?gedaan=``)."""

    run: Action
    done: str


# Each form of the case page, by the last part of the path it posts to.
FORMS: dict[str, CaseForm] = {
    "contact": CaseForm(
        lambda uow, ctx, who, case_id, form, now: service.record_contact(
            uow, ctx.settings, who, case_id, _one(form, "kind"), _one(form, "outcome"), _one(form, "note") or None, now
        ),
        "contact",
    ),
    "notitie": CaseForm(
        lambda uow, ctx, who, case_id, form, now: service.add_note(
            uow, ctx.settings, who, case_id, _one(form, "note"), now
        ),
        "notitie",
    ),
    "antwoorden": CaseForm(
        lambda uow, ctx, who, case_id, form, now: service.record_answers(
            uow, ctx.settings, ctx.keys, who, case_id, _one(form, "instrument"), _answers(form), now
        ),
        "antwoorden",
    ),
    "wmo": CaseForm(
        lambda uow, ctx, who, case_id, form, now: service.hand_off(
            uow, ctx.settings, who, case_id, _one(form, "note") or None, now
        ),
        "wmo",
    ),
    "afsluiten": CaseForm(
        lambda uow, ctx, who, case_id, form, now: service.close(
            uow, ctx.settings, who, case_id, _one(form, "reason"), now
        ),
        "afgesloten",
    ),
}


@router.post("/zaken/{case_id}/{form_name}")
async def act(request: Request, case_id: UUID, form_name: str) -> Response:
    """Check the session and CSRF token, run the form's use case in one transaction, then redirect."""
    if (case_form := FORMS.get(form_name)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    consultant = await _consultant(request)
    if consultant is None:
        return _signed_out(request)
    form, context = await form_fields(request), context_of(request)
    if not _csrf_ok(consultant, form):
        return _message(request, *FORM_EXPIRED, 403)
    try:
        async with context.begin() as uow:
            await case_form.run(uow, context, consultant, case_id, form, _now())
    except service.Refused as refused:
        return await _case(request, consultant, case_id, error=str(refused), status_code=refused.status)
    return RedirectResponse(f"/zaken/{case_id}?gedaan={case_form.done}", status_code=303)
