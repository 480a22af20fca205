"""The screening judgement, as pure functions: how burdened is this caregiver, why, and what
would help.

``assess`` judges one signal: a completed instrument where there is one, the balance model
(load against capacity) always, and crisis above everything. ``combine_case`` judges a
caregiver's case from all its signals. Every outcome carries reasons in plain English that a
caregiver consultant can read out and defend at the kitchen table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared.contracts import (
    DERAILED_CARE,
    CareTaskEffort,
    CareTaskKind,
    Need,
    Observation,
    RiskLevel,
    ScreeningResult,
    SignalReceived,
    SourceKind,
    Urgency,
)
from shared.instruments import Catalogue, Instrument, InstrumentScore


class InvalidScreeningInput(ValueError):
    """The signal cannot be judged as sent (unknown instrument, invalid answers)."""


_LEVELS = list(RiskLevel)  # declared from least to most severe


def _rank(level: RiskLevel) -> int:
    return _LEVELS.index(level)


def _highest(*levels: RiskLevel) -> RiskLevel:
    return max(levels, key=_rank)


# --- instruments ---------------------------------------------------------------------

#: Preferred instrument to administer next: Dutch, free, validated on 2,444 caregivers of
#: every kind, with a validated overburdening cut-off.
NEXT_INSTRUMENT = "ediz_plus"

#: Instruments without bands (MCSI, EDIZ) have no validated cut-off. We read them with the
#: proportions of the EDIZ-plus, the one Dutch cut-off set validated on a broad caregiver
#: population: moderate burden starts at 4 of 15 and overburdening at 9 of 15 of the range.
#: EDIZ: at risk from 3, overburdened from 6 (of 9); MCSI: from 7 and 16 (of 26). These are
#: provisional screening thresholds and the reasons say so.
AT_RISK_SHARE = Fraction(4, 15)
OVERBURDENED_SHARE = Fraction(9, 15)


def _threshold(instrument: Instrument, share: Fraction) -> int:
    return instrument.min_score + math.ceil(share * (instrument.max_score - instrument.min_score))


def _instrument_level(instrument: Instrument, score: InstrumentScore) -> tuple[RiskLevel, list[str]]:
    head = f"{instrument.name} score {score.total} of {score.max}"
    band = instrument.band_for(score.total)
    if band is not None:
        text = f"{head}: band {band.label_en} ({band.lower}–{band.upper})"
        if band.high_burden:
            return RiskLevel.OVERBURDENED, [f"{text}, a high-burden band: overburdened"]
        if band.elevated:
            return RiskLevel.AT_RISK, [f"{text}, burden below the cut-off: at risk"]
        return RiskLevel.IN_BALANCE, [text]
    at_risk, over = _threshold(instrument, AT_RISK_SHARE), _threshold(instrument, OVERBURDENED_SHARE)
    level = (
        RiskLevel.OVERBURDENED
        if score.total >= over
        else RiskLevel.AT_RISK
        if score.total >= at_risk
        else RiskLevel.IN_BALANCE
    )
    return level, [
        f"{head}: no validated cut-off; read provisionally as {_words(level)} "
        f"({at_risk} or more at risk, {over} or more overburdened)"
    ]


def _measure(signal: SignalReceived, catalogue: Catalogue) -> tuple[Instrument, InstrumentScore] | None:
    if signal.instrument is None:
        return None
    if signal.instrument.id not in catalogue:
        raise InvalidScreeningInput(f"unknown instrument {signal.instrument.id!r}")
    instrument = catalogue.get(signal.instrument.id)
    try:
        return instrument, instrument.score(signal.instrument.answers)
    except ValueError as exc:
        raise InvalidScreeningInput(str(exc)) from exc


# --- the balance model (draaglast / draagkracht) -------------------------------------


class Side(StrEnum):
    LOAD = "load"
    CAPACITY = "reduced capacity"
    STRAIN = "signs of strain"


#: What each observation says about the balance. Derailed care is not weighed: it is a crisis.
OBSERVATIONS: dict[Observation, tuple[Side, int, str]] = {
    Observation.CARE_RECIPIENT_BEHAVIOUR: (Side.LOAD, 2, "the person cared for shows behaviour problems"),
    Observation.NO_BACKUP: (Side.CAPACITY, 1, "nobody to take over the care"),
    Observation.FINANCIAL_PROBLEMS: (Side.CAPACITY, 1, "financial problems"),
    Observation.SOCIAL_ISOLATION: (Side.CAPACITY, 1, "socially isolated: a small network to lean on"),
    Observation.EXHAUSTION: (Side.STRAIN, 2, "observed exhaustion"),
    Observation.EMOTIONAL_DISTRESS: (Side.STRAIN, 2, "observed emotional distress"),
    Observation.DEPRESSIVE_SYMPTOMS: (Side.STRAIN, 2, "observed depressive symptoms"),
    Observation.SLEEP_PROBLEMS: (Side.STRAIN, 1, "observed sleep problems"),
    Observation.PHYSICAL_COMPLAINTS: (Side.STRAIN, 1, "observed physical complaints"),
    Observation.TENSION: (Side.STRAIN, 1, "observed tension"),
    Observation.WORK_PROBLEMS: (Side.STRAIN, 1, "observed problems at work"),
    Observation.RELATIONSHIP_STRAIN: (Side.STRAIN, 1, "observed strain in the relationship"),
    Observation.NO_TIME_FOR_SELF: (Side.STRAIN, 1, "no time left for themselves"),
}
#: These show the balance has already tipped, whatever else is known.
TIPPING_SIGNS = frozenset({Observation.EXHAUSTION, Observation.EMOTIONAL_DISTRESS, Observation.DEPRESSIVE_SYMPTOMS})

HOURS_STEPS = ((40, 3), (20, 2), (8, 1))  # more than N hours a week -> points
LONG_CARE_MONTHS = 12
YOUNG_CARER_BELOW = 25
OLDER_CARER_FROM = 75
AT_RISK_FROM = 4
OVERBURDENED_FROM = 8

# The recipient's condition is free text (Dutch or English); these stems pick out the
# conditions that research ties to heavier care: constant supervision, unpredictability.
HEAVY_CONDITIONS = {
    "dementia": ("dement", "alzheimer"),
    "a psychiatric condition": (
        "psychiatr",
        "psychisch",
        "ggz",
        "schizo",
        "bipola",
        "psychos",
        "depress",
        "verslav",
        "addict",
    ),
}
BEHAVIOUR_STEMS = ("gedrag", "behaviour", "behavior")


@dataclass(frozen=True)
class Factor:
    side: Side
    points: int
    reason: str


@dataclass(frozen=True)
class Balance:
    factors: list[Factor]
    level: RiskLevel
    reasons: list[str]

    @property
    def points(self) -> int:
        return sum(f.points for f in self.factors)


def caregiver_age(signal: SignalReceived) -> int | None:
    """Approximate age at the signal (birth year only, so possibly one year high)."""
    born = signal.caregiver.birth_year
    return signal.received_at.year - born if born else None


def _heavy_conditions(signal: SignalReceived) -> list[str]:
    text = (signal.care_recipient.condition or "").casefold()
    return [label for label, stems in HEAVY_CONDITIONS.items() if any(s in text for s in stems)]


def observed(signal: SignalReceived) -> set[Observation]:
    """The observations, plus behaviour problems when the recipient's condition names them."""
    found = set(signal.observations)
    if any(s in (signal.care_recipient.condition or "").casefold() for s in BEHAVIOUR_STEMS):
        found.add(Observation.CARE_RECIPIENT_BEHAVIOUR)
    return found


