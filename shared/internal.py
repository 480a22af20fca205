"""Service-to-service calls: the one dependency that admits only callers holding the
deployment's internal token (``STS_INTERNAL_TOKEN``), and the header that carries it."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader

HEADER = "X-Internal-Token"


def internal_headers(token: str) -> dict[str, str]:
    return {HEADER: token}


# Declared as a security scheme, so the OpenAPI document says what these endpoints need.
_token = APIKeyHeader(
    name=HEADER,
    scheme_name="InternalToken",
    auto_error=False,
    description="The deployment's internal token (STS_INTERNAL_TOKEN)",
)


async def require_internal(request: Request, given: Annotated[str | None, Security(_token)] = None) -> None:
    """Refuses a request without the internal token, comparing in constant time."""
    expected = request.app.state.runtime.settings.internal_token
    given = given or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "internal endpoint: send the deployment's internal token")
