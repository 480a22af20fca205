"""Event contracts shared by every service: the envelope, the payloads and the topics.

Contracts are additive only. A new optional field keeps the version; anything that would
break a consumer gets a new event version and a new topic (``....v2``). Consumers ignore
fields they do not know, so producers can be upgraded first.

The one exception is encryption (``shared.sealing``): an event whose signal travels sealed
is envelope version 2 on the same topic, because a version-1 consumer would miss the
fields it expects. Every consumer understands both versions, so a rolling deploy upgrades
the consumers first (screening, matching, notify, municipalities), then signals.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


class Topics:
    """Topic names. Each producing stage owns one topic; the event type says what happened."""

    SIGNALS = "signals.received.v1"
    SCREENING = "screening.assessed.v1"
    MATCHING = "matching.proposed.v1"
    NOTIFY = "notify.delivered.v1"
    # The caregiver consultant's actions (services/casework).
    CASEWORK = "casework.actions.v1"

    ALL = (SIGNALS, SCREENING, MATCHING, NOTIFY, CASEWORK)

    @staticmethod
    def dlq(topic: str) -> str:
        return f"{topic}.dlq"


class EventType(StrEnum):
    SIGNAL_RECEIVED = "signal.received"
    SIGNAL_SCREENED = "signal.screened"
    CASE_ESCALATED = "case.escalated"
    MATCHES_PROPOSED = "matches.proposed"
    NOTIFICATION_SENT = "notification.sent"
    RESCREEN_DUE = "rescreen.due"
    REFERRAL_UPDATED = "referral.updated"
    FOLLOW_UP_RECORDED = "followup.recorded"
    CAREGIVER_ERASED = "caregiver.erased"
    # Front doors: a self-referral waits for its e-mail confirmation (notify sends the mail).
    SELF_REFERRAL_CONFIRMATION_REQUESTED = "selfreferral.confirmation_requested"
    # The caregiver consultant (services/casework).
    CASE_TAKEN_UP = "case.taken_up"
    CASE_ANSWERS_RECORDED = "case.answers_recorded"
    CASE_HANDED_OFF = "case.handed_off"
    CASE_CLOSED = "case.closed"


class _Contract(BaseModel):
    # Consumers ignore unknown fields so that producers may add fields first.
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- vocabularies -------------------------------------------------------------------


class SourceKind(StrEnum):
    GP = "gp"
    PRACTICE_NURSE = "practice_nurse"
    WELFARE_WORKER = "welfare_worker"
    NEIGHBOURHOOD_TEAM = "neighbourhood_team"
    HOME_CARE = "home_care"
    RESIDENT = "resident"
    SELF = "self"
    OTHER = "other"


class Observation(StrEnum):
    """Signs a referrer may have noticed. The last group means derailed care (crisis)."""

    SLEEP_PROBLEMS = "sleep_problems"
    PHYSICAL_COMPLAINTS = "physical_complaints"
    SOCIAL_ISOLATION = "social_isolation"
    EXHAUSTION = "exhaustion"
    EMOTIONAL_DISTRESS = "emotional_distress"
    TENSION = "tension"
    DEPRESSIVE_SYMPTOMS = "depressive_symptoms"
    FINANCIAL_PROBLEMS = "financial_problems"
    WORK_PROBLEMS = "work_problems"
    RELATIONSHIP_STRAIN = "relationship_strain"
    NO_TIME_FOR_SELF = "no_time_for_self"
    NO_BACKUP = "no_backup"
    CARE_RECIPIENT_BEHAVIOUR = "care_recipient_behaviour"
    NEGLECT = "neglect"
    AGGRESSION = "aggression"
    ABUSE = "abuse"


DERAILED_CARE = frozenset({Observation.NEGLECT, Observation.AGGRESSION, Observation.ABUSE})


class Urgency(StrEnum):
    NORMAL = "normal"
    HIGH = "high"
    CRISIS = "crisis"


class ContactPreference(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"
    POST = "post"
    DO_NOT_CONTACT = "do_not_contact"


class Language(StrEnum):
    """A caregiver's language: matching looks for services offered in it; messages without
    templates in it are sent in Dutch and say so (notify)."""

    NL = "nl"
    EN = "en"
    TR = "tr"
    AR = "ar"
    PL = "pl"


class RiskLevel(StrEnum):
    IN_BALANCE = "in_balance"
    AT_RISK = "at_risk"
    OVERBURDENED = "overburdened"
    CRISIS = "crisis"


class Need(StrEnum):
    INFORMATION_ADVICE = "information_advice"
    EMOTIONAL_SUPPORT = "emotional_support"
    PRACTICAL_HELP = "practical_help"
    RESPITE_CARE = "respite_care"
    PEER_CONTACT = "peer_contact"
    FINANCIAL_ADMINISTRATIVE = "financial_administrative"
    WORK_CARE_BALANCE = "work_care_balance"
    YOUNG_CARER_SUPPORT = "young_carer_support"
    CASE_MANAGEMENT = "case_management"


# --- the signal as it travels --------------------------------------------------------


class Source(_Contract):
    kind: SourceKind
    reference: str | None = None


class Caregiver(_Contract):
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    birth_year: int | None = None
    postcode: str | None = None
    municipality_code: str
    preferred_language: Language = Language.NL
    contact_preference: ContactPreference = ContactPreference.EMAIL
    # The caregiver's own question ("what would help you most?"), in their words.
    own_question: str | None = None


class CareRecipient(_Contract):
    relationship: str | None = None
    condition: str | None = None
    age: int | None = None


class CareSituation(_Contract):
    hours_per_week: float | None = None
    duration_months: int | None = None
    lives_together: bool | None = None
    combines_with_work: bool | None = None


class InstrumentAnswers(_Contract):
    id: str
    answers: list[int]


class Consent(_Contract):
    contact_caregiver: bool = False
    share_with_providers: bool = False
    obtained_by: str | None = None
    obtained_at: datetime | None = None


class SealedSignal(_Contract):
    """A signal's personal parts, encrypted under the caregiver's data key (``shared.sealing``).

    ``personal`` holds what every stage may need (the caregiver, the care situation, the
    referrer's reference, and any field added later); ``screening`` holds what only screening
    needs (the care recipient, the instrument answers, the observations, the note) and is
    dropped from every later event."""

    personal: str
    screening: str | None = None


# --- care tasks (the national Mantelzorgtest asks per task: effort, hours, help) ----------


class CareTaskKind(StrEnum):
    COOKING = "cooking"
    TRANSPORT = "transport"
    HOUSEHOLD = "household"
    ADMINISTRATION = "administration"
    PERSONAL_CARE = "personal_care"
    SUPERVISION = "supervision"


class CareTaskEffort(StrEnum):
    """How heavy the caregiver finds the task."""

    LIGHT = "light"
    SOMEWHAT_HEAVY = "somewhat_heavy"
    HEAVY = "heavy"
    VERY_HEAVY = "very_heavy"


class CareTask(_Contract):
    task: CareTaskKind
    effort: CareTaskEffort
    hours_per_week: float | None = None
    has_help: bool | None = None


class SignalReceived(_Contract):
    """A signal accepted by the ingest API. Carries personal data: internal topics only.

    On the wire (event version 2) the personal fields travel only inside ``sealed``; a
    consumer gets them back decrypted (``shared.consumer``). Version 1 events (plaintext, no
    ``sealed``) are still understood."""

    signal_id: UUID
    organisation_id: UUID
    organisation_name: str
    received_at: datetime
    source: Source
    caregiver: Caregiver
    care_recipient: CareRecipient = CareRecipient()
    care_situation: CareSituation = CareSituation()
    observations: list[Observation] = []
    instrument: InstrumentAnswers | None = None
    consent: Consent = Consent()
    urgency: Urgency = Urgency.NORMAL
    note: str | None = None
    sealed: SealedSignal | None = None
    care_tasks: list[CareTask] = []
    # The caregiver's own status page (a signed link), for messages to the caregiver; set
    # for caregivers who referred themselves.
    status_url: str | None = None


class ScreeningResult(_Contract):
    instrument: str | None = None
    instrument_version: str | None = None
    score: float | None = None
    band: str | None = None
    risk_level: RiskLevel
    reasons: list[str] = []
    needs: list[Need] = []
    next_instrument: str | None = None
    # Target groups that follow from the care recipient (e.g. "dementia"), so matching needs
    # neither the recipient's condition nor the note. None from producers before this field.
    recipient_groups: list[str] | None = None
    # Signs of neglect, aggression or abuse were observed: the meldcode applies and the caregiver
    # consultant acts on it, while the observations themselves stop at screening.
    derailed_care: bool = False


class SignalScreened(_Contract):
    """Screening judged a signal. ``signal`` repeats what matching and notify need to act:
    never the note nor the care recipient (see ``shared.sealing.slim``)."""

    signal_id: UUID
    case_id: UUID
    screened_at: datetime
    result: ScreeningResult  # the case's judgement: drives matching and the consultant
    signal: SignalReceived
    # The case was escalated to the caregiver consultant: never left to matching alone.
    escalated: bool = False
    # The signal judged on its own content, without the case's other signals: all that its
    # referrer may see (other organisations' signals stay inside screening). None from
    # producers before this field existed.
    own_result: ScreeningResult | None = None


class CaseEscalated(_Contract):
    signal_id: UUID
    case_id: UUID
    escalated_at: datetime
    municipality_code: str
    reason: str
    risk_level: RiskLevel
    signal: SignalReceived


class MatchExplanation(_Contract):
    covers_needs: list[Need] = []
    eligibility: list[str] = []
    score_parts: dict[str, float] = {}


class ProposedMatch(_Contract):
    service_id: str
    service_name: str
    organization_name: str
    category: str
    score: float
    contact_email: str | None = None
    # How the caregiver reaches the service themselves (the overview of support they get).
    contact_phone: str | None = None
    address: str | None = None
    url: str | None = None
    explanation: MatchExplanation = MatchExplanation()
    # The slot held for this proposal; released when the provider declines or it expires.
    reservation_id: UUID | None = None
    # True for the municipality's caregiver consultant, who gets every escalated case.
    consultant: bool = False


class MatchesProposed(_Contract):
    signal_id: UUID
    case_id: UUID
    proposed_at: datetime
    matches: list[ProposedMatch]
    no_match_reason: str | None = None
    result: ScreeningResult
    signal: SignalReceived


class RecipientRole(StrEnum):
    """Whom a message is for."""

    CAREGIVER = "caregiver"
    REFERRER = "referrer"  # the partner organisation that posted the signal
    PROVIDER = "provider"  # a proposed service (or the Wmo desk) asked to accept a referral
    CONSULTANT = "consultant"  # the municipality's caregiver consultant
    RESIDENT = "resident"  # someone who voiced a concern about a caregiver (confirmation mail)


class DeliveryStatus(StrEnum):
    """Where a message is. Only outcomes travel in ``notification.sent`` (delivered, failed,
    suppressed); pending and erased stay inside notify."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"  # never sent: no consent, do not contact, no usable address
    ERASED = "erased"  # the caregiver was erased before it went out


class NotificationSent(_Contract):
    signal_id: UUID
    case_id: UUID
    notification_id: UUID
    recipient_role: RecipientRole
    channel: str
    template: str
    status: DeliveryStatus
    sent_at: datetime
    detail: str | None = None


class RescreenDue(_Contract):
    """A case's follow-up measurement is due (POM: re-measure after a while)."""

    case_id: UUID
    last_signal_id: UUID
    risk_level: RiskLevel
    due_at: datetime
    municipality_code: str


class ReferralStatus(StrEnum):
    """Aligned with the HL7 FHIR Task statuses."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RejectionReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    OUT_OF_AREA = "out_of_area"
    NOT_ELIGIBLE = "not_eligible"
    COULD_NOT_CONTACT = "could_not_contact"
    DECLINED_BY_CAREGIVER = "declined_by_caregiver"
    OTHER = "other"


class ReferralUpdated(_Contract):
    """A referral to one provider changed status (the provider answered, a deadline passed)."""

    signal_id: UUID
    case_id: UUID
    referral_id: UUID
    service_id: str
    service_name: str
    status: ReferralStatus
    reason_code: RejectionReason | None = None
    note: str | None = None
    updated_at: datetime
    updated_by: str  # provider | consultant | system
    reservation_id: UUID | None = None
    # The rejected services, so re-matching does not propose them again.
    excluded_service_ids: list[str] = []
    signal: SignalReceived | None = None
    result: ScreeningResult | None = None


class FollowUpRecorded(_Contract):
    """The caregiver answered the follow-up question: did the support arrive?"""

    signal_id: UUID
    case_id: UUID
    support_arrived: bool
    recorded_at: datetime
    note: str | None = None
    # So the answer can be counted for the municipality from this event alone.
    municipality_code: str | None = None


class ErasureScope(StrEnum):
    CAREGIVER = "caregiver"  # the person everywhere (art. 17, the privacy officer's request)
    SIGNALS = "signals"  # only ``signal_ids``: an organisation withdrew its own signals


class CaregiverErased(_Contract):
    """Erase everything identifying about one caregiver (GDPR art. 17), or only some of
    their signals (``scope`` signals), in every service.

    Published on the signals topic, which every service subscribes to for this type."""

    erasure_id: UUID
    caregiver_pseudonym: str
    signal_ids: list[UUID]
    case_ids: list[UUID] = []
    requested_at: datetime
    requested_by: UUID  # the organisation, or the privacy officer's credential, that asked
    scope: ErasureScope = ErasureScope.CAREGIVER


class SelfReferralConfirmationRequested(_Contract):
    """Someone referred themselves (or voiced a concern) on the public page: the address
    they gave must confirm before anything enters the pipeline (double opt-in)."""

    referral_id: UUID
    email: str
    name: str | None = None
    language: Language = Language.NL
    confirm_url: str
    expires_at: datetime
    concern: bool = False  # a resident's concern about someone else, not a self-referral
    # The address, name and link sealed under the caregiver's data key (``shared.sealing``), so
    # the topic's copy is unreadable once the caregiver is erased.
    sealed: SealedSignal | None = None


# --- the caregiver consultant (services/casework) -------------------------------------


class CaseTakenUp(_Contract):
    """A person (a caregiver consultant, or the region's fallback) has these signals' case
    in their work queue. The referrer may learn only that, never why."""

    case_id: UUID
    signal_ids: list[UUID]
    municipality_code: str
    queue: str  # municipality | regional_fallback
    taken_up_at: datetime


class CaseAnswersRecorded(_Contract):
    """The consultant recorded an instrument's answers from the conversation: ``signal`` is a
    new signal from the consultant about the same caregiver, carrying them, so screening
    re-screens the case exactly as it screens any signal."""

    case_id: UUID
    signal: SignalReceived
    recorded_at: datetime


class CaseHandedOff(_Contract):
    """The consultant hands the case to the municipality's Wmo desk for a kitchen-table
    conversation (keukentafelgesprek): notify makes it a referral like any other."""

    case_id: UUID
    signal_id: UUID
    handed_off_at: datetime
    desk: ProposedMatch
    signal: SignalReceived
    result: ScreeningResult
    note: str | None = None


class CloseReason(StrEnum):
    SUPPORT_IN_PLACE = "support_in_place"
    DECLINED = "declined"
    MOVED = "moved"
    DECEASED = "deceased"  # the person cared for died: no re-screens, condolence-aware contact
    CARE_ENDED = "care_ended"
    PALLIATIVE_PHASE = "palliative_phase"


class CaseClosed(_Contract):
    """The consultant closed the case with a reason."""

    case_id: UUID
    signal_ids: list[UUID]
    reason: CloseReason
    closed_at: datetime
    municipality_code: str
    # The latest signal, so notify can tell the caregiver (with consent) in their language.
    signal: SignalReceived | None = None


# --- the envelope --------------------------------------------------------------------

P = TypeVar("P", bound=BaseModel)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(_Contract, Generic[P]):
    """Metadata every event carries; ``subject`` (the caregiver pseudonym) is the Kafka key."""

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    version: int = 1  # 2: a signal in the payload travels sealed (SEALED_VERSION)
    occurred_at: datetime = Field(default_factory=utcnow)
    correlation_id: str
    causation_id: UUID | None = None
    producer: str
    subject: str
    payload: P


SEALED_VERSION = 2


class RawEnvelope(Envelope[Any]):
    """An envelope whose payload is not parsed yet: used to route by ``event_type``."""

    payload: dict[str, Any]


PAYLOADS: dict[str, type[BaseModel]] = {
    EventType.SIGNAL_RECEIVED: SignalReceived,
    EventType.SIGNAL_SCREENED: SignalScreened,
    EventType.CASE_ESCALATED: CaseEscalated,
    EventType.MATCHES_PROPOSED: MatchesProposed,
    EventType.NOTIFICATION_SENT: NotificationSent,
    EventType.RESCREEN_DUE: RescreenDue,
    EventType.REFERRAL_UPDATED: ReferralUpdated,
    EventType.FOLLOW_UP_RECORDED: FollowUpRecorded,
    EventType.CAREGIVER_ERASED: CaregiverErased,
    EventType.SELF_REFERRAL_CONFIRMATION_REQUESTED: SelfReferralConfirmationRequested,
    EventType.CASE_TAKEN_UP: CaseTakenUp,
    EventType.CASE_ANSWERS_RECORDED: CaseAnswersRecorded,
    EventType.CASE_HANDED_OFF: CaseHandedOff,
    EventType.CASE_CLOSED: CaseClosed,
}


# --- field descriptions (docs/events.md) ------------------------------------------------

#: What a payload field means, for the event catalogue (``python -m deploy.catalogue``) where
#: the field has no comment beside it: by field name where the name means the same in every
#: payload, by ``Model.field`` where it does not. A new field gets a comment or a line here.
FIELD_NOTES: dict[str, str] = {
    "signal_id": "the signal's id, given at intake; the referrer's reference to it",
    "case_id": "the caregiver's case at screening (signals about one caregiver merged)",
    "signal_ids": "the signals concerned",
    "case_ids": "the cases concerned",
    "signal": "the signal as far as this stage may see it (sealed on the wire)",
    "result": "the case's screening result",
    "municipality_code": "CBS code of the caregiver's municipality, e.g. GM0327",
    "risk_level": "in_balance, at_risk, overburdened or crisis",
    "note": "free text for the people who act on it",
    "reason": "why, in words a person can read out",
    "service_id": "the HSDS service id on the social map",
    "service_name": "the service's name on the social map",
    "reservation_id": "the place held for this proposal",
    "Source.kind": "who noticed: the kind of organisation or person",
    "Source.reference": "the referrer's own reference (e.g. its file number)",
    "Caregiver.name": "the caregiver's name",
    "Caregiver.email": "one e-mail address",
    "Caregiver.phone": "a phone number (SMS)",
    "Caregiver.birth_year": "for the age factor and the pseudonym; never a full date",
    "Caregiver.postcode": "PC4 or PC6; for the area and the pseudonym",
    "Caregiver.preferred_language": "the language of messages and of services looked for",
    "Caregiver.contact_preference": "how the caregiver wants to be reached; do_not_contact suppresses every message",
    "CareRecipient.relationship": "the caregiver's relation to the person cared for",
    "CareRecipient.condition": "free text (Dutch or English); screening recognises e.g. dementia",
    "CareRecipient.age": "age of the person cared for",
    "CareSituation.hours_per_week": "hours of care a week",
    "CareSituation.duration_months": "how long the care has gone on",
    "CareSituation.lives_together": "the caregiver lives with the person cared for",
    "CareSituation.combines_with_work": "the caregiver also has paid work",
    "InstrumentAnswers.id": "the instrument (GET /v1/instruments), e.g. ediz_plus",
    "InstrumentAnswers.answers": "one answer value per item, in the instrument's order",
    "Consent.contact_caregiver": "the caregiver may be contacted",
    "Consent.share_with_providers": "the caregiver's details may go to the proposed providers",
    "Consent.obtained_by": "who obtained the consent",
    "Consent.obtained_at": "when",
    "SealedSignal.personal": "ciphertext of the fields every stage may need",
    "SealedSignal.screening": "ciphertext of the fields only screening needs",
    "CareTask.task": "the kind of care task",
    "CareTask.effort": "how heavy the caregiver finds it",
    "CareTask.hours_per_week": "hours a week spent on it",
    "CareTask.has_help": "someone else helps with it",
    "SignalReceived.organisation_id": "the partner organisation that posted the signal",
    "SignalReceived.organisation_name": "its name",
    "SignalReceived.received_at": "when signals accepted it",
    "SignalReceived.source": "who noticed",
    "SignalReceived.caregiver": "the person the signal is about",
    "SignalReceived.care_recipient": "the person cared for (screening only)",
    "SignalReceived.care_situation": "load factors of the balance model",
    "SignalReceived.observations": "signs the referrer noticed (screening only)",
    "SignalReceived.instrument": "a completed burden instrument (screening only)",
    "SignalReceived.consent": "what the caregiver agreed to",
    "SignalReceived.urgency": "normal, high or crisis, as the referrer judged",
    "SignalReceived.note": "the referrer's free text (screening only)",
    "SignalReceived.sealed": "the personal fields, encrypted (event version 2)",
    "SignalReceived.care_tasks": "per care task: effort, hours, help (self-referral)",
    "ScreeningResult.instrument": "the instrument scored, if any",
    "ScreeningResult.instrument_version": "its version",
    "ScreeningResult.score": "the instrument's score",
    "ScreeningResult.band": "the instrument's band for the score",
    "ScreeningResult.risk_level": "the judgement",
    "ScreeningResult.reasons": "why, in plain English sentences",
    "ScreeningResult.needs": "what would help; matching looks for services covering them",
    "ScreeningResult.next_instrument": "the instrument to administer next",
    "SignalScreened.screened_at": "when screening judged it",
    "CaseEscalated.escalated_at": "when the case was escalated",
    "CaseEscalated.reason": "why the caregiver consultant must act",
    "MatchExplanation.covers_needs": "the needs the service covers",
    "MatchExplanation.eligibility": "why the caregiver is eligible",
    "MatchExplanation.score_parts": "the ranking's parts: need coverage, distance, capacity, freshness, preference",
    "ProposedMatch.organization_name": "the organisation offering the service",
    "ProposedMatch.category": "the service's taxonomy category",
    "ProposedMatch.score": "the ranking score, 0 to 1",
    "ProposedMatch.contact_email": "where the referral goes",
    "ProposedMatch.address": "the service's address",
    "ProposedMatch.url": "the service's website",
    "ProposedMatch.explanation": "why this service was proposed",
    "MatchesProposed.proposed_at": "when matching proposed",
    "MatchesProposed.matches": "the proposals, best first; the consultant's entry when escalated",
    "MatchesProposed.no_match_reason": "why nothing matched (the consultant takes over)",
    "NotificationSent.notification_id": "the message's id (e-mail Message-ID, webhook X-Delivery-Id)",
    "NotificationSent.recipient_role": "whom the message was for",
    "NotificationSent.status": "the outcome: delivered, failed or suppressed",
    "NotificationSent.channel": "email, sms, webhook, status_view or none",
    "NotificationSent.template": "which message",
    "NotificationSent.sent_at": "when the outcome was recorded",
    "NotificationSent.detail": "why a message failed or was suppressed, without personal data",
    "RescreenDue.last_signal_id": "the case's latest signal",
    "RescreenDue.risk_level": "the case's level when the re-screen was scheduled",
    "RescreenDue.due_at": "when the re-screen fell due",
    "ReferralUpdated.referral_id": "the referral to one provider",
    "ReferralUpdated.status": "the FHIR Task status",
    "ReferralUpdated.reason_code": "why a provider rejected (or a referral failed)",
    "ReferralUpdated.note": "the provider's free text (never shown to the referrer)",
    "ReferralUpdated.updated_at": "when the status changed",
    "ReferralUpdated.signal": "the signal, for re-matching after a rejection",
    "ReferralUpdated.result": "the screening result, for re-matching after a rejection",
    "FollowUpRecorded.support_arrived": "the caregiver's answer",
    "FollowUpRecorded.recorded_at": "when they answered",
    "FollowUpRecorded.note": "the caregiver's own words",
    "CaregiverErased.erasure_id": "the erasure request",
    "CaregiverErased.caregiver_pseudonym": "the caregiver's keyed-HMAC pseudonym",
    "CaregiverErased.signal_ids": "the signals to erase",
    "CaregiverErased.case_ids": "the cases to erase",
    "CaregiverErased.requested_at": "when it was asked",
    "CaregiverErased.scope": "caregiver (the person everywhere) or signals (only these)",
    "SelfReferralConfirmationRequested.referral_id": "the waiting self-referral",
    "SelfReferralConfirmationRequested.email": "the address that must confirm",
    "SelfReferralConfirmationRequested.name": "the name given",
    "SelfReferralConfirmationRequested.language": "the language of the confirmation mail",
    "SelfReferralConfirmationRequested.confirm_url": "the link that opens the confirmation page",
    "SelfReferralConfirmationRequested.expires_at": "after this the submission is deleted unconfirmed",
    "CaseTakenUp.taken_up_at": "when the case entered the queue",
    "CaseAnswersRecorded.signal": "the consultant's signal carrying the answers",
    "CaseAnswersRecorded.recorded_at": "when the answers were recorded",
    "CaseHandedOff.handed_off_at": "when the consultant handed off",
    "CaseHandedOff.desk": "the municipality's Wmo desk, as a proposal notify refers to",
    "CaseHandedOff.note": "the consultant's note for the desk",
    "CaseClosed.reason": "why the case was closed",
    "CaseClosed.closed_at": "when",
    "Envelope.event_id": "unique per event; consumers dedupe on it (inbox)",
    "Envelope.event_type": "what happened; selects the payload",
    "Envelope.occurred_at": "when the producer made the event",
    "Envelope.correlation_id": "follows one signal through every service and log line",
    "Envelope.causation_id": "the event this one was made in response to",
    "Envelope.producer": "the producing service",
    "Envelope.subject": "the caregiver's pseudonym: the Kafka key, so one caregiver's events stay in order",
    "Envelope.payload": "the event type's payload, below",
}
