"""The screening judgement: instrument bands, the balance model, crisis, needs, cases."""

import copy
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.screening import domain
from services.screening.domain import Confidence, Contribution, InvalidScreeningInput, assess, combine_case
from shared.contracts import DERAILED_CARE, Need, Observation, RiskLevel, ScreeningResult, SignalReceived
from shared.instruments import load_catalogue

CATALOGUE = load_catalogue()
RECEIVED = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
GP_PRACTICE = uuid.uuid4()
LEVELS = list(RiskLevel)

# The project's example: a caregiver in Leusden whose partner has dementia.
EXAMPLE = {
    "organisation_id": GP_PRACTICE,
    "organisation_name": "Huisartsenpraktijk Leusden",
    "received_at": RECEIVED,
    "source": {"kind": "gp", "reference": "HIS-2026-000123"},
    "caregiver": {"name": "Anna de Vries", "birth_year": 1961, "postcode": "3831AB", "municipality_code": "GM0327"},
    "care_recipient": {"relationship": "partner", "condition": "dementia", "age": 68},
    "care_situation": {
        "hours_per_week": 30,
        "duration_months": 24,
        "lives_together": True,
        "combines_with_work": False,
    },
    "observations": ["sleep_problems", "physical_complaints", "social_isolation"],
    "instrument": {"id": "ediz_plus", "answers": [1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1]},
}
# Little load and nothing observed: the instrument alone decides.
CALM = {
    "care_recipient": {"relationship": "mother", "condition": "diabetes"},
    "care_situation": {"hours_per_week": 4, "duration_months": 6, "lives_together": False, "combines_with_work": False},
    "observations": [],
}


def make_signal(base=EXAMPLE, **changes) -> SignalReceived:
    """The example signal with ``changes``; a dict change merges into the nested part."""
    data = copy.deepcopy(base)
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return SignalReceived.model_validate({"signal_id": uuid.uuid4(), **data})


def calm(**changes) -> SignalReceived:
    return make_signal({**EXAMPLE, **CALM}, **changes)


def answers(instrument_id: str, total: int) -> dict:
    """Answers to ``instrument_id`` adding up to ``total`` (first items first)."""
    instrument = CATALOGUE.get(instrument_id)
    by_score: dict[int, int] = {}
    for value in instrument.answer_values:
        by_score.setdefault(instrument.scoring.item_score(value), value)
    top, result = max(by_score), []
    for _ in instrument.items:
        step = min(total, top)
        result.append(by_score[step])
        total -= step
    return {"id": instrument_id, "answers": result}


def at_least(level: RiskLevel, floor: RiskLevel) -> bool:
    return LEVELS.index(level) >= LEVELS.index(floor)


# --- instrument answers --------------------------------------------------------------


def test_the_example_signal_is_overburdened_on_the_ediz_plus():
    result = assess(make_signal(), CATALOGUE)
    assert (result.instrument, result.instrument_version) == ("ediz_plus", "1.0")
    assert (result.score, result.band) == (11.0, "heavy")
    assert result.risk_level is RiskLevel.OVERBURDENED and result.next_instrument is None
    assert "cares 30 hours per week (more than 20)" in result.reasons


def test_ediz_plus_nine_is_overburdened_in_band_heavy():
    result = assess(calm(instrument=answers("ediz_plus", 9)), CATALOGUE)
    assert (result.risk_level, result.band, result.score) == (RiskLevel.OVERBURDENED, "heavy", 9.0)
    assert result.reasons[0] == "EDIZ-plus score 9 of 15: band heavy (9–15), a high-burden band: overburdened"
    assert "EDIZ-plus answers that added to the score: items 1, 2, 3, 4, 5, 6, 7, 8, 9" in result.reasons


def test_ediz_plus_eight_is_at_risk_in_band_moderate():
    result = assess(calm(instrument=answers("ediz_plus", 8)), CATALOGUE)
    assert (result.risk_level, result.band) == (RiskLevel.AT_RISK, "moderate")
    assert result.reasons[0].startswith("EDIZ-plus score 8 of 15: band moderate (4–8)")


