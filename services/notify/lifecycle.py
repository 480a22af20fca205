"""The referral lifecycle, pure: which status may follow which, aligned with HL7 FHIR Task.

    requested ─┬─▶ accepted ─┬─▶ in-progress ◀─▶ on-hold
               │             └──────┬──────────────┘
               ├─▶ rejected         ▼
               └─▶ cancelled   completed / failed / cancelled

A rejection needs a reason code (the provider's answer feeds re-matching and the referrer's
message); a failure may carry one (could not contact, declined by the caregiver)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import ReferralStatus, RejectionReason

S = ReferralStatus

TRANSITIONS: dict[ReferralStatus, frozenset[ReferralStatus]] = {
    S.REQUESTED: frozenset({S.ACCEPTED, S.REJECTED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.IN_PROGRESS, S.ON_HOLD, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.ON_HOLD, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.ON_HOLD: frozenset({S.IN_PROGRESS, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.REJECTED: frozenset(),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

OPEN = frozenset(status for status, following in TRANSITIONS.items() if following)
REASON_REQUIRED = frozenset({S.REJECTED})
REASON_ALLOWED = frozenset({S.REJECTED, S.FAILED})


class IllegalTransition(Exception):
    """The referral cannot go from its status to the one asked for (HTTP 409)."""


class InvalidUpdate(ValueError):
    """The update itself is wrong, whatever the referral's status (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Change:
    status: ReferralStatus
    reason_code: RejectionReason | None
    # False when the referral already had this status: a repeated answer is not an error.
    changed: bool


def check_update(status: ReferralStatus, reason_code: RejectionReason | None) -> None:
    if status is S.REQUESTED:
        raise InvalidUpdate("status", "a referral cannot be set back to requested")
    if status in REASON_REQUIRED and reason_code is None:
        raise InvalidUpdate("reason_code", f"a reason code is required when the status is {status.value}")
    if reason_code is not None and status not in REASON_ALLOWED:
        raise InvalidUpdate("reason_code", f"a reason code is only given with {', '.join(sorted(REASON_ALLOWED))}")


def transition(
    current: ReferralStatus,
    status: ReferralStatus,
    reason_code: RejectionReason | None = None,
) -> Change:
    """Validate moving a referral from ``current`` to ``status``."""
    check_update(status, reason_code)
    if status is current:
        return Change(status, reason_code, changed=False)
    if status not in TRANSITIONS[current]:
        raise IllegalTransition(f"a referral that is {current.value} cannot become {status.value}")
    return Change(status, reason_code, changed=True)
