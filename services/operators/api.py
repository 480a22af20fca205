"""The operator console: sign-in by link, the live page (server-rendered panels, refreshed by
a small script or, without JavaScript, by the page itself), dead letters inspected and
replayed through the service that owns them; ``create_app`` builds the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, FastAPI, Path as PathParam, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.operators import service
from services.operators.config import OperatorsSettings
from services.operators.labels import LABELS, LANGUAGES
from services.operators.monitor import Monitor, ServiceUnavailable
from shared.service import Runtime, create_runtime, create_service_app

HERE = Path(__file__).parent
MIGRATIONS = HERE / "migrations"
SESSION_COOKIE = "sts_operator"
ISSUE_HINT = 'python -m services.operators.cli issue-operator --name "<naam>"'
_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)


class NotSignedIn(Exception):
    """The request has no valid operator session."""


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _monitor(request: Request) -> Monitor:
    return request.app.state.monitor


def language(request: Request, lang: Annotated[str | None, Query(pattern="^(nl|en)$")] = None) -> str:
    """``?lang=`` first, then the remembered choice, then Dutch."""
    return lang or (c if (c := request.cookies.get("lang")) in LANGUAGES else "nl")


async def operator(request: Request) -> str:
    token = request.cookies.get(SESSION_COOKIE)
    name = await service.operator_for(_runtime(request).pool, token) if token else None
    if name is None:
        raise NotSignedIn()
    return name


Lang = Annotated[str, Depends(language)]
Operator = Annotated[str, Depends(operator)]
ServiceName = Annotated[str, PathParam(pattern="^[a-z]+$", max_length=40)]


def page(template: str, lang: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(lang=lang, t=LABELS[lang], **context)
    response = HTMLResponse(html, status_code=status_code)
    response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
    return response


def register_routes(app: FastAPI) -> None:
    """The console: pages for an operator's browser (a session cookie, HTML answers), so not
    in the OpenAPI document, which describes the service's API."""

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> HTMLResponse:
        asked = request.query_params.get("lang")
        lang = language(request, asked if asked in LANGUAGES else None)
        return page("message.html.j2", lang, 401, message=LABELS[lang]["sign_in_needed"], hint=ISSUE_HINT)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/console", status_code=303)

    @app.get("/sign-in", include_in_schema=False, summary="Exchange a sign-in link for a session cookie")
    async def sign_in(request: Request, lang: Lang, token: Annotated[str, Query(min_length=8, max_length=200)]) -> Response:
        session = await service.sign_in(_runtime(request).pool, request.app.state.settings, token)
        if session is None:
            if (held := request.cookies.get(SESSION_COOKIE)) and await service.operator_for(_runtime(request).pool, held):
                return RedirectResponse(f"/console?lang={lang}", status_code=303)  # a used link, already signed in
            return page("message.html.j2", lang, 401, message=LABELS[lang]["sign_in_failed"], hint=ISSUE_HINT)
        response = RedirectResponse(f"/console?lang={lang}", status_code=303)
        # HttpOnly: scripts never see it; SameSite=Lax: another site cannot post a replay with it.
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax",
                            max_age=int(request.app.state.settings.session_hours * 3600))
        return response

    @app.post("/sign-out", include_in_schema=False, summary="End the session")
    async def sign_out(request: Request, lang: Lang) -> Response:
        if token := request.cookies.get(SESSION_COOKIE):
            await service.sign_out(_runtime(request).pool, token)
        response = page("message.html.j2", lang, message=LABELS[lang]["signed_out"])
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/console", include_in_schema=False, summary="The console page", response_class=HTMLResponse)
    async def console(request: Request, lang: Lang, name: Operator,
                      replayed: str | None = None, failed: str | None = None) -> HTMLResponse:
        notice, kind = _notice(lang, replayed, failed)
        overview = await service.overview(_monitor(request))
        return page("console.html.j2", lang, operator=name, o=overview, notice=notice, notice_kind=kind)

    @app.get("/console/panels", include_in_schema=False, summary="The panels as HTML, for live updates",
             response_class=HTMLResponse)
    async def panels(request: Request, lang: Lang, name: Operator) -> HTMLResponse:
        return page("panels.html.j2", lang, o=await service.overview(_monitor(request)))

    @app.get("/console/series.json", include_in_schema=False, summary="The charts' data")
    async def series(request: Request, name: Operator) -> JSONResponse:
        return JSONResponse(service.chart_series(_monitor(request)))

    @app.get("/console/dead-letters/{service_name}/{dead_letter_id}", include_in_schema=False,
             summary="One dead letter in full", response_class=HTMLResponse)
    async def dead_letter(request: Request, lang: Lang, name: Operator, service_name: ServiceName,
                          dead_letter_id: int) -> HTMLResponse:
        try:
            found = await service.inspect_dead_letter(_monitor(request), service_name, dead_letter_id)
        except (KeyError, LookupError) as exc:
            return page("message.html.j2", lang, 404, operator=name, message=str(exc))
        return page("dead_letter.html.j2", lang, operator=name, service=service_name, d=found,
                    headers=json.dumps(found.get("headers"), indent=2, ensure_ascii=False))

    @app.post("/console/dead-letters/{service_name}/{dead_letter_id}/replay", include_in_schema=False,
              summary="Replay a dead letter (and what is parked behind it) through its service")
    async def replay(request: Request, lang: Lang, name: Operator, service_name: ServiceName,
                     dead_letter_id: int) -> RedirectResponse:
        try:
            ids = await service.replay_dead_letter(_monitor(request), service_name, dead_letter_id)
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
    runtime = create_runtime(settings)
    monitor = Monitor(settings)
    app = create_service_app(
        runtime, title="signal-to-support: operators", migrations=MIGRATIONS, produces=[],
        workers=[lambda rt: monitor],
        description="The operator console: every service's health, flow and backlog, and their dead letters.",
    )
    app.state.settings = settings
    app.state.monitor = monitor
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    register_routes(app)
    return app
