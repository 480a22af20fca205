"""The consultant's use cases, shared by the pages and the event handlers: sign-in, the work
queues, the case page, and the actions (contact attempts, notes, recorded answers, the Wmo
hand-off, closing). Every action changes the case and queues its event in one transaction;
every view is logged."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5, NAMESPACE_URL

import asyncpg

from services.casework import domain, repository
from services.casework.config import CaseworkSettings
from shared.contracts import (
    CaseAnswersRecorded,
    CaseClosed,
    CaseHandedOff,
    CaseTakenUp,
    CloseReason,
    EventType,
    ProposedMatch,
    ScreeningResult,
    SignalReceived,
    Topics,
)
from shared import crypto, sealing
from shared.instruments import load_catalogue
from shared.outbox import add_event, new_event

# The consultant's own signals (recorded answers) come from this organisation id: no partner
# is behind them, so nobody is told "a person has it" about them.
CASEWORK_ORGANISATION = uuid5(NAMESPACE_URL, "signal-to-support/casework")
CONTACT_KINDS = ("call", "visit", "letter", "email")
CONTACT_OUTCOMES = ("reached", "not_reached", "declined", "appointment")


class Refused(Exception):
    """The action cannot be done as asked; the message says why (shown to the consultant)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Routing:
    covered: list[str]
    regions: dict[str, list[str]]
    default_region: str

    def route(self, code: str) -> tuple[str, str]:
        return domain.route(code, self.covered, self.regions, self.default_region)


async def routing(conn: asyncpg.Connection, settings: CaseworkSettings) -> Routing:
    return Routing(await repository.covered_municipalities(conn), await repository.regions(conn),
                   settings.default_region)


def reasons_of(settings: CaseworkSettings, case: Any, referrals: list[Any], now: datetime) -> list[domain.QueueReason]:
    return domain.queue_reasons(
        case, referrals, now, crisis_deadline=timedelta(hours=settings.crisis_deadline_hours),
        unanswered_after=timedelta(days=settings.unanswered_referral_days))


# --- sign-in ----------------------------------------------------------------------------------


async def issue_sign_in_link(conn: asyncpg.Connection, settings: CaseworkSettings, consultant_id: UUID,
                             now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    await repository.add_sign_in_token(conn, consultant_id, token, now + timedelta(hours=settings.sign_in_ttl_hours))
    return f"{settings.public_url.rstrip('/')}/aanmelden?token={token}"


async def sign_in(conn: asyncpg.Connection, settings: CaseworkSettings, token: str,
                  now: datetime) -> tuple[str, datetime] | None:
    """A one-time link becomes a session: (session token, expiry), or None for a bad link."""
    consultant_id = await repository.use_sign_in_token(conn, token, now)
    if consultant_id is None:
        return None
    session = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=settings.session_ttl_hours)
    await repository.add_session(conn, consultant_id, session, secrets.token_urlsafe(24), expires)
    await repository.log_access(conn, consultant_id, "sign_in")
    return session, expires


# --- taking cases up (from the handlers) --------------------------------------------------------


async def take_up(conn: asyncpg.Connection, settings: CaseworkSettings, case_id: UUID, now: datetime) -> None:
    """When the case needs a person, tell each signal's referrer (once) that a person has it."""
    case = await repository.case(conn, case_id)
    if case is None or not reasons_of(settings, case, await repository.referrals(conn, [case_id]), now):
        return
    untold = await repository.untold_signals(conn, case_id, str(CASEWORK_ORGANISATION))
    if not untold:
        return
    queue, _ = (await routing(conn, settings)).route(case["municipality_code"])
    payload = CaseTakenUp(case_id=case_id, signal_ids=untold, municipality_code=case["municipality_code"],
                          queue=queue, taken_up_at=now)
    await add_event(conn, Topics.CASEWORK, new_event(
        EventType.CASE_TAKEN_UP, payload, producer=settings.service_name, subject=case["subject"],
        correlation_id=str(untold[0])))
    await repository.mark_told(conn, untold, now)