@pytest.mark.parametrize("total,level", [(0, RiskLevel.IN_BALANCE), (3, RiskLevel.IN_BALANCE), (4, RiskLevel.AT_RISK)])
def test_ediz_plus_light_and_none_are_in_balance(total, level):
    assert assess(calm(instrument=answers("ediz_plus", total)), CATALOGUE).risk_level is level


@pytest.mark.parametrize("instrument_id,high,below", [("csi", 7, 6), ("zbi4", 8, 7)])
def test_the_high_burden_cut_off_means_at_least_overburdened(instrument_id, high, below):
    above_cut = assess(calm(instrument=answers(instrument_id, high)), CATALOGUE)
    below_cut = assess(calm(instrument=answers(instrument_id, below)), CATALOGUE)
    assert at_least(above_cut.risk_level, RiskLevel.OVERBURDENED)
    assert not at_least(below_cut.risk_level, RiskLevel.OVERBURDENED)


@pytest.mark.parametrize(
    "instrument_id,total,level",
    [
        ("mcsi", 6, RiskLevel.IN_BALANCE),
        ("mcsi", 7, RiskLevel.AT_RISK),
        ("mcsi", 15, RiskLevel.AT_RISK),
        ("mcsi", 16, RiskLevel.OVERBURDENED),
        ("ediz", 2, RiskLevel.IN_BALANCE),
        ("ediz", 3, RiskLevel.AT_RISK),
        ("ediz", 5, RiskLevel.AT_RISK),
        ("ediz", 6, RiskLevel.OVERBURDENED),
    ],
)
def test_unbanded_instruments_use_provisional_thresholds_and_ask_for_the_ediz_plus(instrument_id, total, level):
    result = assess(calm(instrument=answers(instrument_id, total)), CATALOGUE)
    assert result.risk_level is level and result.band is None
    assert "no validated cut-off" in result.reasons[0]
    assert result.next_instrument == "ediz_plus"


def test_a_heavy_care_situation_outweighs_a_low_score():
    result = assess(make_signal(instrument=answers("ediz_plus", 0)), CATALOGUE)
    assert result.risk_level is RiskLevel.OVERBURDENED and result.band == "none"
    assert "the care situation weighs more than the EDIZ-plus score: overburdened" in result.reasons


@pytest.mark.parametrize(
    "instrument,message",
    [
        ({"id": "ediz_plus", "answers": [1] * 14}, "ediz_plus expects 15 answers, got 14"),
        ({"id": "csi", "answers": [0, 0, 2] + [0] * 10}, "csi item 3: answer 2 is not one of 0, 1"),
        ({"id": "zbi22", "answers": [0] * 22}, "unknown instrument 'zbi22'"),
    ],
)
def test_invalid_answers_cannot_be_judged(instrument, message):
    with pytest.raises(InvalidScreeningInput, match=message) as info:
        assess(make_signal(instrument=instrument), CATALOGUE)
    assert isinstance(info.value, ValueError)


# --- the balance model ---------------------------------------------------------------


def test_without_answers_the_balance_model_gives_a_reasoned_level_and_the_next_instrument():
    result = assess(make_signal(instrument=None), CATALOGUE)
    assert result.risk_level is RiskLevel.OVERBURDENED
    assert result.instrument is None and result.score is None and result.next_instrument == "ediz_plus"
    for reason in (
        "cares 30 hours per week (more than 20)",
        "has cared for 24 months (a year or longer)",
        "lives with the person cared for",
        "the person cared for has dementia",
        "balance model: 9 points (load 6, reduced capacity 1, signs of strain 2); 8 or more reads as overburdened",
        "next: administer EDIZ-plus to measure the burden",
    ):
        assert reason in result.reasons


def test_a_moderate_situation_is_at_risk():
    signal = make_signal(instrument=None, observations=[], care_situation={"hours_per_week": 12})
    result = assess(signal, CATALOGUE)  # 1 hours + 1 duration + 1 together + 2 dementia
    assert result.risk_level is RiskLevel.AT_RISK
    assert (
        "balance model: 5 points (load 5, reduced capacity 0, signs of strain 0); 4 to 7 reads as at risk"
    ) in result.reasons


