"""SMS through a gateway. ``SmsGateway`` is what notify needs from any provider;
``HttpSmsGateway`` posts JSON to a URL with a bearer token, which most gateways accept
directly or through a small adapter:

    POST <NOTIFY_SMS_URL>   Authorization: Bearer <NOTIFY_SMS_TOKEN>
    {"to": "+31612345678", "text": "...", "reference": "<notification id>"}

2xx is sent. 401, 403 and 404 (a wrong token or URL), 408, 429, 5xx and timeouts say the
gateway is unusable: they count towards the SMS channel's circuit breaker, so a broken
gateway pauses SMS instead of failing the messages one by one, and are retried. Any other
4xx refuses the message. ``reference`` is the notification id, the same on every retry:
a gateway that supports it can drop a repeated message."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Annotated, Protocol

import httpx
from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from services.notify.channels import PermanentDeliveryError, check_http_answer
from services.notify.dependencies import Context
from services.notify.domain import Notification
from shared.openapi import error_responses

_PHONE = re.compile(r"^\+?[0-9]{8,15}$")
# Replies that mean "no more messages" (Dutch first).
STOP_WORDS = frozenset({"stop", "stoppen", "afmelden", "uitschrijven", "unsubscribe"})


def normalise_number(number: str) -> str:
    """+31 6-1234 5678, 0031612345678 and 0612345678 are the same Dutch mobile number."""
    digits = re.sub(r"[^0-9+]", "", number)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("0"):
        digits = "+31" + digits[1:]
    return digits


def address_digest(address: str) -> str:
    """How a do-not-contact address is kept: a digest of its normal form."""
    normal = normalise_number(address) if "@" not in address else address.strip().lower()
    return hashlib.sha256(normal.encode()).hexdigest()


def is_stop(text: str) -> bool:
    return (text.strip().split() or [""])[0].strip(".!").casefold() in STOP_WORDS


class SmsGateway(Protocol):
    async def send(self, to: str, text: str, reference: str) -> None: ...

    async def close(self) -> None: ...


class HttpSmsGateway:
    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self.url = url
        self.token = token
        # One client for every message: a client per message built a TLS context each time.
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def send(self, to: str, text: str, reference: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self._client.post(
            self.url, json={"to": to, "text": text, "reference": reference}, headers=headers
        )
        check_http_answer(response.status_code, "the SMS gateway")

    async def close(self) -> None:
        await self._client.aclose()


class SmsChannel:
    def __init__(self, gateway: SmsGateway) -> None:
        self.gateway = gateway

    async def send(self, message: Notification) -> None:
        number = re.sub(r"[\s\-().]", "", message.address or "")
        if not _PHONE.match(number):
            raise PermanentDeliveryError(f"not a phone number: {message.address!r}")
        await self.gateway.send(number, message.body_text, str(message.id))

    async def close(self) -> None:
        await self.gateway.close()


class InboundSms(BaseModel):
    """A reply the gateway received, forwarded to notify."""

    sender: str = Field(alias="from", max_length=40)
    text: str = Field(max_length=1600)


inbound_router = APIRouter(prefix="/v1/sms", tags=["sms"])
_bearer = HTTPBearer(auto_error=False, description="The SMS gateway's token (NOTIFY_SMS_TOKEN)")


def _gateway(ctx: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    token = ctx.settings.sms_token
    if token is None or not token.get_secret_value():
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "inbound SMS is closed: set NOTIFY_SMS_TOKEN")
    if not hmac.compare_digest(
        (credentials.credentials if credentials else "").encode(), token.get_secret_value().encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or invalid SMS gateway token", headers={"WWW-Authenticate": "Bearer"}
        )


@inbound_router.post(
    "/inbound",
    dependencies=[Depends(_gateway)],
    summary="A reply to an SMS: STOP puts the number on the do-not-contact list",
    responses=error_responses(
        {
            401: "Missing or invalid SMS gateway token",
            503: "Inbound SMS is closed (NOTIFY_SMS_TOKEN is not set), or the database is away",
        }
    ),
)
async def inbound(message: InboundSms, ctx: Context) -> dict[str, bool]:
    if not is_stop(message.text):
        return {"stopped": False}
    async with ctx.begin() as uow:
        await uow.notifications.add_do_not_contact(address_digest(message.sender), "sms")
    return {"stopped": True}
