"""Signed values of the front doors, pure: the signal form's session cookie (which
organisation, until when), its CSRF token, and the caregiver's status link.

All are HMAC-SHA256 with ``SIGNALS_PAGE_SECRET``; a cookie names the organisation, never
its API key, and a status link names one signal and an expiry."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from uuid import UUID

SESSION_COOKIE = "sts_session"


def _sig(secret: str, *parts: object) -> str:
    return hmac.new(secret.encode(), ":".join(map(str, parts)).encode(), hashlib.sha256).hexdigest()


def session_value(secret: str, organisation_id: UUID, expires: int) -> str:
    return f"{organisation_id}.{expires}.{_sig(secret, 'session', organisation_id, expires)}"


def read_session(secret: str, value: str | None, now: float) -> UUID | None:
    """The organisation a valid, unexpired session cookie names."""
    try:
        organisation, expires, sig = (value or "").split(".")
        organisation_id, until = UUID(organisation), int(expires)
    except ValueError:
        return None
    if now > until or not hmac.compare_digest(sig, _sig(secret, "session", organisation_id, until)):
        return None
    return organisation_id


def csrf_token(secret: str, session: str) -> str:
    """Bound to the session: a form from another site cannot know it."""
    return _sig(secret, "csrf", session)


def csrf_valid(secret: str, session: str | None, token: str) -> bool:
    return bool(session) and hmac.compare_digest(csrf_token(secret, session or ""), token)


def status_signature(secret: str, signal_id: UUID, expires: int) -> str:
    return _sig(secret, "caregiver-status", signal_id, expires)


def status_valid(secret: str, signal_id: UUID, expires: int, sig: str, now: float) -> bool:
    return now <= expires and hmac.compare_digest(status_signature(secret, signal_id, expires), sig)


def new_token() -> tuple[str, str]:
    """A one-time secret for a link, and the digest that is stored."""
    token = secrets.token_urlsafe(24)
    return token, digest(token)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
