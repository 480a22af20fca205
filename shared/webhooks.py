"""Signed webhooks, the one way every service calls a URL a partner or municipality gave us.

- **Signing**: ``X-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``; the time
  is signed so a captured request cannot be replayed later (receivers allow 300 s of skew).
- **Where we may connect (SSRF guard)**: the URL must be https; its host is resolved once
  and every address it resolves to must be public: loopback, private, link-local, shared
  (CGNAT), multicast, reserved, unspecified and the cloud metadata addresses are refused,
  also when they hide inside IPv6 (IPv4-mapped, NAT64, 6to4, Teredo). The request then goes
  to that checked address (pinned, so a second DNS answer cannot point elsewhere), with the
  name kept for TLS (SNI and certificate) and the ``Host`` header. Redirects are never
  followed. The check runs at registration and again before every delivery.
- **Development receivers**: plain http, and a local address, only for the hosts (``host`` or
  ``host:port``) listed in the service's ``*_WEBHOOK_ALLOW_HTTP_HOSTS``; empty by default.
- **What a caller is told**: one generic message for every refusal and failure, so the API
  cannot be used to scan a network (which ports answer, which hosts exist).
- **Delivery**: outside database transactions, several webhooks at once with a bound
  (``gather_bounded``), each backing off on its own (``backoff_seconds``)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TypeVar

import httpx

TOLERANCE_SECONDS = 300
# What an API answers for any refused URL, and what a subscription shows after a failed
# delivery: never the reason (DNS, port closed, HTTP status), which would be a scan oracle.
REFUSED = "the webhook URL must use https and point at a public internet address"
DELIVERY_FAILED = "delivery failed; it is retried with backoff"

METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
T = TypeVar("T")


class UnsafeWebhookURL(ValueError):
    """The URL may not be called; ``str()`` is the generic message, ``reason`` is for logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(REFUSED)
        self.reason = reason


# --- signing -------------------------------------------------------------------------------


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Signature`` header value: ``t=<unix>,v1=<hex hmac_sha256(secret, "t.body")>``."""
    return f"t={timestamp},v1={_hex(secret, f'{timestamp}.'.encode() + body)}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """The recipe a receiver follows: parse, reject a stale time, recompute, compare in
    constant time."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(_hex(secret, f"{timestamp}.".encode() + body), parts.get("v1", ""))


# --- the SSRF guard ------------------------------------------------------------------------


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where it stands for one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def forbidden(address: Address) -> bool:
    """Whether a webhook may not connect to this address."""
    if (
        isinstance(address, ipaddress.IPv6Address)
        and (inner := _embedded_ipv4(address)) is not None
        and forbidden(inner)
    ):
        return True
    return (
        address in METADATA_ADDRESSES
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        # not global: shared address space (100.64/10), documentation, benchmarking, ...
        or not address.is_global
    )


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """A URL that passed the guard, and the address to connect to."""

    url: httpx.URL
    address: str

    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=self.address)

    def host_header(self) -> str:
        default = {"https": 443, "http": 80}[self.url.scheme]
        port = self.url.port
        host = f"[{self.url.host}]" if ":" in self.url.host else self.url.host
        return host if port in (None, default) else f"{host}:{port}"


def _development_host(url: httpx.URL, allow_http_hosts: Collection[str]) -> bool:
    port = url.port or {"https": 443, "http": 80}.get(url.scheme, 0)
    return url.host in allow_http_hosts or f"{url.host}:{port}" in allow_http_hosts


async def check_url(
    url: str,
    *,
    allow_http_hosts: Collection[str] = (),
    resolver: Resolver = system_resolver,
) -> Target:
    """Resolve ``url`` once and check it; raises ``UnsafeWebhookURL`` (generic message)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UnsafeWebhookURL(f"not a URL: {exc}") from exc
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise UnsafeWebhookURL(f"scheme {parsed.scheme!r} or no host")
    if parsed.userinfo:
        raise UnsafeWebhookURL("credentials in the URL")
    development = _development_host(parsed, allow_http_hosts)
    if parsed.scheme == "http" and not development:
        raise UnsafeWebhookURL("plain http")
    try:
        literal: Address | None = ipaddress.ip_address(parsed.host)
    except ValueError:
        literal = None
    try:
        found = [str(literal)] if literal else await resolver(parsed.host, parsed.port or 443)
    except OSError as exc:
        raise UnsafeWebhookURL(f"does not resolve: {exc}") from exc
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
    if not addresses:
        raise UnsafeWebhookURL("resolves to nothing")
    if not development and (bad := [a for a in addresses if forbidden(a)]):
        raise UnsafeWebhookURL(f"resolves to a forbidden address {bad[0]}")
    return Target(parsed, str(addresses[0]))


# --- delivery ------------------------------------------------------------------------------


async def post_signed(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_http_hosts: Collection[str] = (),
    resolver: Resolver = system_resolver,
) -> httpx.Response:
    """POST ``body`` signed with ``secret`` to the checked, pinned address of ``url``.

    Raises ``UnsafeWebhookURL`` when the URL (now) resolves somewhere forbidden, and httpx
    errors for transport failures; redirects are returned, not followed."""
    target = await check_url(url, allow_http_hosts=allow_http_hosts, resolver=resolver)
    request = client.build_request(
        "POST",
        target.pinned_url(),
        content=body,
        headers={**headers, "Host": target.host_header(), "X-Signature": sign(secret, body, int(time.time()))},
        # TLS is checked against the name, not the pinned address.
        extensions={"sni_hostname": target.url.host} if target.url.scheme == "https" else {},
    )
    return await client.send(request, follow_redirects=False)


def backoff_seconds(failures: int, base: float, maximum: float) -> float:
    """The wait after ``failures`` failed attempts in a row at one webhook: doubling, capped."""
    return min(base * 2.0 ** max(failures - 1, 0), maximum)


async def gather_bounded(jobs: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Run ``jobs`` with at most ``limit`` at a time (one slow receiver does not hold the rest)."""
    semaphore = asyncio.Semaphore(limit)

    async def bounded(job: Awaitable[T]) -> T:
        async with semaphore:
            return await job

    return list(await asyncio.gather(*(bounded(job) for job in jobs)))