def test_a_signal_with_little_known_is_in_balance_and_says_what_is_missing():
    bare = {key: EXAMPLE[key] for key in ("organisation_id", "organisation_name", "received_at", "source")}
    result = assess(make_signal(bare, caregiver={"municipality_code": "GM0327"}, observations=["tension"]), CATALOGUE)
    assert result.risk_level is RiskLevel.IN_BALANCE and result.next_instrument == "ediz_plus"
    assert (
        "not reported, so not weighed: hours per week, duration of care, living together, paid work, "
        "caregiver's age, the recipient's condition"
    ) in result.reasons


@pytest.mark.parametrize("observation", ["exhaustion", "emotional_distress", "depressive_symptoms"])
def test_signs_that_the_balance_has_tipped_mean_at_least_at_risk(observation):
    result = assess(calm(instrument=None, observations=[observation]), CATALOGUE)
    assert result.risk_level is RiskLevel.AT_RISK
    assert f"{observation.replace('_', ' ')} mean at least at risk" in result.reasons


def test_an_urgent_signal_is_at_least_at_risk():
    assert assess(calm(instrument=None, urgency="high"), CATALOGUE).risk_level is RiskLevel.AT_RISK


def test_behaviour_problems_count_once_from_the_condition_or_the_observation():
    by_text = domain.weigh_balance(calm(care_recipient={"condition": "dementie met gedragsproblemen"}))
    by_both = domain.weigh_balance(
        calm(care_recipient={"condition": "dementie met gedragsproblemen"}, observations=["care_recipient_behaviour"])
    )
    assert by_text.points == by_both.points == 4  # dementia 2 + behaviour 2


@pytest.mark.parametrize("observation", sorted(domain.OBSERVATIONS))
def test_each_observation_adds_its_weight_and_its_reason(observation):
    _side, points, reason = domain.OBSERVATIONS[observation]
    balance = domain.weigh_balance(calm(observations=[observation]))
    assert balance.points == points and reason in balance.reasons


@pytest.mark.parametrize("hours,points", [(8, 0), (8.5, 1), (20, 1), (21, 2), (40, 2), (41, 3), (168, 3)])
def test_hours_per_week_step_up(hours, points):
    balance = domain.weigh_balance(calm(care_situation={"hours_per_week": hours}))
    assert balance.points == points


def test_every_observation_is_weighed_or_is_derailed_care():
    assert set(domain.OBSERVATIONS) | DERAILED_CARE == set(Observation)
    assert not set(domain.OBSERVATIONS) & DERAILED_CARE


# --- crisis --------------------------------------------------------------------------


def test_crisis_urgency_wins_over_a_calm_score():
    result = assess(calm(instrument=answers("ediz_plus", 0), urgency="crisis"), CATALOGUE)
    assert result.risk_level is RiskLevel.CRISIS and result.band == "none"
    assert result.reasons[0] == "the referrer reported a crisis"
    assert Need.CASE_MANAGEMENT in result.needs


@pytest.mark.parametrize("observation", sorted(DERAILED_CARE))
def test_derailed_care_is_a_crisis(observation):
    result = assess(calm(instrument=None, observations=[observation]), CATALOGUE)
    assert result.risk_level is RiskLevel.CRISIS
    assert result.reasons[0].startswith(f"signs of derailed care observed: {observation.value}")


# --- needs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({}, [Need.INFORMATION_ADVICE]),
        ({"caregiver": {"birth_year": 2008}}, [Need.INFORMATION_ADVICE, Need.YOUNG_CARER_SUPPORT]),
        ({"care_situation": {"combines_with_work": True}}, [Need.INFORMATION_ADVICE, Need.WORK_CARE_BALANCE]),
        ({"observations": ["social_isolation"]}, [Need.INFORMATION_ADVICE, Need.EMOTIONAL_SUPPORT, Need.PEER_CONTACT]),
        ({"observations": ["financial_problems"]}, [Need.INFORMATION_ADVICE, Need.FINANCIAL_ADMINISTRATIVE]),
        ({"observations": ["physical_complaints"]}, [Need.INFORMATION_ADVICE, Need.PRACTICAL_HELP]),
        ({"care_situation": {"hours_per_week": 25}}, [Need.INFORMATION_ADVICE, Need.RESPITE_CARE]),
        ({"instrument": answers("ediz_plus", 12)}, [Need.INFORMATION_ADVICE, Need.RESPITE_CARE, Need.CASE_MANAGEMENT]),
    ],
)
def test_needs_follow_from_the_situation(changes, expected):
    assert assess(calm(**{"instrument": None, **changes}), CATALOGUE).needs == expected


