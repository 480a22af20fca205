"""Bearer credentials, the one way every service authenticates a caller.

A credential is a long random key, stored only as its SHA-256 digest (``hash_key``) in the
``credentials`` table of the service that issued it, with an id (what operators see, list
and revoke), its scopes, the subject it speaks for (an organisation id, a municipality code,
a provider's service id, a privacy officer's id), an optional expiry and the time it was
last used. A revoked key stays in the table, so issuing the same value again is refused:
revocation is never undone.

``bearer_credential(scope, ...)`` builds the FastAPI dependency a route declares: it answers
``401`` with ``WWW-Authenticate: Bearer`` for a missing, unknown, revoked or expired key,
``403`` naming the scope the key lacks, and ``429`` with ``Retry-After`` when the key is over
its rate (``shared.ratelimit``, counted in the database so every instance shares the count).
Lookups are cached for ``<P>_AUTH_CACHE_SECONDS`` (a revocation takes effect within that
time), and the last-used time is written at most once a minute per key."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import hmac
import math
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4, uuid5

import asyncpg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from shared import ratelimit
from shared.commandline import Commands, Invocation, Refused, instant

LAST_USED_RESOLUTION = timedelta(minutes=1)
MIN_KEY_LENGTH = 32
MIN_KEY_BITS = 128


class Scope(StrEnum):
    INGEST = "ingest"  # post signals
    READ_STATUS = "read_status"  # read the status of one's own signals
    ERASE_OWN = "erase_own"  # withdraw one's own signals
    MUNICIPALITY_READ = "municipality_read"  # a municipality's stream, webhooks and statistics
    PROVIDER = "provider"  # answer referrals of one's own service
    ADMIN = "admin"  # the social-map admin API
    PRIVACY_OFFICER = "privacy_officer"  # erase a person across organisations


PARTNER_SCOPES = (Scope.INGEST, Scope.READ_STATUS, Scope.ERASE_OWN)


@dataclass(frozen=True)
class Credential:
    id: UUID
    scopes: frozenset[str]
    subject: str
    holder: str
    rate_per_minute: int | None
    expires_at: datetime | None
    last_used_at: datetime | None


class KeyRefused(ValueError):
    """A key value that may not be issued (weak, revoked before, or in use)."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_weakness(key: str) -> str | None:
    """Why ``key`` is too weak to be a credential, or None.

    Length and an entropy estimate (Shannon entropy of its characters times its length): a
    random 32-byte ``secrets.token_urlsafe`` scores about 220 bits, ``aaaa…`` or a phrase
    with few distinct characters fails."""
    if len(key) < MIN_KEY_LENGTH:
        return f"a key must be at least {MIN_KEY_LENGTH} characters (leave --key out to get a random one)"
    counts = Counter(key)
    bits = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values()) * len(key)
    if bits < MIN_KEY_BITS or len(counts) < 16:
        return (
            f"a key must be random (about {bits:.0f} bits estimated, at least {MIN_KEY_BITS} needed); "
            "leave --key out to get a random one"
        )
    return None


# --- the credentials table ----------------------------------------------------------------


async def issue(
    conn: asyncpg.Connection,
    *,
    key: str,
    scopes: Sequence[Scope],
    subject: str,
    holder: str = "",
    label: str = "",
    expires_at: datetime | None = None,
    rate_per_minute: int | None = None,
) -> UUID:
    """Store ``key`` (its digest) and return its id. Issuing an active key again for the same
    subject and scopes is a no-op (seeding is repeatable); a key that was ever revoked, or
    that another subject holds, is refused."""
    digest = hash_key(key)
    key_id: UUID | None = await conn.fetchval(
        """INSERT INTO credentials (id, key_hash, scopes, subject, holder, label, expires_at, rate_per_minute)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key_hash) DO NOTHING RETURNING id""",
        uuid4(),
        digest,
        sorted(scopes),
        subject,
        holder,
        label,
        expires_at,
        rate_per_minute,
    )
    if key_id is not None:
        return key_id
    existing = await conn.fetchrow(
        "SELECT id, scopes, subject, revoked_at FROM credentials WHERE key_hash = $1", digest
    )
    if existing["revoked_at"] is not None:
        raise KeyRefused("this key was revoked and can never be valid again: issue a new one")
    if existing["subject"] != subject or sorted(existing["scopes"]) != sorted(scopes):
        raise KeyRefused("this key value is already in use: choose another")
    existing_id: UUID = existing["id"]
    return existing_id