def _situation_factors(signal: SignalReceived) -> list[Factor]:
    situation = signal.care_situation
    factors = []
    hours = situation.hours_per_week
    if hours is not None:
        step = next(((limit, pts) for limit, pts in HOURS_STEPS if hours > limit), None)
        if step:
            factors.append(Factor(Side.LOAD, step[1], f"cares {hours:g} hours per week (more than {step[0]})"))
    if situation.duration_months is not None and situation.duration_months >= LONG_CARE_MONTHS:
        factors.append(Factor(Side.LOAD, 1, f"has cared for {situation.duration_months} months (a year or longer)"))
    if situation.lives_together:
        factors.append(Factor(Side.LOAD, 1, "lives with the person cared for"))
    if situation.combines_with_work:
        factors.append(Factor(Side.LOAD, 1, "combines care with paid work"))
    if heavy := _heavy_conditions(signal):
        factors.append(Factor(Side.LOAD, 2, f"the person cared for has {' and '.join(heavy)}"))
    age = caregiver_age(signal)
    if age is not None and age < YOUNG_CARER_BELOW:
        factors.append(Factor(Side.CAPACITY, 1, f"caregiver is about {age}: a young carer (under {YOUNG_CARER_BELOW})"))
    elif age is not None and age >= OLDER_CARER_FROM:
        factors.append(Factor(Side.CAPACITY, 1, f"caregiver is about {age} ({OLDER_CARER_FROM} or older)"))
    return factors