# --- the queues and the case page ---------------------------------------------------------------


def _summary(case: Any, reasons: list[domain.QueueReason], signal_rows: list[Any]) -> dict[str, Any]:
    personal = case["personal"] or {}
    return {
        "id": case["id"], "municipality_code": case["municipality_code"], "risk_level": case["risk_level"],
        "name": (personal.get("caregiver") or {}).get("name"), "reasons": reasons,
        "sources": [s["source_kind"] for s in signal_rows], "created_at": case["created_at"],
    }


async def workbench(conn: asyncpg.Connection, settings: CaseworkSettings, consultant: Any,
                    now: datetime) -> dict[str, Any]:
    """The consultant's municipality queue and, if they are a region's back-up, its fallback queue."""
    route = await routing(conn, settings)
    own = await repository.open_cases(conn, [consultant["municipality_code"]])
    fallback = (await repository.open_cases(conn, None, outside=[]) if consultant["fallback_region"] else [])
    cases = {c["id"]: c for c in [*own, *fallback]}
    referrals: dict[UUID, list[Any]] = {}
    for r in await repository.referrals(conn, list(cases)):
        referrals.setdefault(r["case_id"], []).append(r)
    queues: dict[str, list[dict[str, Any]]] = {"municipality": [], "fallback": []}
    for case in cases.values():
        reasons = reasons_of(settings, case, referrals.get(case["id"], []), now)
        if not reasons:
            continue
        item = _summary(case, reasons, await repository.signals(conn, case["id"]))
        if case["municipality_code"] == consultant["municipality_code"]:
            queues["municipality"].append(item)
        elif domain.may_see(case, consultant, reasons, covered=route.covered, regions=route.regions,
                            default_region=route.default_region):
            queues["fallback"].append(item)
    for items in queues.values():
        # Most urgent first: crises, then by how many reasons, then oldest.
        items.sort(key=lambda i: (not any(r.code.startswith("crisis") for r in i["reasons"]),
                                  -len(i["reasons"]), i["created_at"]))
    await repository.log_access(conn, consultant["id"], "view_queue")
    return {"queues": queues, "region": consultant["fallback_region"]}


async def _visible_case(conn: asyncpg.Connection, settings: CaseworkSettings, consultant: Any, case_id: UUID,
                        now: datetime, *, lock: bool = False) -> tuple[Any, list[Any], list[domain.QueueReason]]:
    case = await repository.case(conn, case_id, lock=lock)
    if case is None:
        raise Refused("Deze zaak bestaat niet (meer).", 404)
    referrals = await repository.referrals(conn, [case_id])
    reasons = reasons_of(settings, case, referrals, now)
    route = await routing(conn, settings)
    if not domain.may_see(case, consultant, reasons, covered=route.covered, regions=route.regions,
                          default_region=route.default_region):
        raise Refused("Deze zaak hoort niet bij uw gemeente of regio.", 404)
    return case, referrals, reasons


def next_instrument(case: Any) -> str:
    result = case["result"] or {}
    return result.get("next_instrument") or "ediz_plus"


async def case_page(conn: asyncpg.Connection, settings: CaseworkSettings, consultant: Any, case_id: UUID,
                    now: datetime) -> dict[str, Any]:
    case, referrals, reasons = await _visible_case(conn, settings, consultant, case_id, now)
    signal_rows = await repository.signals(conn, case_id)
    instrument = load_catalogue().get(next_instrument(case))
    await repository.log_access(conn, consultant["id"], "view_case", case_id)
    return {
        "case": case, "reasons": reasons, "signals": signal_rows, "referrals": referrals,
        "events": await repository.events(conn, case_id), "instrument": instrument,
        "desk": await repository.wmo_desk(conn, case["municipality_code"]),
        "result": ScreeningResult.model_validate(case["result"]) if case["result"] else None,
    }


