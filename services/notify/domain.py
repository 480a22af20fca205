"""Who is told what, pure: the caregiver (only with consent and never against a "do not
contact" preference), the referrer (always: the closed loop), and each proposed provider
(only when the caregiver agreed to share their details with providers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.contracts import ContactPreference, MatchesProposed


@dataclass(frozen=True)
class Planned:
    recipient_role: str  # caregiver | referrer | provider
    channel: str  # email | status_view | none
    address: str | None
    template: str
    language: str
    context: dict[str, Any] = field(default_factory=dict)
    suppressed_reason: str | None = None

    def dedupe_key(self, case_id: Any, signal_id: Any) -> str:
        # The referrer hears about each of its signals; others once per case and template.
        scope = signal_id if self.recipient_role == "referrer" else case_id
        return f"{scope}:{self.recipient_role}:{self.address or '-'}:{self.template}"


def plan(event: MatchesProposed) -> list[Planned]:
    signal = event.signal
    caregiver = signal.caregiver
    language = caregiver.preferred_language.value
    context = {
        "caregiver_name": caregiver.name or "",
        "organisation": signal.organisation_name,
        "matches": [m.model_dump(mode="json") for m in event.matches],
        "no_match_reason": event.no_match_reason,
        "risk_level": event.result.risk_level.value,
        "signal_id": str(event.signal_id),
        "source_reference": signal.source.reference,
    }
    planned: list[Planned] = []

    if not signal.consent.contact_caregiver:
        planned.append(Planned("caregiver", "none", None, "caregiver_proposals", language, context,
                               "no consent to contact the caregiver"))
    elif caregiver.contact_preference is ContactPreference.DO_NOT_CONTACT:
        planned.append(Planned("caregiver", "none", None, "caregiver_proposals", language, context,
                               "caregiver asked not to be contacted"))
    elif caregiver.email and caregiver.contact_preference is ContactPreference.EMAIL:
        planned.append(Planned("caregiver", "email", caregiver.email, "caregiver_proposals", language, context))
    else:
        # Phone, SMS and post go to the caregiver consultant's call list, not a mailbox.
        planned.append(Planned("caregiver", "none", None, "caregiver_proposals", language, context,
                               f"no channel for contact preference {caregiver.contact_preference.value}"))

    planned.append(Planned("referrer", "status_view", signal.organisation_name, "referrer_update", "nl", context))

    for match in event.matches:
        provider_context = {**context, "match": match.model_dump(mode="json")}
        if not signal.consent.share_with_providers:
            planned.append(Planned("provider", "none", match.contact_email, "provider_referral", "nl",
                                   provider_context, "no consent to share details with providers"))
        elif match.contact_email:
            planned.append(Planned("provider", "email", match.contact_email, "provider_referral", "nl",
                                   provider_context | {"caregiver": caregiver.model_dump(mode="json"),
                                                       "needs": [n.value for n in event.result.needs]}))
    return planned
