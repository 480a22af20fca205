"""The referral state machine, aligned with FHIR Task statuses."""

import pytest

from services.notify.lifecycle import OPEN, TRANSITIONS, IllegalTransition, InvalidUpdate, transition
from shared.contracts import ReferralStatus as S
from shared.contracts import RejectionReason as R


@pytest.mark.parametrize(
    "current,new",
    [
        (S.REQUESTED, S.ACCEPTED),
        (S.ACCEPTED, S.IN_PROGRESS),
        (S.IN_PROGRESS, S.ON_HOLD),
        (S.ON_HOLD, S.IN_PROGRESS),
        (S.IN_PROGRESS, S.COMPLETED),
        (S.ACCEPTED, S.FAILED),
        (S.REQUESTED, S.CANCELLED),
    ],
)
def test_the_provider_moves_a_referral_along(current, new):
    change = transition(current, new)
    assert change.changed and change.status is new


def test_a_rejection_needs_a_reason_and_keeps_it():
    with pytest.raises(InvalidUpdate) as missing:
        transition(S.REQUESTED, S.REJECTED)
    assert missing.value.field == "reason_code"
    assert transition(S.REQUESTED, S.REJECTED, R.NO_CAPACITY).reason_code is R.NO_CAPACITY


def test_a_reason_only_goes_with_a_rejection_or_failure():
    with pytest.raises(InvalidUpdate) as wrong:
        transition(S.REQUESTED, S.ACCEPTED, R.OTHER)
    assert wrong.value.field == "reason_code"
    assert transition(S.ACCEPTED, S.FAILED, R.COULD_NOT_CONTACT).changed


@pytest.mark.parametrize(
    "current,new",
    [
        (S.REQUESTED, S.COMPLETED),
        (S.REQUESTED, S.IN_PROGRESS),
        (S.REJECTED, S.ACCEPTED),
        (S.COMPLETED, S.IN_PROGRESS),
        (S.CANCELLED, S.ACCEPTED),
        (S.ACCEPTED, S.REJECTED),
    ],
)
def test_illegal_transitions_are_refused(current, new):
    with pytest.raises(IllegalTransition):
        transition(current, new, R.OTHER if new is S.REJECTED else None)


def test_nothing_goes_back_to_requested():
    with pytest.raises(InvalidUpdate) as back:
        transition(S.ACCEPTED, S.REQUESTED)
    assert back.value.field == "status"


def test_repeating_the_current_status_is_not_an_error_and_changes_nothing():
    assert transition(S.ACCEPTED, S.ACCEPTED).changed is False
    assert transition(S.REJECTED, S.REJECTED, R.NO_CAPACITY).changed is False


def test_terminal_statuses_are_exactly_the_closed_ones():
    assert {S.REQUESTED, S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD} == OPEN
    assert set(TRANSITIONS) == set(S), "every FHIR status the contract knows has its rule"
