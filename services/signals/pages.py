"""The front doors of the signals service, server-rendered (``shared.pages``):

- the signal form for professionals (``/melden``): signed in with the organisation's key or
  a one-time sign-in link, kept as a signed HttpOnly SameSite session cookie (never the
  key), a CSRF token on every POST, and the signal's status page, refreshing itself;
- self-referral (``/aanmelden``) for caregivers and a resident's concern about someone
  (``/aanmelden/zorg``): double opt-in by e-mail before anything enters the pipeline;
- the caregiver's own status page (``/mijn/{id}``) behind a signed link.

Routes only translate between HTTP and the use cases in ``service``."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.signals import domain, forms, service, sessions
from services.signals.config import SignalsSettings
from services.signals.dependencies import context_of
from services.signals.domain import Organisation
from services.signals.schemas import SignalIn
from services.signals.service import SignalsUnitOfWork
from shared.instruments import load_catalogue
from shared.municipalities import municipalities
from shared.pages import Pages, form_fields, language_of, translator, with_language

router = APIRouter(include_in_schema=False)
pages = Pages(Path(__file__).parent / "templates")
STATUS_LINK_DAYS = 365


def _settings(request: Request) -> SignalsSettings:
    return context_of(request).settings


def _secret(request: Request) -> str:
    return _settings(request).page_secret.get_secret_value()


def _begin(request: Request) -> AbstractAsyncContextManager[SignalsUnitOfWork]:
    return SignalsUnitOfWork.begin(context_of(request).pool)


def public_url(request: Request) -> str:
    return (_settings(request).public_url or str(request.base_url)).rstrip("/")


def caregiver_status_url(base_url: str, secret: str, signal_id: UUID, now: float) -> str:
    expires = int(now) + STATUS_LINK_DAYS * 86400
    return f"{base_url}/mijn/{signal_id}?exp={expires}&sig={sessions.status_signature(secret, signal_id, expires)}"


def _common() -> dict[str, Any]:
    return {
        "ediz": load_catalogue().get(forms.EDIZ),
        "municipalities": list(municipalities().values()),
        "observations": forms.OBSERVATIONS,
        "tasks": forms.TASKS,
        "efforts": forms.EFFORTS,
        "contact": forms.CONTACT,
        "urgencies": forms.URGENCY,
        "source_kinds": forms.SOURCE_KINDS,
    }


# A text of a page, (Dutch, English).
Text = tuple[str, str]


@dataclass(frozen=True)
class Message:
    """A page that only tells something: its title and text."""

    title: Text
    text: Text


def _message(request: Request, message: Message, status_code: int) -> HTMLResponse:
    t = translator(language_of(request))
    return pages.render(request, "message.html.j2", status_code, title=t(*message.title), text=t(*message.text))


KEY_UNKNOWN = ("Deze sleutel kennen wij niet (of hij is ingetrokken).", "We do not know this key (or it was revoked).")
SIGN_IN_LINK_UNUSABLE = Message(
    ("Deze inloglink werkt niet (meer)", "This sign-in link does not work (any more)"),
    (
        "Een inloglink werkt één keer en verloopt. Log in met de sleutel van uw organisatie.",
        "A sign-in link works once and expires. Sign in with your organisation's key.",
    ),
)
FORM_EXPIRED = Message(
    ("Formulier verlopen", "Form expired"),
    ("Open het formulier opnieuw en verstuur het nog eens.", "Open the form again and resend it."),
)
UNKNOWN_SIGNAL = Message(
    ("Onbekende melding", "Unknown signal"),
    ("Deze melding bestaat niet voor uw organisatie.", "No such signal for your organisation."),
)
EMAIL_MISSING = (
    "e-mail: vul uw e-mailadres in; u krijgt een link om uw aanmelding te bevestigen",
    "e-mail: fill in your e-mail address; you will get a link to confirm",
)
RATE_LIMITED = Message(
    ("Even geduld", "Please wait"),
    (
        "U heeft het afgelopen uur al een paar keer iets verstuurd. Probeer het over een uur opnieuw.",
        "You sent several forms in the last hour. Please try again in an hour.",
    ),
)
CHECK_YOUR_EMAIL = Message(
    ("Kijk in uw e-mail", "Check your e-mail"),
    (
        "Wij hebben u een e-mail gestuurd met een link. Pas als u op die link klikt en bevestigt, gaan "
        "wij met uw aanmelding aan de slag. Bevestigt u niet binnen een dag, dan wissen wij wat u "
        "invulde.",
        "We sent you an e-mail with a link. Only when you follow it and confirm do we start. "
        "If you do not confirm within a day, we delete what you filled in.",
    ),
)
CONFIRM_LINK_UNUSABLE = Message(
    ("Deze link werkt niet (meer)", "This link does not work (any more)"),
    (
        "De link is onbekend of ouder dan een dag; wat u invulde is dan al gewist. Vul het formulier opnieuw in.",
        "The link is unknown or older than a day; what you filled in has been deleted. Please fill in the form again.",
    ),
)
CONCERN_PASSED_ON = Message(
    ("Dank u wel", "Thank you"),
    (
        "Uw zorg is doorgegeven aan de mantelzorgconsulent van de gemeente. Die neemt de situatie "
        "zorgvuldig op; de persoon om wie het gaat krijgt van ons geen bericht.",
        "Your concern has been passed to the municipality's caregiver consultant, who will look into "
        "it carefully; the person concerned gets no message from us.",
    ),
)
STATUS_LINK_REFUSED = Message(
    ("Deze link werkt niet (meer)", "This link does not work (any more)"),
    ("Gebruik de link uit ons nieuwste bericht.", "Use the link in our latest message."),
)
NOTHING_ON_RECORD = Message(
    ("Niets (meer) bekend", "Nothing (left) on record"),
    ("Over deze aanmelding bewaren wij niets (meer).", "We keep nothing (any more) about this."),
)
BEING_ERASED = Message(
    ("Uw gegevens worden gewist", "Your data is being erased"),
    (
        "Wij wissen uw aanmelding en alles wat daaruit volgde, in alle onderdelen van Signaal naar Steun. "
        "U krijgt hierover geen berichten meer.",
        "We erase your referral and everything that followed from it, in every part of Signal to "
        "Support. You will get no more messages about it.",
    ),
)


# --- the signal form ---------------------------------------------------------------------


async def _signed_in(request: Request) -> tuple[Organisation, str] | None:
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    organisation_id = sessions.read_session(_secret(request), cookie, time.time())
    if organisation_id is None or cookie is None:
        return None
    async with _begin(request) as uow:
        organisation = await uow.signals.organisation(organisation_id)
    return (organisation, cookie) if organisation else None


def _start_session(request: Request, organisation_id: UUID) -> Response:
    response = RedirectResponse(with_language("/melden", language_of(request)), status_code=303)
    hours = _settings(request).session_hours
    value = sessions.session_value(_secret(request), organisation_id, int(time.time() + hours * 3600))
    response.set_cookie(
        sessions.SESSION_COOKIE,
        value,
        max_age=int(hours * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/melden",
    )
    return response


@router.get("/melden/inloggen", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return pages.render(request, "login.html.j2", error=None)


@router.post("/melden/inloggen")
async def login(request: Request) -> Response:
    key = forms.one(await form_fields(request), "api_key") or ""
    async with _begin(request) as uow:
        organisation = await uow.signals.organisation_for_key(key) if key else None
    if organisation is None:
        return pages.render(request, "login.html.j2", 401, error=translator(language_of(request))(*KEY_UNKNOWN))
    return _start_session(request, organisation.id)


@router.get("/melden/link/{token}")
async def sign_in_link(request: Request, token: str) -> Response:
    async with _begin(request) as uow:
        organisation_id = await uow.signals.use_sign_in_token(sessions.digest(token))
    if organisation_id is None:
        return _message(request, SIGN_IN_LINK_UNUSABLE, 403)
    return _start_session(request, organisation_id)


@router.post("/melden/uitloggen")
async def logout(request: Request) -> Response:
    response = _to_login(request)
    response.delete_cookie(sessions.SESSION_COOKIE, path="/melden")
    return response


def _to_login(request: Request) -> Response:
    return RedirectResponse(with_language("/melden/inloggen", language_of(request)), status_code=303)


@router.get("/melden", response_class=HTMLResponse)
async def signal_form(request: Request) -> Response:
    if (signed_in := await _signed_in(request)) is None:
        return _to_login(request)
    organisation, cookie = signed_in
    return _form_page(request, organisation, cookie, {}, [], 200)


def _form_page(
    request: Request, organisation: Organisation, cookie: str, values: forms.Form, errors: list[str], status_code: int
) -> HTMLResponse:
    return pages.render(
        request,
        "signal_form.html.j2",
        status_code,
        organisation=organisation,
        errors=errors,
        values=values,
        v=lambda name: forms.one(values, name) or "",
        nonce=str(uuid4()),
        allowed_kinds=domain.allowed_source_kinds(organisation.kind),
        csrf=sessions.csrf_token(_secret(request), cookie),
        **_common(),
    )


@router.post("/melden")
async def post_signal_form(request: Request) -> Response:
    if (signed_in := await _signed_in(request)) is None:
        return _to_login(request)
    organisation, cookie = signed_in
    fields, ctx = await form_fields(request), context_of(request)
    if not sessions.csrf_valid(_secret(request), cookie, forms.one(fields, "csrf") or ""):
        return _message(request, FORM_EXPIRED, 403)
    signal, errors = _checked(_professional_signal(fields, organisation), organisation)
    if signal is None or errors:
        return _form_page(request, organisation, cookie, fields, errors, 422)
    async with _begin(request) as uow:
        intake = await service.intake_signal(
            uow, ctx.settings, ctx.keyring, organisation, signal, idempotency_key=forms.one(fields, "csrf_nonce")
        )
    return RedirectResponse(with_language(f"/melden/signalen/{intake.signal_id}", language_of(request)), 303)


def _professional_signal(fields: forms.Form, organisation: Organisation) -> dict[str, Any]:
    """The form's signal, posted as the source kind chosen (by default the organisation's)."""
    return forms.professional_signal(fields, forms.one(fields, "source_kind") or organisation.kind, _ediz_items())


def _ediz_items() -> int:
    return load_catalogue().get(forms.EDIZ).item_count


def _checked(data: dict[str, Any], organisation: Organisation | None) -> tuple[SignalIn | None, list[str]]:
    """The form's signal and its errors as lines for the page (the schema's, then the use case's)."""
    signal, errors = forms.validate(data)
    if signal is not None:
        errors = [f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in service.check_signal(signal, organisation)]
    return signal, errors


