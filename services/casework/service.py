"""The consultant's use cases, shared by the pages and the event handlers: sign-in, the work
queues, the case page, and the actions (contact attempts, notes, recorded answers, the Wmo
hand-off, closing). Every action changes the case and queues its event in one transaction;
every view is logged."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import structlog

from services.casework import domain
from services.casework.config import CaseworkSettings
from services.casework.domain import Case, CaseReferral, CaseSignal, Consultant
from services.casework.repository import CaseworkRepository
from shared import crypto, sealing
from shared.contracts import (
    CaregiverErased,
    CaseAnswersRecorded,
    CaseClosed,
    CaseEscalated,
    CaseHandedOff,
    CaseTakenUp,
    CloseReason,
    ErasureScope,
    EventType,
    FollowUpRecorded,
    MatchesProposed,
    ProposedMatch,
    ReferralUpdated,
    RescreenDue,
    RiskLevel,
    ScreeningResult,
    SignalReceived,
    SignalScreened,
    Topics,
    utcnow,
)
from shared.instruments import load_catalogue
from shared.uow import Repository, UnitOfWork

log = structlog.get_logger(__name__)

# The consultant's own signals (recorded answers) come from this organisation id: no partner
# is behind them, so nobody is told "a person has it" about them.
CASEWORK_ORGANISATION = uuid5(NAMESPACE_URL, "signal-to-support/casework")
CONTACT_KINDS = ("call", "visit", "letter", "email")
CONTACT_OUTCOMES = ("reached", "not_reached", "declined", "appointment")


class CaseworkUnitOfWork(UnitOfWork):
    """The casework store and the outbox in one transaction."""

    topic = Topics.CASEWORK
    producer = "casework"

    cases = Repository(CaseworkRepository)


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


async def routing(uow: CaseworkUnitOfWork, settings: CaseworkSettings) -> Routing:
    return Routing(await uow.cases.covered_municipalities(), await uow.cases.regions(), settings.default_region)


def reasons_of(
    settings: CaseworkSettings, case: Case, referrals: list[CaseReferral], now: datetime
) -> list[domain.QueueReason]:
    return domain.queue_reasons(
        case,
        referrals,
        now,
        crisis_deadline=timedelta(hours=settings.crisis_deadline_hours),
        unanswered_after=timedelta(days=settings.unanswered_referral_days),
    )


# --- sign-in ----------------------------------------------------------------------------------


async def issue_sign_in_link(
    uow: CaseworkUnitOfWork, settings: CaseworkSettings, consultant_id: UUID, now: datetime
) -> str:
    token = secrets.token_urlsafe(32)
    await uow.cases.add_sign_in_token(consultant_id, token, now + timedelta(hours=settings.sign_in_ttl_hours))
    return f"{settings.public_url.rstrip('/')}/aanmelden?token={token}"


async def sign_in(
    uow: CaseworkUnitOfWork, settings: CaseworkSettings, token: str, now: datetime
) -> tuple[str, datetime] | None:
    """A one-time link becomes a session: (session token, expiry), or None for a bad link."""
    consultant_id = await uow.cases.use_sign_in_token(token, now)
    if consultant_id is None:
        return None
    session = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=settings.session_ttl_hours)
    await uow.cases.add_session(consultant_id, session, secrets.token_urlsafe(24), expires)
    await uow.cases.log_access(consultant_id, "sign_in")
    return session, expires


# --- taking cases up (from the handlers) --------------------------------------------------------


async def take_up(uow: CaseworkUnitOfWork, settings: CaseworkSettings, case_id: UUID, now: datetime) -> None:
    """When the case needs a person, tell each signal's referrer (once) that a person has it."""
    case = await uow.cases.case(case_id)
    if case is None or not reasons_of(settings, case, await uow.cases.referrals([case_id]), now):
        return
    untold = await uow.cases.untold_signals(case_id, str(CASEWORK_ORGANISATION))
    if not untold:
        return
    queue, _ = (await routing(uow, settings)).route(case.municipality_code)
    payload = CaseTakenUp(
        case_id=case_id, signal_ids=untold, municipality_code=case.municipality_code, queue=queue, taken_up_at=now
    )
    await uow.emit(
        EventType.CASE_TAKEN_UP,
        payload,
        subject=case.subject,
        correlation_id=str(untold[0]),
    )
    await uow.cases.mark_told(untold, now)