async def revoke(conn: asyncpg.Connection, key_id: UUID) -> bool:
    result: str = await conn.execute(
        "UPDATE credentials SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id
    )
    return result != "UPDATE 0"


async def list_keys(conn: asyncpg.Connection, scope: Scope | None = None) -> list[asyncpg.Record]:
    """Every key (never its value), newest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT id, scopes, subject, holder, label, created_at, expires_at, last_used_at, revoked_at,
                  rate_per_minute FROM credentials
           WHERE $1::text IS NULL OR $1 = ANY(scopes) ORDER BY created_at DESC""",
        scope.value if scope else None,
    )
    return rows


async def _lookup(conn: asyncpg.Connection, digest: str) -> Credential | None:
    row = await conn.fetchrow(
        """SELECT id, scopes, subject, holder, rate_per_minute, expires_at, last_used_at FROM credentials
           WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())""",
        digest,
    )
    return Credential(**{**dict(row), "scopes": frozenset(row["scopes"])}) if row else None


async def credential_for_key(conn: asyncpg.Connection, key: str) -> Credential | None:
    """The live credential (not revoked, not expired) of ``key`` as given in a sign-in form."""
    return await _lookup(conn, hash_key(key))


async def _touch(conn: asyncpg.Connection, key_id: UUID) -> None:
    await conn.execute(
        """UPDATE credentials SET last_used_at = now()
           WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')""",
        key_id,
    )


# --- the dependency -----------------------------------------------------------------------


