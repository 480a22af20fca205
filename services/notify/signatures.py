"""HMAC-SHA256 signatures, pure: the ``X-Signature`` header of webhooks (see WEBHOOKS.md)
and the signed links in e-mails that let a provider or caregiver answer without logging in.

A webhook signature covers ``"<unix time>.<body>"`` so that a captured request cannot be
replayed later; a link signature covers the action, the object and the expiry, so a link
cannot be altered into another answer, for another referral, or kept forever."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

WEBHOOK_TOLERANCE_SECONDS = 300


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_signature(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Signature`` header value: ``t=<unix>,v1=<hex hmac_sha256(secret, "t.body")>``."""
    return f"t={timestamp},v1={_hex(secret, f'{timestamp}.'.encode() + body)}"


def verify_webhook(
    secret: str, header: str, body: bytes, now: float, tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
) -> bool:
    """The recipe a partner follows: parse, recompute, compare in constant time, and reject
    signatures older (or newer) than ``tolerance`` seconds."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = _hex(secret, f"{timestamp}.".encode() + body)
    return hmac.compare_digest(expected, parts.get("v1", ""))


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