# --- the pipeline's events (from the handlers) -------------------------------------------------
# Every event about a case updates the consultant's view of it; then, when the case needs a
# person, the referrers are told a person has it (``take_up``). Events of another topic may
# arrive before the case's screening: the case is made from the signal they carry, if any.


def _personal(signal: SignalReceived) -> dict[str, Any]:
    return signal.model_dump(mode="json", include={"caregiver", "care_recipient", "care_situation"})


async def _ensure(uow: CaseworkUnitOfWork, case_id: UUID, subject: str, signal: SignalReceived | None) -> bool:
    """The case exists here (made from ``signal`` when there is one)."""
    if signal is not None:
        await uow.cases.ensure_case(case_id, subject, signal.caregiver.municipality_code, _personal(signal), utcnow())
    return await uow.cases.case(case_id) is not None


async def signal_screened(uow: CaseworkUnitOfWork, settings: CaseworkSettings, subject: str, p: SignalScreened) -> None:
    now, signal = utcnow(), p.signal
    await _ensure(uow, p.case_id, subject, signal)
    case = await uow.cases.case(p.case_id, lock=True)
    if case is None:
        raise RuntimeError("made just now from the signal")
    added = await uow.cases.add_signal(
        p.case_id, signal.model_dump(mode="json"), (p.own_result or p.result).model_dump(mode="json")
    )
    derailed = domain.is_derailed(signal, p.result)
    crisis = domain.is_crisis(signal, p.result.risk_level.value) or derailed
    await uow.cases.update_case(
        p.case_id,
        now,
        personal=_personal(signal),
        risk_level=p.result.risk_level.value,
        result=p.result.model_dump(mode="json"),
        crisis_since=case.crisis_since or (signal.received_at if crisis else None),
        derailed=case.derailed or derailed,
        outreach=domain.outreach(signal),
        contact_preference=signal.caregiver.contact_preference.value,
        escalated_at=case.escalated_at or (now if p.escalated else None),
        # A partner's new signal is news: the case is open again if it was closed.
        closed_at=None if added and signal.organisation_id != CASEWORK_ORGANISATION else case.closed_at,
    )
    if added:
        await uow.cases.add_event(
            p.case_id,
            signal.received_at,
            "signal",
            {"source": signal.source.kind.value, "risk_level": p.result.risk_level.value},
            {"organisation": signal.organisation_name},
        )
    await take_up(uow, settings, p.case_id, now)


async def case_escalated(uow: CaseworkUnitOfWork, settings: CaseworkSettings, subject: str, p: CaseEscalated) -> None:
    await _ensure(uow, p.case_id, subject, p.signal)
    case = await uow.cases.case(p.case_id, lock=True)
    if case is None:
        raise RuntimeError("made just now from the signal")
    await uow.cases.update_case(
        p.case_id, utcnow(), escalated_at=case.escalated_at or p.escalated_at, escalation_reason=p.reason
    )
    await take_up(uow, settings, p.case_id, utcnow())


async def matches_proposed(
    uow: CaseworkUnitOfWork, settings: CaseworkSettings, subject: str, p: MatchesProposed
) -> None:
    await _ensure(uow, p.case_id, subject, p.signal)
    providers = [m for m in p.matches if not m.consultant]
    await uow.cases.update_case(
        p.case_id,
        utcnow(),
        proposals=[m.model_dump(mode="json", exclude={"contact_email"}) for m in p.matches],
        unmatched=not providers,
        no_match_reason=p.no_match_reason,
    )
    for match in providers:
        await uow.cases.propose(p.case_id, match.service_id, match.service_name, p.proposed_at)
    await take_up(uow, settings, p.case_id, utcnow())


async def referral_updated(
    uow: CaseworkUnitOfWork, settings: CaseworkSettings, subject: str, p: ReferralUpdated
) -> None:
    if not await _ensure(uow, p.case_id, subject, p.signal):
        log.info("referral update for a case not known here ignored")
        return
    reason = p.reason_code.value if p.reason_code else None
    await uow.cases.referral_update(
        p.case_id, p.service_id, p.referral_id, p.service_name, p.status.value, reason, p.updated_at
    )
    await uow.cases.add_event(
        p.case_id,
        p.updated_at,
        "referral",
        {"service": p.service_name, "status": p.status.value, "reason_code": reason},
        by=p.updated_by,
    )
    await take_up(uow, settings, p.case_id, utcnow())


