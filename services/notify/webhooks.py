"""Signed webhooks to partner systems (see WEBHOOKS.md for the format and how to verify).

The body is the JSON document stored with the notification; ``X-Signature`` signs it with
the partner's secret and the current time, ``X-Delivery-Id`` lets the partner drop a
repeated delivery. Redirects are not followed: a partner registers its final URL. A host
that is down or answers 401/403/404/5xx opens the breaker for that host only."""

from __future__ import annotations

import time

import httpx

from services.notify.channels import Outgoing, PermanentDeliveryError, check_http_answer
from services.notify.signatures import webhook_signature


class WebhookChannel:
    def __init__(self, timeout: float, user_agent: str = "signal-to-support-notify/1") -> None:
        self.timeout = timeout
        self.user_agent = user_agent

    async def send(self, message: Outgoing) -> None:
        if not message.secret:
            raise PermanentDeliveryError("the partner has no webhook secret")
        body = message.body_text.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            "X-Signature": webhook_signature(message.secret, body, int(time.time())),
            "X-Delivery-Id": message.notification_id,
            "X-Event-Type": message.kind,
        }
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            try:
                response = await client.post(message.to, content=body, headers=headers)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise PermanentDeliveryError(f"not a usable webhook URL: {exc}") from exc
        check_http_answer(response.status_code, "the webhook")

    async def close(self) -> None:
        pass