def _unknown(signal: SignalReceived) -> list[str]:
    s = signal.care_situation
    fields = {
        "hours per week": s.hours_per_week,
        "duration of care": s.duration_months,
        "living together": s.lives_together,
        "paid work": s.combines_with_work,
        "caregiver's age": signal.caregiver.birth_year,
        "the recipient's condition": signal.care_recipient.condition,
    }
    return [name for name, value in fields.items() if value is None]


def weigh_balance(signal: SignalReceived) -> Balance:
    """Load against capacity, as points. Every factor adds pressure; none subtracts.

    ======================================  ======  ==================================================
    factor                                  points  why
    ======================================  ======  ==================================================
    hours per week > 8 / > 20 / > 40        1/2/3   SCP calls > 8 h intensive; > 40 h is a full-time job
    cared for a year or longer              1       reserves wear down over time
    lives with the person cared for         1       no distance from the care, day or night
    combines care with paid work            1       time pressure (the EDIZ-plus adds items on it)
    dementia or psychiatric condition       2       supervision and unpredictability weigh most
    behaviour problems of the recipient     2       a known driver of strain (CSI item 9 asks about it)
    caregiver under 25 (young carer)        1       school and growing up compete with the care
    caregiver 75 or older                   1       own health and energy are more fragile
    no backup / financial problems          1 each  capacity: nobody to take over, no money for help
    social isolation                        1       capacity: a small network carries less
    exhaustion, emotional distress,         2 each  the balance has tipped: also means at least at risk
    depressive symptoms
    other signs of strain (sleep, physical  1 each  early signs that load exceeds capacity
    complaints, tension, work, relationship,
    no time for self)
    ======================================  ======  ==================================================

    0–3 points is in balance, 4–7 at risk, 8 or more overburdened. A referrer's "high"
    urgency also means at least at risk. Unknown facts add nothing and are listed, so the
    consultant knows what to ask.
    """
    seen = observed(signal)
    factors = _situation_factors(signal) + [
        Factor(*OBSERVATIONS[o]) for o in Observation if o in seen and o in OBSERVATIONS
    ]
    points = sum(f.points for f in factors)
    level = (
        RiskLevel.OVERBURDENED
        if points >= OVERBURDENED_FROM
        else RiskLevel.AT_RISK
        if points >= AT_RISK_FROM
        else RiskLevel.IN_BALANCE
    )
    by_side = ", ".join(f"{side} {sum(f.points for f in factors if f.side is side)}" for side in Side)
    reasons = [f.reason for f in factors]
    reasons.append(f"balance model: {points} points ({by_side}); {_band_words(level)}")
    if tipping := [o.value.replace("_", " ") for o in Observation if o in seen & TIPPING_SIGNS]:
        level = _highest(level, RiskLevel.AT_RISK)
        reasons.append(f"{', '.join(tipping)} mean at least at risk")
    if signal.urgency is Urgency.HIGH:
        level = _highest(level, RiskLevel.AT_RISK)
        reasons.append("the referrer marked the signal as urgent: at least at risk")
    if unknown := _unknown(signal):
        reasons.append(f"not reported, so not weighed: {', '.join(unknown)}")
    return Balance(factors=factors, level=level, reasons=reasons)


def _band_words(level: RiskLevel) -> str:
    return {
        RiskLevel.IN_BALANCE: f"below {AT_RISK_FROM} reads as in balance",
        RiskLevel.AT_RISK: f"{AT_RISK_FROM} to {OVERBURDENED_FROM - 1} reads as at risk",
        RiskLevel.OVERBURDENED: f"{OVERBURDENED_FROM} or more reads as overburdened",
    }[level]


def _words(level: RiskLevel) -> str:
    return level.value.replace("_", " ")


# --- crisis and needs ----------------------------------------------------------------


def _crisis_reasons(signal: SignalReceived) -> list[str]:
    reasons = []
    if signal.urgency is Urgency.CRISIS:
        reasons.append("the referrer reported a crisis")
    if derailed := [o.value for o in Observation if o in DERAILED_CARE and o in signal.observations]:
        reasons.append(f"signs of derailed care observed: {', '.join(derailed)} (Veilig Thuis can advise)")
    return reasons


