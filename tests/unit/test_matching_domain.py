"""Matching as a pure function: filters, ranking, explanations and no-match reasons."""

import random
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.matching import domain
from services.matching.domain import Candidate, MatchRequest, match
from services.matching.pc4 import PC4_CENTROIDS, centroid, pc4_of
from services.matching.taxonomy import TARGET_GROUPS, TERMS, needs_covered
from shared.contracts import Need

TODAY = date(2026, 11, 22)
LEUSDEN = "GM0327"


def cand(service_id: str = "s1", **changes) -> Candidate:
    base = Candidate(
        service_id=service_id,
        service_name=f"Service {service_id}",
        organization_name="Welzijn Leusden",
        status="active",
        terms=frozenset({"respite_care"}),
        municipality_codes=frozenset({LEUSDEN}),
        latitude=52.1318,
        longitude=5.4297,
        capacity_available=3,
        assured_date=date(2026, 10, 1),
        contact_email=f"{service_id}@example.nl",
    )
    return replace(base, **changes)


def req(**changes) -> MatchRequest:
    base = MatchRequest(
        needs=[Need.RESPITE_CARE], municipality_code=LEUSDEN, pc4="3831", caregiver_age=64, preferred_language="nl"
    )
    return replace(base, **changes)


def excluded_reason(outcome: domain.MatchOutcome, service_id: str) -> str:
    return dict(outcome.excluded)[service_id]


# --- the taxonomy -------------------------------------------------------------------


def test_every_term_has_both_names_and_target_groups_are_the_three_groups():
    assert {"young_carers", "working_carers", "dementia"} == TARGET_GROUPS
    for term in TERMS.values():
        assert term.name_nl and term.name_en
        assert term.needs or term.target_group
    assert len({t.id for t in TERMS.values()}) == len(TERMS)


def test_needs_covered_by_terms():
    assert needs_covered(["caregiver_cafe"]) == {Need.PEER_CONTACT, Need.EMOTIONAL_SUPPORT, Need.INFORMATION_ADVICE}
    assert needs_covered(["young_carers", "unknown"]) == {Need.YOUNG_CARER_SUPPORT}
    assert needs_covered(["dementia"]) == frozenset()


# --- filters --------------------------------------------------------------------------


def test_service_outside_the_municipality_is_excluded():
    outcome = match(req(), [cand(municipality_codes=frozenset({"GM0307"}))], TODAY)
    assert outcome.proposals == []
    assert "does not serve GM0327" in excluded_reason(outcome, "s1")
    assert outcome.no_match_reason == domain.NO_SERVICES_IN_AREA


def test_service_listing_pc4s_serves_only_those():
    service = cand(pc4s=frozenset({"3791"}))
    assert match(req(pc4="3791"), [service], TODAY).proposals[0].explanation.eligibility[0] == (
        "serves postcode area 3791"
    )
    outcome = match(req(pc4="3831"), [service], TODAY)
    assert outcome.proposals == [] and "postcode area 3831" in excluded_reason(outcome, "s1")
    unknown = match(req(pc4=None), [service], TODAY)
    assert unknown.proposals and "postcode unknown" in unknown.proposals[0].explanation.eligibility[0]


@pytest.mark.parametrize("status", ["inactive", "defunct", "temporarily closed"])
def test_only_active_services_are_proposed(status):
    outcome = match(req(), [cand(status=status)], TODAY)
    assert outcome.proposals == []
    assert excluded_reason(outcome, "s1") == f"service is {status}"
    assert outcome.no_match_reason == domain.NO_ACTIVE_SERVICES


def test_age_eligibility():
    service = cand(min_age=18, max_age=67)
    assert match(req(caregiver_age=40), [service], TODAY).proposals
    too_old = match(req(caregiver_age=70), [service], TODAY)
    assert too_old.proposals == [] and excluded_reason(too_old, "s1") == "not eligible: age 70 outside 18–67"
    assert too_old.no_match_reason == domain.NOT_ELIGIBLE
    unknown = match(req(caregiver_age=None), [service], TODAY)
    assert "age 18–67 (caregiver's age unknown)" in unknown.proposals[0].explanation.eligibility