class _Cache:
    """Digest -> (credential or None, when looked up), per application."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Credential | None, float]] = {}

    def get(self, digest: str, ttl: float) -> tuple[bool, Credential | None]:
        entry = self.entries.get(digest)
        if entry is None or time.monotonic() - entry[1] > ttl:
            return False, None
        return True, entry[0]

    def put(self, digest: str, credential: Credential | None) -> None:
        if len(self.entries) > 10_000:  # unknown keys must not grow it without bound
            self.entries.clear()
        self.entries[digest] = (credential, time.monotonic())


def _cache(request: Request) -> _Cache:
    state = request.app.state
    if not hasattr(state, "credential_cache"):
        state.credential_cache = _Cache()
    cache: _Cache = state.credential_cache
    return cache


def _unauthorised(what: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        f"missing or invalid {what}: send 'Authorization: Bearer <key>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _static(given: str, token: SecretStr | None, scope: Scope) -> Credential:
    if token is None or not token.get_secret_value():  # an empty token must not open the API
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "this API is closed: its token is not set")
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise _unauthorised("token")
    return Credential(
        id=uuid5(UUID(int=0), f"static:{scope}"),
        scopes=frozenset({scope}),
        subject=scope,
        holder="",
        rate_per_minute=None,
        expires_at=None,
        last_used_at=None,
    )


async def _stored(request: Request, given: str, what: str) -> Credential:
    runtime = request.app.state.runtime
    digest, cache = hash_key(given), _cache(request)
    hit, credential = cache.get(digest, runtime.settings.auth_cache_seconds)
    if not hit:
        async with runtime.pool.acquire() as conn:
            credential = await _lookup(conn, digest)
        cache.put(digest, credential)
    now = datetime.now(UTC)
    if credential is None or (credential.expires_at is not None and credential.expires_at <= now):
        raise _unauthorised(what)
    if credential.last_used_at is None or now - credential.last_used_at >= LAST_USED_RESOLUTION:
        async with runtime.pool.acquire() as conn:
            await _touch(conn, credential.id)
        cache.put(digest, dataclasses.replace(credential, last_used_at=now))
    return credential


def bearer_credential(
    *any_of: Scope,
    what: str = "API key",
    scheme_name: str = "ApiKey",
    static_token: Callable[[Any], SecretStr | None] | None = None,
) -> Callable[..., Any]:
    """The dependency that admits a key holding one of ``any_of`` and within its rate.

    ``static_token`` (settings -> token) admits one configured token instead of stored keys
    (the social-map admin API)."""
    bearer = HTTPBearer(auto_error=False, scheme_name=scheme_name, description=f"The {what}")

    # A default, not Annotated: the annotation would be resolved by name, and ``bearer`` is local.
    async def credential(request: Request, given: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Credential:
        settings = request.app.state.runtime.settings
        key = given.credentials if given else ""
        if static_token is not None:
            found = _static(key, static_token(settings), any_of[0])
        elif not key:
            raise _unauthorised(what)
        else:
            found = await _stored(request, key, what)
        granted = [s for s in any_of if s in found.scopes]
        if not granted:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this key lacks the scope {' or '.join(repr(s.value) for s in any_of)}"
            )
        limit = found.rate_per_minute or settings.rate_limits.get(granted[0].value, settings.rate_limit_default)
        async with request.app.state.runtime.pool.acquire() as conn:
            retry_after = await ratelimit.hit(conn, f"{found.id}:{granted[0].value}", limit)
        if retry_after is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"rate limit of {limit} requests per minute reached: retry after {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
        return found

    return credential


# --- CLI pieces -------------------------------------------------------------------------------


def add_issue_arguments(parser: argparse.ArgumentParser) -> None:
    """--key, --label, --expires, --rate-per-minute for an ``issue-…`` command."""
    parser.add_argument(
        "--key",
        help=f"use this key instead of a random one (at least {MIN_KEY_LENGTH} random "
        "characters; weak values are refused)",
    )
    parser.add_argument("--label", default="", help="a note on who holds the key")
    parser.add_argument("--expires", type=instant, help="expiry, ISO 8601 (e.g. 2027-06-30); default: none")
    parser.add_argument("--rate-per-minute", type=int, help="this key's rate limit (default: the scope's setting)")


def new_key(given: str | None) -> str:
    """The key to issue: ``given`` when strong enough (else ``KeyRefused``), or a random one."""
    if given is None:
        # A prefix: secret scanners recognise the key, and it never starts with "-" (which a
        # command line would read as an option when the key is passed back with --key).
        return "sts_" + secrets.token_urlsafe(32)
    if (weakness := key_weakness(given)) is not None:
        raise KeyRefused(weakness)
    return given


async def issue_from_command(cmd: Invocation[Any], scopes: Sequence[Scope], subject: str, holder: str) -> int:
    """Issue the key an ``issue-…`` command asked for (``add_issue_arguments``); print it once,
    and its id on stderr."""
    args = cmd.args
    try:
        key = new_key(args.key)
        key_id = await issue(
            cmd.conn,
            key=key,
            scopes=scopes,
            subject=subject,
            holder=holder,
            label=args.label,
            expires_at=args.expires,
            rate_per_minute=args.rate_per_minute,
        )
    except KeyRefused as exc:
        raise Refused(str(exc), field="--key") from exc
    print(key)
    print(f"id {key_id} (scopes: {', '.join(scopes)}; the key is shown only now)", file=sys.stderr)
    return 0


def add_key_admin_commands(commands: Commands[Any]) -> None:
    """``list-keys`` and ``revoke-key --id`` for a service CLI."""
    commands.command(
        "list-keys", _list_keys, help="every key by id, scope, subject, expiry and last use (never the key itself)"
    )
    revoke_parser = commands.command(
        "revoke-key",
        _revoke_key,
        help="revoke a key by its id (shown by issue and list-keys); final: the same key is never accepted again",
    )
    revoke_parser.add_argument("--id", required=True, type=UUID, help="the key's id")


async def _list_keys(cmd: Invocation[Any]) -> int:
    rows = [dict(r) | {"scopes": ",".join(r["scopes"])} for r in await list_keys(cmd.conn)]
    cmd.show(
        rows,
        (
            "id",
            "scopes",
            "subject",
            "holder",
            "label",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "rate_per_minute",
        ),
        empty="no keys",
    )
    return 0


async def _revoke_key(cmd: Invocation[Any]) -> int:
    if not await revoke(cmd.conn, cmd.args.id):
        raise Refused("no active key with this id", field="--id", code=1)
    print("revoked")
    return 0