async def follow_up_recorded(
    uow: CaseworkUnitOfWork, settings: CaseworkSettings, subject: str, p: FollowUpRecorded
) -> None:
    if not await _ensure(uow, p.case_id, subject, None):
        return
    await uow.cases.update_case(
        p.case_id, utcnow(), support_not_arrived_at=None if p.support_arrived else p.recorded_at
    )
    await uow.cases.add_event(p.case_id, p.recorded_at, "follow_up", {"support_arrived": p.support_arrived})
    await take_up(uow, settings, p.case_id, utcnow())


async def rescreen_due(uow: CaseworkUnitOfWork, settings: CaseworkSettings, subject: str, p: RescreenDue) -> None:
    if not await _ensure(uow, p.case_id, subject, None):
        return
    # A re-screen of a case closed with support in place opens it again: is it holding?
    await uow.cases.update_case(p.case_id, utcnow(), rescreen_due_at=p.due_at, closed_at=None)
    await uow.cases.add_event(p.case_id, p.due_at, "rescreen_due", {})
    await take_up(uow, settings, p.case_id, utcnow())


async def caregiver_erased(uow: CaseworkUnitOfWork, p: CaregiverErased) -> None:
    """Forget the person (their cases) or, for a withdrawal, only the withdrawn signals."""
    await uow.record_erasure(p)
    await uow.cases.erase(p.signal_ids, p.case_ids, whole_cases=p.scope is ErasureScope.CAREGIVER)
    await uow.forget_retained(p)


# --- the queues and the case page ---------------------------------------------------------------


def _summary(case: Case, reasons: list[domain.QueueReason], signal_rows: list[CaseSignal]) -> dict[str, Any]:
    personal = case.personal or {}
    return {
        "id": case.id,
        "municipality_code": case.municipality_code,
        "risk_level": case.risk_level,
        "name": (personal.get("caregiver") or {}).get("name"),
        "reasons": reasons,
        "sources": [s.source_kind for s in signal_rows],
        "created_at": case.created_at,
    }


async def workbench(
    uow: CaseworkUnitOfWork, settings: CaseworkSettings, consultant: Consultant, now: datetime
) -> dict[str, Any]:
    """The consultant's municipality queue and, if they are a region's back-up, its fallback queue."""
    route = await routing(uow, settings)
    own = await uow.cases.open_cases([consultant.municipality_code])
    fallback = await uow.cases.open_cases(None, outside=[]) if consultant.fallback_region else []
    cases = {c.id: c for c in [*own, *fallback]}
    referrals: dict[UUID, list[CaseReferral]] = {}
    for r in await uow.cases.referrals(list(cases)):
        referrals.setdefault(r.case_id, []).append(r)
    queues: dict[str, list[dict[str, Any]]] = {"municipality": [], "fallback": []}
    for case in cases.values():
        reasons = reasons_of(settings, case, referrals.get(case.id, []), now)
        if not reasons:
            continue
        item = _summary(case, reasons, await uow.cases.signals(case.id))
        if case.municipality_code == consultant.municipality_code:
            queues["municipality"].append(item)
        elif domain.may_see(
            case, consultant, reasons, covered=route.covered, regions=route.regions, default_region=route.default_region
        ):
            queues["fallback"].append(item)
    for items in queues.values():
        # Most urgent first: crises, then by how many reasons, then oldest.
        items.sort(
            key=lambda i: (
                not any(r.code.startswith("crisis") for r in i["reasons"]),
                -len(i["reasons"]),
                i["created_at"],
            )
        )
    await uow.cases.log_access(consultant.id, "view_queue")
    return {"queues": queues, "region": consultant.fallback_region}


async def _visible_case(
    uow: CaseworkUnitOfWork,
    settings: CaseworkSettings,
    consultant: Consultant,
    case_id: UUID,
    now: datetime,
    *,
    lock: bool = False,
) -> tuple[Case, list[CaseReferral], list[domain.QueueReason]]:
    case = await uow.cases.case(case_id, lock=lock)
    if case is None:
        raise Refused("Deze zaak bestaat niet (meer).", 404)
    referrals = await uow.cases.referrals([case_id])
    reasons = reasons_of(settings, case, referrals, now)
    route = await routing(uow, settings)
    if not domain.may_see(
        case, consultant, reasons, covered=route.covered, regions=route.regions, default_region=route.default_region
    ):
        raise Refused("Deze zaak hoort niet bij uw gemeente of regio.", 404)
    return case, referrals, reasons


