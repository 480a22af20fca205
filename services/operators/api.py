"""The operator console: sign-in by link, the live page (server-rendered panels, refreshed by
a small script or, without JavaScript, by the page itself), dead letters inspected and
replayed through the service that owns them; ``create_app`` builds the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.operators import service
from services.operators.config import OperatorsSettings
from services.operators.dependencies import (
    SESSION_COOKIE,
    Context,
    Lang,
    NotSignedIn,
    Operator,
    OperatorsContext,
    language,
    signed_in_operator,
)
from services.operators.labels import LABELS, LANGUAGES
from services.operators.monitor import Monitor, ServiceUnavailable
from shared.application import with_context
from shared.service import create_runtime, create_service_app

HERE = Path(__file__).parent
MIGRATIONS = HERE / "migrations"
ISSUE_HINT = 'python -m services.operators.cli issue-operator --name "<naam>"'
_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
ServiceName = Annotated[str, PathParam(pattern="^[a-z]+$", max_length=40)]
router = APIRouter()


def page(template: str, lang: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(lang=lang, t=LABELS[lang], **context)
    response = HTMLResponse(html, status_code=status_code)
    response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
    return response


async def not_signed_in(request: Request, exc: NotSignedIn) -> HTMLResponse:
    asked = request.query_params.get("lang")
    lang = language(request, asked if asked in LANGUAGES else None)
    return page("message.html.j2", lang, 401, message=LABELS[lang]["sign_in_needed"], hint=ISSUE_HINT)


@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    return RedirectResponse("/console", status_code=303)


@router.get("/sign-in", include_in_schema=False, summary="Exchange a sign-in link for a session cookie")
async def sign_in(
    request: Request, context: Context, lang: Lang, token: Annotated[str, Query(min_length=8, max_length=200)]
) -> Response:
    async with context.begin() as uow:
        session = await service.sign_in(uow, context.settings, token)
    if session is None:
        if await signed_in_operator(context, request.cookies.get(SESSION_COOKIE)):
            return RedirectResponse(f"/console?lang={lang}", status_code=303)  # a used link, already signed in
        return page("message.html.j2", lang, 401, message=LABELS[lang]["sign_in_failed"], hint=ISSUE_HINT)
    response = RedirectResponse(f"/console?lang={lang}", status_code=303)
    # HttpOnly: scripts never see it; SameSite=Lax: another site cannot post a replay with it.
    response.set_cookie(
        SESSION_COOKIE, session, httponly=True, samesite="lax", max_age=int(context.settings.session_hours * 3600)
    )
    return response


@router.post("/sign-out", include_in_schema=False, summary="End the session")
async def sign_out(request: Request, context: Context, lang: Lang) -> Response:
    if token := request.cookies.get(SESSION_COOKIE):
        async with context.begin() as uow:
            await service.sign_out(uow, token)
    response = page("message.html.j2", lang, message=LABELS[lang]["signed_out"])
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/console", include_in_schema=False, summary="The console page", response_class=HTMLResponse)
async def console(
    context: Context, lang: Lang, name: Operator, replayed: str | None = None, failed: str | None = None
) -> HTMLResponse:
    notice, kind = _notice(lang, replayed, failed)
    overview = await service.overview(context.monitor)
    return page("console.html.j2", lang, operator=name, o=overview, notice=notice, notice_kind=kind)


@router.get(
    "/console/panels",
    include_in_schema=False,
    summary="The panels as HTML, for live updates",
    response_class=HTMLResponse,
)
async def panels(context: Context, lang: Lang, name: Operator) -> HTMLResponse:
    return page("panels.html.j2", lang, o=await service.overview(context.monitor))


@router.get("/console/series.json", include_in_schema=False, summary="The charts' data")
async def series(context: Context, name: Operator) -> JSONResponse:
    return JSONResponse(service.chart_series(context.monitor))


@router.get(
    "/console/dead-letters/{service_name}/{dead_letter_id}",
    include_in_schema=False,
    summary="One dead letter in full",
    response_class=HTMLResponse,
)
async def dead_letter(
    context: Context, lang: Lang, name: Operator, service_name: ServiceName, dead_letter_id: int
) -> HTMLResponse:
    try:
        found = await service.inspect_dead_letter(context.monitor, service_name, dead_letter_id)
    except (KeyError, LookupError) as exc:
        return page("message.html.j2", lang, 404, operator=name, message=str(exc))
    return page(
        "dead_letter.html.j2",
        lang,
        operator=name,
        service=service_name,
        d=found,
        headers=json.dumps(found.get("headers"), indent=2, ensure_ascii=False),
    )


@router.post(
    "/console/dead-letters/{service_name}/{dead_letter_id}/replay",
    include_in_schema=False,
    summary="Replay a dead letter (and what is parked behind it) through its service",
)
async def replay(
    context: Context, lang: Lang, name: Operator, service_name: ServiceName, dead_letter_id: int
) -> RedirectResponse:
    try:
        ids = await service.replay_dead_letter(context.monitor, service_name, dead_letter_id)
        outcome = f"replayed={service_name}:{','.join(map(str, ids))}"
    except (KeyError, LookupError, ServiceUnavailable) as exc:
        outcome = f"failed={service_name}:{dead_letter_id}:{str(exc)[:200]}"
    # Post/redirect/get: a reload does not replay again.
    return RedirectResponse(f"/console?lang={lang}&{_query(outcome)}#dead-letters", status_code=303)


def _query(outcome: str) -> str:
    from urllib.parse import quote

    key, value = outcome.split("=", 1)
    return f"{key}={quote(value)}"


def _notice(lang: str, replayed: str | None, failed: str | None) -> tuple[str | None, str]:
    t = LABELS[lang]
    if replayed:
        return f"{t['replayed']}: {replayed}", "done"
    if failed:
        return f"{t['replay_failed']}: {failed}", "failed"
    return None, ""


def create_app(settings: OperatorsSettings | None = None) -> FastAPI:
    settings = settings or OperatorsSettings()
    ctx = OperatorsContext(settings, create_runtime(settings), Monitor(settings))
    app = create_service_app(
        ctx.runtime,
        description="The operator console: every service's health, flow and backlog, and their dead letters.",
        migrations=MIGRATIONS,
        produces=[],
        workers=[lambda _: ctx.monitor],
    )
    app.add_exception_handler(NotSignedIn, not_signed_in)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return with_context(app, ctx, router)
