"""HMAC-SHA256 signatures of the links in e-mails that let a provider or caregiver answer
without logging in (webhook signatures are ``shared.webhooks``).

A link signature covers the action, the object and the expiry, so a link cannot be altered
into another answer, for another referral, or kept forever."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def link_signature(secret: str, action: str, subject: str, expires: int) -> str:
    return _hex(secret, f"{action}:{subject}:{expires}".encode())


def signed_query(secret: str, action: str, subject: str, expires: int, **extra: str) -> str:
    """The query string of a signed link; ``extra`` parameters are not signed (a preset
    choice the page lets the reader change, such as the reason of a decline)."""
    sig = link_signature(secret, action, subject, expires)
    return urlencode({**extra, "exp": expires, "sig": sig})


def verify_link(secret: str, action: str, subject: str, expires: int, sig: str, now: float) -> bool:
    if now > expires:
        return False
    return hmac.compare_digest(link_signature(secret, action, subject, expires), sig)