def next_instrument(case: Case) -> str:
    result = case.result or {}
    return result.get("next_instrument") or "ediz_plus"


async def case_page(
    uow: CaseworkUnitOfWork, settings: CaseworkSettings, consultant: Consultant, case_id: UUID, now: datetime
) -> dict[str, Any]:
    case, referrals, reasons = await _visible_case(uow, settings, consultant, case_id, now)
    signal_rows = await uow.cases.signals(case_id)
    instrument = load_catalogue().get(next_instrument(case))
    await uow.cases.log_access(consultant.id, "view_case", case_id)
    return {
        "case": case,
        "reasons": reasons,
        "signals": signal_rows,
        "referrals": referrals,
        "events": await uow.cases.events(case_id),
        "instrument": instrument,
        "desk": await uow.cases.wmo_desk(case.municipality_code),
        "result": ScreeningResult.model_validate(case.result) if case.result else None,
    }


# --- actions -------------------------------------------------------------------------------------


def _latest_signal(signal_rows: list[CaseSignal]) -> SignalReceived:
    return SignalReceived.model_validate(signal_rows[-1].personal)


async def record_contact(
    uow: CaseworkUnitOfWork,
    settings: CaseworkSettings,
    consultant: Consultant,
    case_id: UUID,
    kind: str,
    outcome: str,
    note: str | None,
    now: datetime,
) -> None:
    if kind not in CONTACT_KINDS:
        raise Refused(f"kind: kies een van {', '.join(CONTACT_KINDS)}")
    if outcome not in CONTACT_OUTCOMES:
        raise Refused(f"outcome: kies een van {', '.join(CONTACT_OUTCOMES)}")
    await _visible_case(uow, settings, consultant, case_id, now, lock=True)
    await uow.cases.update_case(case_id, now, last_contact_at=now)
    await uow.cases.add_event(
        case_id,
        now,
        "contact",
        {"kind": kind, "outcome": outcome},
        {"note": note} if note else None,
        consultant.name,
    )
    await uow.cases.log_access(consultant.id, "record_contact", case_id)


async def add_note(
    uow: CaseworkUnitOfWork, settings: CaseworkSettings, consultant: Consultant, case_id: UUID, note: str, now: datetime
) -> None:
    if not note.strip():
        raise Refused("note: schrijf een notitie")
    await _visible_case(uow, settings, consultant, case_id, now, lock=True)
    await uow.cases.add_event(case_id, now, "note", {}, {"note": note.strip()}, consultant.name)
    await uow.cases.log_access(consultant.id, "add_note", case_id)


async def _sealed_like(
    signal: SignalReceived, like: SignalReceived, keys: sealing.KeySource, subject: str
) -> SignalReceived:
    """``signal`` sealed under the caregiver's data key, the one ``like`` was sealed with, so
    what the consultant recorded travels encrypted like everything else about them."""
    if like.sealed is None:
        return signal
    key_id = crypto.key_id_of(like.sealed.personal)
    key = await keys.data_key(key_id, subject)
    if key is None:
        raise Refused("Deze mantelzorger is gewist: er kan niets meer worden vastgelegd.", 410)
    return sealing.seal_signal(signal, key_id, key)


async def record_answers(
    uow: CaseworkUnitOfWork,
    settings: CaseworkSettings,
    keys: sealing.KeySource,
    consultant: Consultant,
    case_id: UUID,
    instrument_id: str,
    answers: list[int | None],
    now: datetime,
) -> None:
    """The instrument's answers from the conversation become the consultant's own signal,
    which screening screens like any other: the case is re-screened with them."""
    catalogue = load_catalogue()
    if instrument_id not in catalogue:
        raise Refused(f"instrument: onbekend instrument {instrument_id!r}")
    instrument = catalogue.get(instrument_id)
    missing = [i + 1 for i, a in enumerate(answers) if a is None]
    if missing or len(answers) != instrument.item_count:
        raise Refused(
            f"answers: beantwoord alle {instrument.item_count} vragen "
            f"(ontbreekt: {', '.join(map(str, missing)) or 'aantal klopt niet'})"
        )
    values = [int(a) for a in answers if a is not None]
    if errors := instrument.validate_answers(values):
        raise Refused("answers: " + "; ".join(e.message for e in errors))
    case, _, _ = await _visible_case(uow, settings, consultant, case_id, now, lock=True)
    latest = _latest_signal(await uow.cases.signals(case_id))
    signal = await _sealed_like(
        domain.consultant_signal(
            latest,
            signal_id=uuid4(),
            organisation_id=CASEWORK_ORGANISATION,
            now=now,
            instrument_id=instrument_id,
            answers=values,
            consultant_name=consultant.name,
        ),
        latest,
        keys,
        case.subject,
    )
    # A due re-screen is done by this measurement.
    await uow.cases.update_case(case_id, now, rescreen_due_at=None, last_contact_at=now)
    await uow.cases.add_event(
        case_id,
        now,
        "answers",
        {"instrument": instrument.name, "score": instrument.score(values).total},
        None,
        consultant.name,
    )
    await uow.emit(
        EventType.CASE_ANSWERS_RECORDED,
        CaseAnswersRecorded(case_id=case_id, signal=signal, recorded_at=now),
        subject=case.subject,
        correlation_id=str(signal.signal_id),
    )
    await uow.cases.log_access(consultant.id, "record_answers", case_id)


