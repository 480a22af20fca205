"""Service-to-service calls: the one dependency that admits only callers holding the
deployment's internal token (``STS_INTERNAL_TOKEN``), and the header that carries it."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

HEADER = "X-Internal-Token"


def internal_headers(token: str) -> dict[str, str]:
    return {HEADER: token}


async def require_internal(request: Request) -> None:
    """Refuses a request without the internal token, comparing in constant time."""
    expected = request.app.state.runtime.settings.internal_token
    given = request.headers.get(HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "internal endpoint: send the deployment's internal token")
