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


class NotificationSent(_Contract):
    signal_id: UUID
    case_id: UUID
    notification_id: UUID
    recipient_role: str  # caregiver | referrer | provider | consultant
    channel: str
    template: str
    status: str  # delivered | failed | suppressed
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