@router.get("/melden/signalen/{signal_id}", response_class=HTMLResponse)
async def signal_status_page(request: Request, signal_id: UUID) -> Response:
    if (signed_in := await _signed_in(request)) is None:
        return _to_login(request)
    organisation, _ = signed_in
    async with _begin(request) as uow:
        found = await service.signal_status(uow, signal_id, organisation.id)
    if found is None:
        return _message(request, UNKNOWN_SIGNAL, 404)
    return pages.render(
        request, "signal_status.html.j2", status=domain.status_view(*found), organisation=organisation, refresh=True
    )


# --- self-referral -----------------------------------------------------------------------


def _referral_form(
    request: Request, template: str, fields: forms.Form, errors: list[str], status_code: int = 200
) -> HTMLResponse:
    return pages.render(
        request, template, status_code, errors=errors, v=lambda name: forms.one(fields, name) or "", **_common()
    )


@router.get("/aanmelden", response_class=HTMLResponse)
async def self_referral_page(request: Request) -> HTMLResponse:
    return _referral_form(request, "self_referral.html.j2", {}, [])


@router.get("/aanmelden/zorg", response_class=HTMLResponse)
async def concern_page(request: Request) -> HTMLResponse:
    return _referral_form(request, "concern.html.j2", {}, [])


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Submission:
    """A caregiver's self-referral or a resident's concern about someone, as posted: whom
    to ask for confirmation, and the signal once it is confirmed."""

    concern: bool
    email: str | None
    name: str | None
    signal: SignalIn | None
    errors: list[str]

    @property
    def template(self) -> str:
        return "concern.html.j2" if self.concern else "self_referral.html.j2"