# --- actions -------------------------------------------------------------------------------------


def _latest_signal(signal_rows: list[Any]) -> SignalReceived:
    return SignalReceived.model_validate(signal_rows[-1]["personal"])


async def record_contact(conn: asyncpg.Connection, settings: CaseworkSettings, consultant: Any, case_id: UUID,
                         kind: str, outcome: str, note: str | None, now: datetime) -> None:
    if kind not in CONTACT_KINDS:
        raise Refused(f"kind: kies een van {', '.join(CONTACT_KINDS)}")
    if outcome not in CONTACT_OUTCOMES:
        raise Refused(f"outcome: kies een van {', '.join(CONTACT_OUTCOMES)}")
    await _visible_case(conn, settings, consultant, case_id, now, lock=True)
    await repository.update_case(conn, case_id, now, last_contact_at=now)
    await repository.add_event(conn, case_id, now, "contact", {"kind": kind, "outcome": outcome},
                               {"note": note} if note else None, consultant["name"])
    await repository.log_access(conn, consultant["id"], "record_contact", case_id)


async def add_note(conn: asyncpg.Connection, settings: CaseworkSettings, consultant: Any, case_id: UUID,
                   note: str, now: datetime) -> None:
    if not note.strip():
        raise Refused("note: schrijf een notitie")
    await _visible_case(conn, settings, consultant, case_id, now, lock=True)
    await repository.add_event(conn, case_id, now, "note", {}, {"note": note.strip()}, consultant["name"])
    await repository.log_access(conn, consultant["id"], "add_note", case_id)


async def _sealed_like(signal: SignalReceived, like: SignalReceived, keys: sealing.KeySource,
                       subject: str) -> SignalReceived:
    """``signal`` sealed under the caregiver's data key, the one ``like`` was sealed with, so
    what the consultant recorded travels encrypted like everything else about them."""
    if like.sealed is None:
        return signal
    key_id = crypto.key_id_of(like.sealed.personal)
    key = await keys.data_key(key_id, subject)
    if key is None:
        raise Refused("Deze mantelzorger is gewist: er kan niets meer worden vastgelegd.", 410)
    return sealing.seal_signal(signal, key_id, key)


async def record_answers(conn: asyncpg.Connection, settings: CaseworkSettings, keys: sealing.KeySource,
                         consultant: Any, case_id: UUID,
                         instrument_id: str, answers: list[int | None], now: datetime) -> None:
    """The instrument's answers from the conversation become the consultant's own signal,
    which screening screens like any other: the case is re-screened with them."""
    catalogue = load_catalogue()
    if instrument_id not in catalogue:
        raise Refused(f"instrument: onbekend instrument {instrument_id!r}")
    instrument = catalogue.get(instrument_id)
    missing = [i + 1 for i, a in enumerate(answers) if a is None]
    if missing or len(answers) != instrument.item_count:
        raise Refused(f"answers: beantwoord alle {instrument.item_count} vragen "
                      f"(ontbreekt: {', '.join(map(str, missing)) or 'aantal klopt niet'})")
    values = [int(a) for a in answers if a is not None]
    if errors := instrument.validate_answers(values):
        raise Refused("answers: " + "; ".join(e.message for e in errors))
    case, _, _ = await _visible_case(conn, settings, consultant, case_id, now, lock=True)
    latest = _latest_signal(await repository.signals(conn, case_id))
    signal = await _sealed_like(domain.consultant_signal(
        latest, signal_id=uuid4(), organisation_id=CASEWORK_ORGANISATION, now=now, instrument_id=instrument_id,
        answers=values, consultant_name=consultant["name"]), latest, keys, case["subject"])
    # A due re-screen is done by this measurement.
    await repository.update_case(conn, case_id, now, rescreen_due_at=None, last_contact_at=now)
    await repository.add_event(conn, case_id, now, "answers", {"instrument": instrument.name,
                               "score": instrument.score(values).total}, None, consultant["name"])
    await add_event(conn, Topics.CASEWORK, new_event(
        EventType.CASE_ANSWERS_RECORDED, CaseAnswersRecorded(case_id=case_id, signal=signal, recorded_at=now),
        producer=settings.service_name, subject=case["subject"], correlation_id=str(signal.signal_id)))
    await repository.log_access(conn, consultant["id"], "record_answers", case_id)