async def hand_off(
    uow: CaseworkUnitOfWork,
    settings: CaseworkSettings,
    consultant: Consultant,
    case_id: UUID,
    note: str | None,
    now: datetime,
) -> None:
    """A referral to the municipality's Wmo desk for a kitchen-table conversation."""
    case, _, _ = await _visible_case(uow, settings, consultant, case_id, now, lock=True)
    if case.handed_off_at is not None:
        raise Refused("Deze zaak is al overgedragen aan het Wmo-loket.", 409)
    desk = await uow.cases.wmo_desk(case.municipality_code)
    if desk is None:
        raise Refused(
            f"Er is geen Wmo-loket bekend voor {case.municipality_code} "
            "(python -m services.casework.cli set-wmo-desk).",
            409,
        )
    signal_rows = await uow.cases.signals(case_id)
    latest = _latest_signal(signal_rows)
    match = ProposedMatch(
        service_id=f"wmo-desk-{case.municipality_code.lower()}",
        service_name=desk.name,
        organization_name=desk.name,
        category="wmo_kitchen_table_conversation",
        score=1.0,
        contact_email=desk.email,
    )
    result = (
        ScreeningResult.model_validate(case.result) if case.result else ScreeningResult(risk_level=RiskLevel.AT_RISK)
    )
    payload = CaseHandedOff(
        case_id=case_id,
        signal_id=latest.signal_id,
        handed_off_at=now,
        desk=match,
        signal=latest,
        result=result,
        note=note,
    )
    await uow.cases.update_case(case_id, now, handed_off_at=now)
    await uow.cases.propose(case_id, match.service_id, match.service_name, now)
    await uow.cases.add_event(
        case_id, now, "handoff", {"desk": desk.name}, {"note": note} if note else None, consultant.name
    )
    await uow.emit(
        EventType.CASE_HANDED_OFF,
        payload,
        subject=case.subject,
        correlation_id=str(latest.signal_id),
    )
    await uow.cases.log_access(consultant.id, "hand_off", case_id)


async def close(
    uow: CaseworkUnitOfWork,
    settings: CaseworkSettings,
    consultant: Consultant,
    case_id: UUID,
    reason: str,
    now: datetime,
) -> None:
    try:
        close_reason = CloseReason(reason)
    except ValueError:
        raise Refused(f"reason: kies een van {', '.join(r.value for r in CloseReason)}") from None
    case, _, _ = await _visible_case(uow, settings, consultant, case_id, now, lock=True)
    if case.closed_at is not None:
        raise Refused("Deze zaak is al afgesloten.", 409)
    signal_rows = await uow.cases.signals(case_id)
    partner_signals = [
        s.signal_id for s in signal_rows if s.personal.get("organisation_id") != str(CASEWORK_ORGANISATION)
    ]
    await uow.cases.update_case(case_id, now, closed_at=now, close_reason=close_reason.value)
    await uow.cases.add_event(case_id, now, "closed", {"reason": close_reason.value}, None, consultant.name)
    payload = CaseClosed(
        case_id=case_id,
        signal_ids=partner_signals,
        reason=close_reason,
        closed_at=now,
        municipality_code=case.municipality_code,
        signal=_latest_signal(signal_rows) if signal_rows else None,
    )
    await uow.emit(
        EventType.CASE_CLOSED,
        payload,
        subject=case.subject,
        correlation_id=str(case_id),
    )
    await uow.cases.log_access(consultant.id, "close_case", case_id)
