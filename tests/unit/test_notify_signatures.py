"""Signed links in e-mails (webhook signatures: test_webhooks.py)."""

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from services.notify.links import ACCEPT, DECLINE, Links


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_signed_links_act_only_for_their_action_and_referral_until_they_expire():
    now = datetime(2026, 11, 22, 9, tzinfo=UTC)
    links = Links("https://notify.example.nl", "link-secret", timedelta(days=30))
    referral = uuid.uuid4()
    urls = links.referral(referral, now)
    assert urls["accept_url"].startswith(f"https://notify.example.nl/r/{referral}/accept?")
    q = _query(urls["accept_url"])
    exp, sig = int(q["exp"]), q["sig"]
    assert links.valid(ACCEPT, referral, exp, sig, now)
    assert not links.valid(DECLINE, referral, exp, sig, now), "an accept link cannot decline"
    assert not links.valid(ACCEPT, uuid.uuid4(), exp, sig, now), "nor answer another referral"
    assert not links.valid(ACCEPT, referral, exp + 86400, sig, now), "nor live longer"
    assert not links.valid(ACCEPT, referral, exp, sig, now + timedelta(days=31)), "nor work after expiry"
    other = Links("https://notify.example.nl", "another-secret", timedelta(days=30))
    assert not other.valid(ACCEPT, referral, exp, sig, now)