def test_target_group_service_only_for_its_group():
    young = cand(terms=frozenset({"young_carers", "peer_contact"}), min_age=8, max_age=24)
    adult = match(req(needs=[Need.PEER_CONTACT], caregiver_age=20), [young], TODAY)
    assert adult.proposals == [] and excluded_reason(adult, "s1") == "not eligible: only for young_carers"
    young_carer = req(needs=[Need.PEER_CONTACT], caregiver_age=20, target_groups=frozenset({"young_carers"}))
    proposal = match(young_carer, [young], TODAY).proposals[0]
    assert "for young_carers" in proposal.explanation.eligibility


def test_general_services_stay_open_to_target_groups_but_their_own_service_ranks_first():
    young = cand("young", terms=frozenset({"young_carers", "peer_contact"}))
    general = cand("general", terms=frozenset({"peer_contact"}))
    request = req(needs=[Need.PEER_CONTACT], caregiver_age=17, target_groups=frozenset({"young_carers"}))
    outcome = match(request, [general, young], TODAY)
    assert [p.service_id for p in outcome.proposals] == ["young", "general"]
    assert (
        outcome.proposals[0].explanation.score_parts["preference"]
        > outcome.proposals[1].explanation.score_parts["preference"]
    )


def test_language_filter():
    turkish_only = cand("tr", languages=frozenset({"tr"}))
    bilingual = cand("nl-tr", languages=frozenset({"nl", "tr"}))
    unspecified = cand("any")
    outcome = match(req(), [turkish_only, bilingual, unspecified], TODAY)
    assert {p.service_id for p in outcome.proposals} == {"nl-tr", "any"}
    assert excluded_reason(outcome, "tr") == "not eligible: not offered in nl"
    assert "offered in nl" in next(p for p in outcome.proposals if p.service_id == "nl-tr").explanation.eligibility
    assert match(req(preferred_language="tr"), [turkish_only], TODAY).proposals


def test_service_covering_none_of_the_needs_is_excluded():
    outcome = match(req(needs=[Need.FINANCIAL_ADMINISTRATIVE]), [cand()], TODAY)
    assert excluded_reason(outcome, "s1") == "covers none of the needs"
    assert outcome.no_match_reason == domain.NEEDS_NOT_COVERED


def test_full_service_is_excluded_and_unknown_capacity_is_open():
    outcome = match(req(), [cand("full", capacity_available=0), cand("open", capacity_available=None)], TODAY)
    assert [p.service_id for p in outcome.proposals] == ["open"]
    assert excluded_reason(outcome, "full") == "no capacity"
    assert match(req(), [cand(capacity_available=0)], TODAY).no_match_reason == domain.NO_CAPACITY


# --- no-match reasons -----------------------------------------------------------------


def test_no_candidates_means_no_services_in_area():
    assert match(req(), [], TODAY).no_match_reason == "no services in area"


def test_no_needs():
    assert match(req(needs=[]), [cand()], TODAY).no_match_reason == domain.NO_NEEDS


def test_no_match_reason_names_the_furthest_stage_reached():
    candidates = [
        cand("away", municipality_codes=frozenset({"GM0307"})),
        cand("closed", status="inactive"),
        cand("full", capacity_available=0),
    ]
    outcome = match(req(), candidates, TODAY)
    assert outcome.no_match_reason == domain.NO_CAPACITY
    assert [s for s, _ in outcome.excluded] == ["away", "closed", "full"]


# --- ranking and explanations ---------------------------------------------------------