async def hand_off(conn: asyncpg.Connection, settings: CaseworkSettings, consultant: Any, case_id: UUID,
                   note: str | None, now: datetime) -> None:
    """A referral to the municipality's Wmo desk for a kitchen-table conversation."""
    case, _, _ = await _visible_case(conn, settings, consultant, case_id, now, lock=True)
    if case["handed_off_at"] is not None:
        raise Refused("Deze zaak is al overgedragen aan het Wmo-loket.", 409)
    desk = await repository.wmo_desk(conn, case["municipality_code"])
    if desk is None:
        raise Refused(f"Er is geen Wmo-loket bekend voor {case['municipality_code']} "
                      "(python -m services.casework.cli set-wmo-desk).", 409)
    signal_rows = await repository.signals(conn, case_id)
    latest = _latest_signal(signal_rows)
    match = ProposedMatch(
        service_id=f"wmo-desk-{case['municipality_code'].lower()}", service_name=desk["name"],
        organization_name=desk["name"], category="wmo_kitchen_table_conversation", score=1.0,
        contact_email=desk["email"])
    result = ScreeningResult.model_validate(case["result"]) if case["result"] else ScreeningResult(
        risk_level="at_risk")
    payload = CaseHandedOff(case_id=case_id, signal_id=latest.signal_id, handed_off_at=now, desk=match,
                            signal=latest, result=result, note=note)
    await repository.update_case(conn, case_id, now, handed_off_at=now)
    await repository.propose(conn, case_id, match.service_id, match.service_name, now)
    await repository.add_event(conn, case_id, now, "handoff", {"desk": desk["name"]},
                               {"note": note} if note else None, consultant["name"])
    await add_event(conn, Topics.CASEWORK, new_event(
        EventType.CASE_HANDED_OFF, payload, producer=settings.service_name, subject=case["subject"],
        correlation_id=str(latest.signal_id)))
    await repository.log_access(conn, consultant["id"], "hand_off", case_id)


async def close(conn: asyncpg.Connection, settings: CaseworkSettings, consultant: Any, case_id: UUID,
                reason: str, now: datetime) -> None:
    try:
        close_reason = CloseReason(reason)
    except ValueError:
        raise Refused(f"reason: kies een van {', '.join(r.value for r in CloseReason)}") from None
    case, _, _ = await _visible_case(conn, settings, consultant, case_id, now, lock=True)
    if case["closed_at"] is not None:
        raise Refused("Deze zaak is al afgesloten.", 409)
    signal_rows = await repository.signals(conn, case_id)
    partner_signals = [s["signal_id"] for s in signal_rows
                       if s["personal"].get("organisation_id") != str(CASEWORK_ORGANISATION)]
    await repository.update_case(conn, case_id, now, closed_at=now, close_reason=close_reason.value)
    await repository.add_event(conn, case_id, now, "closed", {"reason": close_reason.value}, None, consultant["name"])
    payload = CaseClosed(case_id=case_id, signal_ids=partner_signals, reason=close_reason, closed_at=now,
                         municipality_code=case["municipality_code"],
                         signal=_latest_signal(signal_rows) if signal_rows else None)
    await add_event(conn, Topics.CASEWORK, new_event(
        EventType.CASE_CLOSED, payload, producer=settings.service_name, subject=case["subject"],
        correlation_id=str(case_id)))
    await repository.log_access(conn, consultant["id"], "close_case", case_id)
