"""Webhook signatures and signed links."""

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from services.notify.links import ACCEPT, DECLINE, Links
from services.notify.signatures import verify_webhook, webhook_signature

BODY = b'{"type":"referrer_update"}'


def test_a_signature_verifies_with_the_secret_and_the_exact_body():
    header = webhook_signature("s3cret", BODY, 1_800_000_000)
    assert header.startswith("t=1800000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify_webhook("s3cret", header, BODY, now=1_800_000_010)
    assert not verify_webhook("other", header, BODY, now=1_800_000_010)
    assert not verify_webhook("s3cret", header, BODY + b" ", now=1_800_000_010)


def test_a_replayed_or_malformed_signature_is_refused():
    header = webhook_signature("s3cret", BODY, 1_800_000_000)
    assert not verify_webhook("s3cret", header, BODY, now=1_800_000_000 + 301)
    assert not verify_webhook("s3cret", header.replace("t=1800000000", "t=1800000100"), BODY, now=1_800_000_100)
    assert not verify_webhook("s3cret", "v1=abc", BODY, now=1_800_000_000)
    assert not verify_webhook("s3cret", "t=nope,v1=abc", BODY, now=1_800_000_000)


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