def _submission(fields: forms.Form, t: Callable[[str, str], str]) -> Submission:
    concern = forms.one(fields, "kind") == "concern"
    email = forms.one(fields, "reporter_email" if concern else "caregiver_email")
    data = forms.concern(fields) if concern else forms.self_referral(fields, _ediz_items(), datetime.now(UTC))
    signal, errors = _checked(data, None)
    if not email or "@" not in email:
        errors.append(t(*EMAIL_MISSING))
    name = forms.one(fields, "reporter_name" if concern else "caregiver_name")
    return Submission(concern, email, name, signal, errors)


@router.post("/aanmelden")
async def submit_self_referral(request: Request) -> Response:
    fields = await form_fields(request)
    submission = _submission(fields, translator(language_of(request)))
    if submission.signal is None or submission.errors or not submission.email:
        return _referral_form(request, submission.template, fields, submission.errors, 422)
    try:
        await _submit(
            request, submission.signal, email=submission.email, name=submission.name, concern=submission.concern
        )
    except service.RateLimited:
        return _message(request, RATE_LIMITED, 429)
    return _message(request, CHECK_YOUR_EMAIL, 202)


async def _submit(request: Request, signal: SignalIn, *, email: str, name: str | None, concern: bool) -> None:
    ctx, language, base = context_of(request), language_of(request), public_url(request)
    async with _begin(request) as uow:
        await service.submit_self_referral(
            uow,
            ctx.settings,
            ctx.keyring,
            signal,
            email=email,
            name=name,
            language=language,
            client=_client(request),
            concern=concern,
            confirm_url=lambda token: with_language(f"{base}/aanmelden/bevestigen/{token}", language),
        )