# What a care task the caregiver finds heavy asks for (the Mantelzorgtest's tasks): taking
# over the task (practical help, administrative help) or, for tasks that tie the caregiver
# to the person, time off (respite care).
TASK_NEEDS: dict[CareTaskKind, frozenset[Need]] = {
    CareTaskKind.COOKING: frozenset({Need.PRACTICAL_HELP}),
    CareTaskKind.TRANSPORT: frozenset({Need.PRACTICAL_HELP}),
    CareTaskKind.HOUSEHOLD: frozenset({Need.PRACTICAL_HELP}),
    CareTaskKind.ADMINISTRATION: frozenset({Need.FINANCIAL_ADMINISTRATIVE}),
    CareTaskKind.PERSONAL_CARE: frozenset({Need.RESPITE_CARE, Need.PRACTICAL_HELP}),
    CareTaskKind.SUPERVISION: frozenset({Need.RESPITE_CARE}),
}
HEAVY_EFFORT = frozenset({CareTaskEffort.HEAVY, CareTaskEffort.VERY_HEAVY})


def task_needs(signal: SignalReceived) -> set[Need]:
    """The needs of the care tasks the caregiver finds heavy and has no help with."""
    return {
        need
        for task in signal.care_tasks
        if task.effort in HEAVY_EFFORT and task.has_help is not True
        for need in TASK_NEEDS[task.task]
    }


def derive_needs(signal: SignalReceived, level: RiskLevel) -> list[Need]:
    """What would help, in the vocabulary's order. Information and advice always applies."""
    seen = observed(signal)
    from_tasks = task_needs(signal)
    situation = signal.care_situation
    age = caregiver_age(signal)
    heavy = _rank(level) >= _rank(RiskLevel.OVERBURDENED)
    wanted = {
        Need.INFORMATION_ADVICE: True,
        Need.EMOTIONAL_SUPPORT: bool(
            seen
            & {
                Observation.SOCIAL_ISOLATION,
                Observation.EMOTIONAL_DISTRESS,
                Observation.DEPRESSIVE_SYMPTOMS,
                Observation.TENSION,
                Observation.RELATIONSHIP_STRAIN,
            }
        ),
        Need.PRACTICAL_HELP: Observation.PHYSICAL_COMPLAINTS in seen or (age is not None and age >= OLDER_CARER_FROM),
        Need.RESPITE_CARE: heavy
        or (situation.hours_per_week or 0) > 20
        or bool(seen & {Observation.EXHAUSTION, Observation.NO_TIME_FOR_SELF}),
        Need.PEER_CONTACT: Observation.SOCIAL_ISOLATION in seen,
        Need.FINANCIAL_ADMINISTRATIVE: Observation.FINANCIAL_PROBLEMS in seen,
        Need.WORK_CARE_BALANCE: bool(situation.combines_with_work) or Observation.WORK_PROBLEMS in seen,
        Need.YOUNG_CARER_SUPPORT: age is not None and age < YOUNG_CARER_BELOW,
        Need.CASE_MANAGEMENT: heavy,
    }
    return [need for need in Need if wanted[need] or need in from_tasks]


# --- one signal ----------------------------------------------------------------------


def assess(signal: SignalReceived, catalogue: Catalogue) -> ScreeningResult:
    """Judge one signal. Crisis wins; otherwise the higher of instrument and balance model."""
    measured = _measure(signal, catalogue)
    balance = weigh_balance(signal)
    crisis = _crisis_reasons(signal)
    reasons = list(crisis)
    level = balance.level
    next_instrument = NEXT_INSTRUMENT if NEXT_INSTRUMENT in catalogue else None
    scored: dict[str, object] = {}
    if measured is not None:
        instrument, score = measured
        scored = {
            "instrument": instrument.id,
            "instrument_version": instrument.version,
            "score": float(score.total),
            "band": score.band,
        }
        measured_level, measured_reasons = _instrument_level(instrument, score)
        reasons += measured_reasons
        if score.contributing_items:
            reasons.append(
                f"{instrument.name} answers that added to the score: items "
                + ", ".join(str(n) for n in score.contributing_items)
            )
        if _rank(balance.level) > _rank(measured_level):
            reasons.append(f"the care situation weighs more than the {instrument.name} score: {_words(balance.level)}")
        level = _highest(measured_level, balance.level)
        # A banded score is a measurement to act on; an unbanded one calls for a validated cut-off.
        if instrument.bands:
            next_instrument = None
    reasons += balance.reasons
    if crisis:
        level = RiskLevel.CRISIS
    if next_instrument is not None:
        reasons.append(f"next: administer {catalogue.get(next_instrument).name} to measure the burden")
    return ScreeningResult(
        **scored,
        risk_level=level,
        reasons=reasons,
        needs=derive_needs(signal, level),
        next_instrument=next_instrument,
        derailed_care=bool(DERAILED_CARE & set(signal.observations)),
    )


# --- one case per caregiver ----------------------------------------------------------


