"""The signed links in messages: a provider accepts or declines a referral, a caregiver
answers the follow-up question, each with one click and without an account.

A link names its action and object, expires after ``NOTIFY_LINK_TTL_DAYS`` and is signed
with ``NOTIFY_LINK_SECRET``; the page it opens asks for confirmation before acting, so a
mail scanner that fetches every link does not answer on the reader's behalf."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from services.notify.signatures import signed_query, verify_link

ACCEPT, DECLINE = "referral.accept", "referral.decline"
YES, NO = "followup.yes", "followup.no"


@dataclass(frozen=True)
class Links:
    base_url: str
    secret: str
    ttl: timedelta

    def _url(self, path: str, action: str, subject: UUID, now: datetime, **extra: str) -> str:
        expires = int((now + self.ttl).timestamp())
        return f"{self.base_url}{path}?{signed_query(self.secret, action, str(subject), expires, **extra)}"

    def referral(self, referral_id: UUID, now: datetime) -> dict[str, str]:
        return {
            "accept_url": self._url(f"/r/{referral_id}/accept", ACCEPT, referral_id, now),
            "decline_url": self._url(f"/r/{referral_id}/decline", DECLINE, referral_id, now),
            "api_url": f"{self.base_url}/v1/referrals/{referral_id}",
        }

    def follow_up(self, follow_up_id: UUID, now: datetime) -> dict[str, str]:
        return {
            "yes_url": self._url(f"/f/{follow_up_id}/yes", YES, follow_up_id, now),
            "no_url": self._url(f"/f/{follow_up_id}/no", NO, follow_up_id, now),
        }

    def valid(self, action: str, subject: UUID, expires: int, sig: str, now: datetime) -> bool:
        return verify_link(self.secret, action, str(subject), expires, sig, now.timestamp())