@router.get("/aanmelden/bevestigen/{token}", response_class=HTMLResponse)
async def confirm_page(request: Request, token: str) -> HTMLResponse:
    # Following the link only shows a button: a mail scanner that opens links confirms nothing.
    return pages.render(request, "confirm.html.j2", token=token)


@router.post("/aanmelden/bevestigen/{token}")
async def confirm(request: Request, token: str) -> Response:
    context, secret, base, now = context_of(request), _secret(request), public_url(request), time.time()
    async with _begin(request) as uow:
        confirmed = await service.confirm_self_referral(
            uow,
            context.settings,
            context.keyring,
            token,
            lambda signal_id: caregiver_status_url(base, secret, signal_id, now),
        )
    if confirmed is None:
        return _message(request, CONFIRM_LINK_UNUSABLE, 404)
    if confirmed.concern:
        return _message(request, CONCERN_PASSED_ON, 200)
    url = caregiver_status_url("", secret, confirmed.signal_id, now)
    return RedirectResponse(with_language(url, language_of(request)), status_code=303)


# --- the caregiver's own status page -----------------------------------------------------


@dataclass(frozen=True)
class StatusLink:
    """The signed link to a caregiver's own status page, as followed."""

    signal_id: UUID
    exp: int
    sig: str
    valid: bool

    @property
    def query(self) -> str:
        return f"exp={self.exp}&sig={self.sig}"


def status_link(
    request: Request, signal_id: UUID, exp: Annotated[int, Query()], sig: Annotated[str, Query(max_length=128)]
) -> StatusLink:
    return StatusLink(signal_id, exp, sig, sessions.status_valid(_secret(request), signal_id, exp, sig, time.time()))


FollowedLink = Annotated[StatusLink, Depends(status_link)]


@router.get("/mijn/{signal_id}", response_class=HTMLResponse)
async def caregiver_status(request: Request, link: FollowedLink) -> HTMLResponse:
    if not link.valid:
        return _message(request, STATUS_LINK_REFUSED, 403)
    async with _begin(request) as uow:
        found = await uow.signals.signal_and_stages(link.signal_id)
    if found is None:
        return _message(request, NOTHING_ON_RECORD, 404)
    return pages.render(
        request,
        "caregiver_status.html.j2",
        status=domain.status_view(*found),
        refresh=True,
        query=link.query,
        social_map_url=_settings(request).social_map_url,
    )


@router.post("/mijn/{signal_id}/wissen", response_class=HTMLResponse)
async def erase_own(request: Request, link: FollowedLink) -> HTMLResponse:
    if not link.valid:
        return _message(request, STATUS_LINK_REFUSED, 403)
    async with _begin(request) as uow:
        await service.erase_own_submission(uow, _settings(request), link.signal_id)
    return _message(request, BEING_ERASED, 200)