def test_need_coverage_ranks_first():
    both = cand("both", terms=frozenset({"volunteer_help"}))  # practical help and respite
    one = cand("one", terms=frozenset({"respite_care"}))
    outcome = match(req(needs=[Need.RESPITE_CARE, Need.PRACTICAL_HELP]), [one, both], TODAY)
    assert [p.service_id for p in outcome.proposals] == ["both", "one"]
    assert outcome.proposals[0].explanation.covers_needs == [Need.RESPITE_CARE, Need.PRACTICAL_HELP]
    assert outcome.proposals[1].explanation.covers_needs == [Need.RESPITE_CARE]


def test_nearer_fresher_and_open_services_rank_higher():
    near = cand("near")
    far = cand("far", latitude=52.2497, longitude=5.3776)  # Spakenburg, ~14 km from Leusden
    assert [p.service_id for p in match(req(), [far, near], TODAY).proposals] == ["near", "far"]
    fresh, stale = cand("fresh"), cand("stale", assured_date=date(2024, 1, 1))
    assert [p.service_id for p in match(req(), [stale, fresh], TODAY).proposals] == ["fresh", "stale"]
    known, unknown = cand("known", capacity_available=1), cand("unknown", capacity_available=None)
    assert [p.service_id for p in match(req(), [unknown, known], TODAY).proposals] == ["known", "unknown"]


def test_origin_coordinates_override_the_postcode_centroid():
    spakenburg = cand("spakenburg", latitude=52.2497, longitude=5.3776)
    leusden = cand("leusden")
    request = req(latitude=52.2500, longitude=5.3780)
    assert match(request, [leusden, spakenburg], TODAY).proposals[0].service_id == "spakenburg"


def test_explanation_parts_add_up_to_the_score():
    proposal = match(req(), [cand()], TODAY).proposals[0]
    parts = proposal.explanation.score_parts
    assert set(parts) == {"need_coverage", "distance", "capacity", "freshness", "preference"}
    assert proposal.score == pytest.approx(sum(parts.values()), abs=1e-3)
    assert parts["need_coverage"] == domain.WEIGHTS["need_coverage"]
    assert proposal.explanation.eligibility[0] == "serves GM0327"
    assert proposal.category == "respite_care" and proposal.contact_email == "s1@example.nl"


def test_category_is_the_term_covering_most_needs():
    service = cand(terms=frozenset({"peer_contact", "caregiver_cafe", "training"}))
    proposal = match(req(needs=[Need.PEER_CONTACT, Need.INFORMATION_ADVICE]), [service], TODAY).proposals[0]
    assert proposal.category == "caregiver_cafe"
    proposal = match(
        req(needs=[Need.INFORMATION_ADVICE]), [cand(terms=frozenset({"training", "caregiver_cafe"}))], TODAY
    ).proposals[0]
    assert proposal.category == "caregiver_cafe"  # a tie goes to the earlier term of the taxonomy


def test_at_most_limit_proposals_ties_broken_by_service_id():
    candidates = [cand(f"s{i}") for i in range(6)]
    outcome = match(req(limit=3), list(reversed(candidates)), TODAY)
    assert [p.service_id for p in outcome.proposals] == ["s0", "s1", "s2"]
    assert outcome.no_match_reason is None


def test_haversine_and_centroids():
    assert domain.haversine_km((52.1322, 5.4305), (52.1561, 5.3878)) == pytest.approx(4.0, abs=0.5)
    assert centroid("3831") == PC4_CENTROIDS["3831"][1:] and centroid("9999") is None and centroid(None) is None
    assert pc4_of("3831 AB") == "3831" and pc4_of("3831ab") == "3831" and pc4_of("38") is None and pc4_of(None) is None


# --- properties -----------------------------------------------------------------------