class Confidence(StrEnum):
    """How much the case's level rests on: independent sources plus a completed instrument.

    Evidence counts each independent source (another organisation or another kind of
    referrer) once, and a completed instrument once: 1 is low, 2 medium, 3 or more high.
    The same GP signalling twice is one source, not two."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Contribution(BaseModel):
    model_config = ConfigDict(frozen=True)

    signal_id: UUID
    source_kind: SourceKind
    organisation_id: UUID
    received_at: datetime
    result: ScreeningResult

    @property
    def source(self) -> tuple[UUID, SourceKind]:
        return self.organisation_id, self.source_kind


@dataclass(frozen=True)
class DueRescreen:
    """A case whose follow-up measurement is due: what ``rescreen.due`` tells."""

    case_id: UUID
    caregiver_pseudonym: str
    municipality_code: str
    risk_level: RiskLevel
    due_at: datetime
    last_signal_id: UUID


class CaseAssessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    risk_level: RiskLevel
    confidence: Confidence
    reasons: list[str]
    needs: list[Need]
    escalate: bool


def _kinds(contributions: list[Contribution]) -> str:
    return ", ".join(sorted({c.source_kind.value.replace("_", " ") for c in contributions}))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def combine_case(contributions: list[Contribution]) -> CaseAssessment:
    """One judgement per caregiver from all the case's signals.

    The case takes the highest level of its signals. Two or more independent sources that
    each see at least at risk corroborate each other: at risk becomes overburdened, and
    overburdening confirmed that way is escalated to a caregiver consultant, as is a crisis."""
    if not contributions:
        raise ValueError("a case needs at least one screened signal")
    sources = {c.source for c in contributions}
    measured = any(c.result.instrument is not None for c in contributions)
    evidence = len(sources) + measured
    confidence = Confidence.LOW if evidence <= 1 else Confidence.MEDIUM if evidence == 2 else Confidence.HIGH
    reasons = [
        f"{_count(len(contributions), 'signal')} from {_count(len(sources), 'independent source')} "
        f"({_kinds(contributions)}){', with a completed instrument' if measured else ''}: "
        f"confidence {confidence}"
    ]

    top = max(contributions, key=lambda c: (_rank(c.result.risk_level), c.received_at))
    level = top.result.risk_level
    if len(contributions) > 1:
        reasons.append(
            f"highest level among the signals: {_words(level)} "
            f"(from the {_kinds([top])} signal of {top.received_at:%Y-%m-%d})"
        )
    concerned = [c for c in contributions if _rank(c.result.risk_level) >= _rank(RiskLevel.AT_RISK)]
    corroborated = len({c.source for c in concerned}) >= 2
    if corroborated and level is RiskLevel.AT_RISK:
        level = RiskLevel.OVERBURDENED
        reasons.append(
            f"independent sources ({_kinds(concerned)}) each judged the caregiver at risk: raised to overburdened"
        )

    escalate = level is RiskLevel.CRISIS or (corroborated and level is RiskLevel.OVERBURDENED)
    if level is RiskLevel.CRISIS:
        reasons.append("crisis: escalate to a caregiver consultant now")
    elif escalate:
        reasons.append("overburdening confirmed by independent sources: escalate to a caregiver consultant")

    wanted = {need for c in contributions for need in c.result.needs} | {Need.INFORMATION_ADVICE}
    if _rank(level) >= _rank(RiskLevel.OVERBURDENED):
        wanted |= {Need.CASE_MANAGEMENT, Need.RESPITE_CARE}
    return CaseAssessment(
        risk_level=level,
        confidence=confidence,
        reasons=reasons,
        needs=[n for n in Need if n in wanted],
        escalate=escalate,
    )


# --- re-screening --------------------------------------------------------------------

#: When to look again, after the screening that set the level.
RESCREEN_AFTER: dict[RiskLevel, timedelta | None] = {
    RiskLevel.CRISIS: timedelta(days=7),  # a week after the crisis response: is the situation safe now?
    RiskLevel.OVERBURDENED: timedelta(days=14),  # POM's follow-up conversation after about two weeks
    RiskLevel.AT_RISK: timedelta(days=90),  # a quarter: has support reached them, is it holding?
    RiskLevel.IN_BALANCE: timedelta(days=365),  # yearly: care situations change slowly, but they do change
}


def rescreen_due(level: RiskLevel, screened_at: datetime) -> datetime | None:
    after = RESCREEN_AFTER[level]
    return screened_at + after if after is not None else None


def recipient_groups(signal: SignalReceived) -> list[str]:
    """Target groups that follow from the care recipient, for matching, which does not get
    the recipient's condition itself."""
    condition = (signal.care_recipient.condition or "").casefold()
    return ["dementia"] if "dement" in condition else []
