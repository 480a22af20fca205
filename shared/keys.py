"""Data keys for the services that are not the key holder: fetched from the signals service's
internal endpoint (with the deployment's internal token), kept in memory for a short time,
never written anywhere, and forgotten when the caregiver is erased.

Signals unreachable (or answering 5xx) is an outage: ``KeyServiceUnavailable`` is an
``OSError``, so a consumer waits it out (``shared.failures``) and never dead-letters for it.
A key signals does not have (404) was destroyed by an erasure: ``None``."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from typing import Any

import httpx

from shared.internal import internal_headers


class KeyServiceUnavailable(ConnectionError):
    """The key holder did not answer; retry later."""


class HttpKeySource:
    PRUNE_AT = 10_000
    BATCH = 500

    def __init__(self, base_url: str, token: str, ttl_seconds: float, timeout: float = 5.0) -> None:
        self._url = base_url.rstrip("/")
        self._token = token
        self._ttl = ttl_seconds
        self._timeout = timeout
        self._cache: dict[str, tuple[bytes, float, str]] = {}  # key id -> (key, expires, subject)
        # One client for the process: a new one per fetch builds an SSL context each time,
        # which was more than half of a consumer's CPU (py-spy, screening under `make bench`).
        self._client: httpx.AsyncClient | None = None

    async def data_key(self, key_id: str, subject: str) -> bytes | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        response = await self._request("GET", f"/internal/keys/{key_id}")
        if response.status_code == 404:
            self._cache.pop(key_id, None)
            return None
        if response.status_code != 200:
            # 5xx, 503: the key holder is away; 403: the internal token is wrong (a deploy
            # fix): either way wait, and show it on /healthz, rather than drop or dead-letter.
            raise KeyServiceUnavailable(f"key holder answered {response.status_code}")
        key = base64.b64decode(response.json()["key"])
        self._remember(key_id, key, subject, now)
        return key

    async def prefetch(self, wanted: Mapping[str, str]) -> None:
        """The keys of a consumed batch in one request per ``BATCH`` ids: one round trip
        instead of one per new caregiver. A key the holder does not return is left to
        ``data_key`` (its 404 is what says "destroyed"); a key holder without the batch
        endpoint (an older version during a rolling upgrade) answers 404 or 405, and then
        every key is fetched on its own as before."""
        now = time.monotonic()
        missing = [key_id for key_id in wanted if (cached := self._cache.get(key_id)) is None or cached[1] <= now]
        for start in range(0, len(missing), self.BATCH):
            chunk = missing[start : start + self.BATCH]
            response = await self._request("POST", "/internal/keys", json={"key_ids": chunk})
            if response.status_code in (404, 405):
                return
            if response.status_code != 200:
                raise KeyServiceUnavailable(f"key holder answered {response.status_code}")
            for found in response.json()["keys"]:
                self._remember(found["key_id"], base64.b64decode(found["key"]), wanted[found["key_id"]], now)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        try:
            headers = internal_headers(self._token)
            return await self._client.request(method, f"{self._url}{path}", headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise KeyServiceUnavailable(f"key holder unreachable: {type(exc).__name__}") from exc

    def _remember(self, key_id: str, key: bytes, subject: str, now: float) -> None:
        if len(self._cache) >= self.PRUNE_AT:  # expired keys leave memory, not only on a hit
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
        self._cache[key_id] = (key, now + self._ttl, subject)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def forget_subject(self, subject: str) -> None:
        """The caregiver was erased: drop their keys now, not at the end of the TTL."""
        for key_id in [k for k, (_, _, s) in self._cache.items() if s == subject]:
            del self._cache[key_id]