def test_the_example_needs_are_ordered_and_unique():
    needs = assess(make_signal(), CATALOGUE).needs
    assert needs == [
        Need.INFORMATION_ADVICE,
        Need.EMOTIONAL_SUPPORT,
        Need.PRACTICAL_HELP,
        Need.RESPITE_CARE,
        Need.PEER_CONTACT,
        Need.CASE_MANAGEMENT,
    ]


# --- one case per caregiver ----------------------------------------------------------


def contribution(level: RiskLevel, kind="gp", organisation=GP_PRACTICE, days=0, needs=(), instrument=None):
    return Contribution(
        signal_id=uuid.uuid4(),
        source_kind=kind,
        organisation_id=organisation,
        received_at=RECEIVED + timedelta(days=days),
        result=ScreeningResult(risk_level=level, needs=list(needs), instrument=instrument),
    )


def test_one_signal_makes_a_case_of_its_own_level_with_low_confidence():
    case = combine_case([contribution(RiskLevel.AT_RISK)])
    assert (case.risk_level, case.confidence, case.escalate) == (RiskLevel.AT_RISK, Confidence.LOW, False)
    assert case.reasons == ["1 signal from 1 independent source (gp): confidence low"]


def test_two_independent_sources_at_risk_make_the_case_overburdened():
    case = combine_case(
        [
            contribution(RiskLevel.AT_RISK, needs=[Need.WORK_CARE_BALANCE]),
            contribution(
                RiskLevel.AT_RISK,
                kind="neighbourhood_team",
                organisation=uuid.uuid4(),
                days=10,
                needs=[Need.PEER_CONTACT],
            ),
        ]
    )
    assert case.risk_level is RiskLevel.OVERBURDENED and case.confidence is Confidence.MEDIUM
    assert case.escalate
    assert (
        "independent sources (gp, neighbourhood team) each judged the caregiver at risk: raised to overburdened"
    ) in case.reasons
    assert case.needs == [
        Need.INFORMATION_ADVICE,
        Need.RESPITE_CARE,
        Need.PEER_CONTACT,
        Need.WORK_CARE_BALANCE,
        Need.CASE_MANAGEMENT,
    ]


def test_the_same_source_twice_is_not_corroboration():
    case = combine_case([contribution(RiskLevel.AT_RISK), contribution(RiskLevel.AT_RISK, days=30)])
    assert (case.risk_level, case.confidence, case.escalate) == (RiskLevel.AT_RISK, Confidence.LOW, False)


def test_the_case_keeps_its_highest_level_and_says_where_it_came_from():
    case = combine_case(
        [
            contribution(RiskLevel.OVERBURDENED, instrument="ediz_plus"),
            contribution(RiskLevel.IN_BALANCE, kind="resident", organisation=uuid.uuid4(), days=3),
        ]
    )
    assert case.risk_level is RiskLevel.OVERBURDENED and case.confidence is Confidence.HIGH
    assert not case.escalate  # only one source is worried
    assert "highest level among the signals: overburdened (from the gp signal of 2026-11-20)" in case.reasons


def test_a_crisis_in_any_signal_makes_a_crisis_case_that_escalates():
    case = combine_case([contribution(RiskLevel.IN_BALANCE), contribution(RiskLevel.CRISIS, days=1)])
    assert case.risk_level is RiskLevel.CRISIS and case.escalate
    assert Need.CASE_MANAGEMENT in case.needs


def test_contributions_accept_source_kinds_as_stored():
    assert contribution(RiskLevel.AT_RISK, kind="home_care").source_kind.value == "home_care"


def test_a_case_without_signals_is_refused():
    with pytest.raises(ValueError):
        combine_case([])


# --- re-screening --------------------------------------------------------------------