candidates_strategy = st.lists(
    st.builds(
        Candidate,
        service_id=st.text("abcdef", min_size=1, max_size=4),
        service_name=st.just("S"),
        organization_name=st.just("O"),
        status=st.sampled_from(["active", "active", "inactive"]),
        terms=st.frozensets(st.sampled_from(sorted(TERMS)), max_size=3),
        municipality_codes=st.frozensets(st.sampled_from([LEUSDEN, "GM0307"]), min_size=1),
        pc4s=st.frozensets(st.sampled_from(["3831", "3832"]), max_size=1),
        min_age=st.none() | st.integers(0, 40),
        max_age=st.none() | st.integers(40, 100),
        languages=st.frozensets(st.sampled_from(["nl", "en", "tr"]), max_size=2),
        latitude=st.none() | st.floats(52.0, 52.3),
        longitude=st.just(5.4),
        capacity_available=st.none() | st.integers(0, 4),
        assured_date=st.none() | st.dates(date(2023, 1, 1), date(2026, 11, 22)),
    ),
    max_size=12,
    unique_by=lambda c: c.service_id,
)


@settings(max_examples=150, deadline=None)
@given(
    candidates=candidates_strategy,
    needs=st.lists(st.sampled_from(list(Need)), min_size=1, max_size=3),
    limit=st.integers(0, 4),
    age=st.none() | st.integers(10, 90),
    seed=st.integers(0, 1000),
)
def test_properties(candidates, needs, limit, age, seed):
    request = req(needs=needs, limit=limit, caregiver_age=age)
    outcome = match(request, candidates, TODAY)
    assert len(outcome.proposals) <= limit
    for proposal in outcome.proposals:
        assert proposal.explanation.covers_needs and set(proposal.explanation.covers_needs) <= set(needs)
        assert 0 <= proposal.score <= 1
    proposed = {p.service_id for p in outcome.proposals}
    assert proposed.isdisjoint(s for s, _ in outcome.excluded)
    if outcome.no_match_reason:
        assert not outcome.proposals and len(outcome.excluded) == len(candidates)
    else:
        assert outcome.proposals or limit == 0
    shuffled = candidates[:]
    random.Random(seed).shuffle(shuffled)
    assert match(request, shuffled, TODAY) == outcome


def test_services_already_proposed_for_the_case_are_not_proposed_again():
    outcome = match(req(exclude_service_ids=frozenset({"s1"})), [cand("s1"), cand("s2")], TODAY)
    assert [p.service_id for p in outcome.proposals] == ["s2"]
    assert excluded_reason(outcome, "s1") == "already proposed for this case"


def test_the_consultant_is_the_nearest_active_one_in_the_area_whatever_the_capacity():
    far = cand("c-far", terms=frozenset({"caregiver_consultant"}), latitude=52.3, longitude=5.6, capacity_available=0)
    near = cand("c-near", terms=frozenset({"caregiver_consultant"}), capacity_available=0)
    closed = cand("c-closed", terms=frozenset({"caregiver_consultant"}), status="inactive")
    elsewhere = cand("c-out", terms=frozenset({"caregiver_consultant"}), municipality_codes=frozenset({"GM0307"}))
    person = domain.consultant(req(), [far, near, closed, elsewhere, cand("s1")])
    assert person is not None and person.service_id == "c-near" and person.consultant
    assert domain.consultant(req(), [closed, elsewhere, cand("s1")]) is None


def test_a_request_is_built_from_what_screening_judged():
    from shared.contracts import SignalScreened
    from tests.unit.test_notify_domain import proposed

    event = proposed(caregiver={"birth_year": 2005}, care_situation={"combines_with_work": True})
    screened = SignalScreened(
        signal_id=event.signal_id,
        case_id=event.case_id,
        screened_at=event.proposed_at,
        result=event.result.model_copy(update={"needs": [Need.RESPITE_CARE]}),
        signal=event.signal,
    )
    request = domain.request_from(screened, limit=2, exclude=frozenset({"x"}))
    assert request.target_groups == {"young_carers", "working_carers", "dementia"}
    assert request.pc4 == "3831" and request.limit == 2 and request.exclude_service_ids == {"x"}
