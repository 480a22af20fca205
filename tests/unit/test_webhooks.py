"""shared.webhooks: the signature round trip and the SSRF guard (with a fake resolver, so no
network is needed: the guard's decisions depend only on the addresses a name resolves to)."""

from __future__ import annotations

import pytest

from shared import webhooks
from shared.webhooks import REFUSED, UnsafeWebhookURL, check_url

BODY = b'{"type":"referrer_update"}'


def test_a_signature_verifies_with_the_secret_and_the_exact_body():
    header = webhooks.sign("s3cret", BODY, 1_800_000_000)
    assert header.startswith("t=1800000000,v1=") and len(header.split("v1=")[1]) == 64
    assert webhooks.verify("s3cret", header, BODY, now=1_800_000_010)
    assert not webhooks.verify("other", header, BODY, now=1_800_000_010)
    assert not webhooks.verify("s3cret", header, BODY + b" ", now=1_800_000_010)


def test_a_replayed_or_malformed_signature_is_refused():
    header = webhooks.sign("s3cret", BODY, 1_800_000_000)
    assert not webhooks.verify("s3cret", header, BODY, now=1_800_000_000 + 301)
    assert not webhooks.verify("s3cret", header.replace("t=1800000000", "t=1800000100"), BODY, now=1_800_000_100)
    assert not webhooks.verify("s3cret", "v1=abc", BODY, now=1_800_000_000)
    assert not webhooks.verify("s3cret", "t=nope,v1=abc", BODY, now=1_800_000_000)


def resolving_to(*addresses: str):
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",  # loopback
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",  # private
        "169.254.169.254",
        "169.254.10.10",  # metadata, link-local
        "100.64.0.1",  # shared (CGNAT)
        "224.0.0.1",
        "239.255.255.250",  # multicast
        "0.0.0.0",
        "240.0.0.1",
        "255.255.255.255",  # unspecified, reserved, broadcast
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",  # IPv4-mapped
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    ],
)
async def test_a_name_resolving_to_a_forbidden_address_is_refused(address: str) -> None:
    with pytest.raises(UnsafeWebhookURL) as refused:
        await check_url("https://hooks.example.nl/in", resolver=resolving_to(address))
    assert str(refused.value) == REFUSED, "the caller learns nothing about why"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fd00:ec2::254]/",
    ],
)
async def test_literal_forbidden_addresses_are_refused_without_asking_dns(url: str) -> None:
    async def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("a literal address needs no lookup")

    with pytest.raises(UnsafeWebhookURL):
        await check_url(url, resolver=no_dns)


async def test_localhost_is_refused_through_the_real_resolver() -> None:
    with pytest.raises(UnsafeWebhookURL):
        await check_url("https://localhost/hook")


async def test_one_forbidden_address_among_public_ones_refuses_the_name() -> None:
    with pytest.raises(UnsafeWebhookURL):
        await check_url("https://hooks.example.nl/", resolver=resolving_to("93.184.215.14", "10.1.2.3"))


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.nl/",
        "ftp://hooks.example.nl/",
        "https://user:pw@hooks.example.nl/",
        "not a url",
        "https:///nohost",
    ],
)
async def test_only_https_urls_without_credentials_are_accepted(url: str) -> None:
    with pytest.raises(UnsafeWebhookURL):
        await check_url(url, resolver=resolving_to("93.184.215.14"))


async def test_a_name_that_does_not_resolve_is_refused_with_the_same_message() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnsafeWebhookURL) as refused:
        await check_url("https://nowhere.example.nl/", resolver=nxdomain)
    assert str(refused.value) == REFUSED


async def test_a_public_https_url_is_pinned_to_its_checked_address_and_keeps_its_name() -> None:
    target = await check_url("https://hooks.example.nl:8443/in?x=1", resolver=resolving_to("93.184.215.14"))
    assert target.address == "93.184.215.14"
    assert str(target.pinned_url()) == "https://93.184.215.14:8443/in?x=1"
    assert target.host_header() == "hooks.example.nl:8443"
    v6 = await check_url("https://hooks.example.nl/in", resolver=resolving_to("2606:2800:21f:cb07:6820:80da:af6b:8b2c"))
    assert v6.pinned_url().host == "2606:2800:21f:cb07:6820:80da:af6b:8b2c" and v6.host_header() == "hooks.example.nl"


async def test_development_hosts_may_use_http_and_local_addresses_only_when_listed() -> None:
    allowed = ["127.0.0.1:9000"]
    target = await check_url("http://127.0.0.1:9000/hook", allow_http_hosts=allowed)
    assert target.address == "127.0.0.1"
    for other in ("http://127.0.0.1:9001/hook", "http://localhost:9000/hook", "https://10.0.0.1/"):
        with pytest.raises(UnsafeWebhookURL):
            await check_url(other, allow_http_hosts=allowed)


def test_backoff_doubles_per_failure_up_to_the_cap() -> None:
    assert [webhooks.backoff_seconds(n, 1, 10) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/hook",
    ],
)
def test_notify_refuses_to_register_a_partner_webhook_pointing_inside(url: str, capsys) -> None:
    from services.notify.cli import main

    code = main(
        [
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/none",
            "register-partner",
            "--organisation-id",
            "6f1c2a9e-0000-4000-8000-000000000001",
            "--name",
            "Praktijk",
            "--webhook-url",
            url,
        ]
    )
    assert code == 2  # refused before any database is touched
    assert REFUSED in capsys.readouterr().err