@pytest.mark.parametrize(
    "level,days",
    [
        (RiskLevel.CRISIS, 7),
        (RiskLevel.OVERBURDENED, 14),
        (RiskLevel.AT_RISK, 90),
        (RiskLevel.IN_BALANCE, 365),
    ],
)
def test_rescreening_comes_sooner_the_heavier_the_burden(level, days):
    assert domain.rescreen_due(level, RECEIVED) == RECEIVED + timedelta(days=days)


# --- properties ----------------------------------------------------------------------

WEIGHED = sorted(domain.OBSERVATIONS)
hours = st.one_of(st.none(), st.floats(0, 168, allow_nan=False))


@st.composite
def signals(draw) -> SignalReceived:
    instrument = draw(st.one_of(st.none(), st.integers(0, 15).map(lambda t: answers("ediz_plus", t))))
    return make_signal(
        instrument=instrument,
        urgency=draw(st.sampled_from(["normal", "high"])),
        caregiver={"birth_year": draw(st.one_of(st.none(), st.integers(1930, 2016)))},
        care_recipient={"condition": draw(st.sampled_from([None, "dementia", "schizofrenie", "copd"]))},
        care_situation={
            "hours_per_week": draw(hours),
            "duration_months": draw(st.one_of(st.none(), st.integers(0, 240))),
            "lives_together": draw(st.one_of(st.none(), st.booleans())),
            "combines_with_work": draw(st.one_of(st.none(), st.booleans())),
        },
        observations=draw(st.lists(st.sampled_from(WEIGHED), unique=True, max_size=6)),
    )


def assert_not_lower(more: SignalReceived, signal: SignalReceived) -> None:
    # Points as well as levels: a level only moves at a threshold, points move at every factor.
    assert domain.weigh_balance(more).points >= domain.weigh_balance(signal).points
    level_more, level = assess(more, CATALOGUE).risk_level, assess(signal, CATALOGUE).risk_level
    assert LEVELS.index(level_more) >= LEVELS.index(level)


@given(signals(), st.sampled_from(list(Observation)))
def test_adding_an_observation_never_lowers_the_level(signal, extra):
    assert_not_lower(signal.model_copy(update={"observations": [*signal.observations, extra]}), signal)


@given(signals(), st.floats(0, 100, allow_nan=False))
def test_more_hours_never_lower_the_level(signal, added):
    more_hours = (signal.care_situation.hours_per_week or 0) + added
    more = signal.model_copy(
        update={"care_situation": signal.care_situation.model_copy(update={"hours_per_week": more_hours})}
    )
    assert_not_lower(more, signal)


@given(signals())
def test_needs_are_ordered_unique_and_always_include_information(signal):
    needs = assess(signal, CATALOGUE).needs
    assert needs == [n for n in Need if n in needs] and Need.INFORMATION_ADVICE in needs


@given(
    st.lists(
        st.tuples(st.sampled_from(list(RiskLevel)), st.sampled_from(["gp", "resident", "home_care"])),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(list(RiskLevel)),
)
def test_another_signal_never_lowers_the_case(levels, extra):
    orgs = {"gp": GP_PRACTICE, "resident": uuid.uuid4(), "home_care": uuid.uuid4()}
    case = [contribution(level, kind=kind, organisation=orgs[kind]) for level, kind in levels]
    before = combine_case(case).risk_level
    after = combine_case([*case, contribution(extra, kind="home_care", organisation=orgs["home_care"])]).risk_level
    assert LEVELS.index(after) >= LEVELS.index(before)


def test_heavy_care_tasks_without_help_become_needs_that_matching_uses() -> None:
    tasks = [
        {"task": "supervision", "effort": "very_heavy", "hours_per_week": 20, "has_help": False},
        {"task": "administration", "effort": "heavy", "has_help": None},
        {"task": "cooking", "effort": "heavy", "has_help": True},  # helped: not a need
        {"task": "transport", "effort": "light"},
    ]
    mild = make_signal(base={**EXAMPLE, **CALM, "instrument": None})
    with_tasks = make_signal(base={**EXAMPLE, **CALM, "instrument": None, "care_tasks": tasks})
    before = set(domain.derive_needs(mild, RiskLevel.IN_BALANCE))
    after = set(domain.derive_needs(with_tasks, RiskLevel.IN_BALANCE))
    assert after - before == {Need.RESPITE_CARE, Need.FINANCIAL_ADMINISTRATIVE}
