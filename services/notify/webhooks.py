"""Signed webhooks to partner systems (see WEBHOOKS.md for the format and how to verify).

The body is the JSON document stored with the notification; ``shared.webhooks`` signs it
(``X-Signature``), checks the URL (https to public addresses only, again at every delivery)
and connects to the checked address; ``X-Delivery-Id`` lets the partner drop a repeated
delivery. Redirects are not followed: a partner registers its final URL. A host that is down
or answers 401/403/404/5xx opens the breaker for that host only."""

from __future__ import annotations

from collections.abc import Collection

import httpx

from services.notify.channels import PermanentDeliveryError, check_http_answer
from services.notify.domain import Notification
from shared import webhooks


class WebhookChannel:
    def __init__(
        self, timeout: float, allow_http_hosts: Collection[str] = (), user_agent: str = "signal-to-support-notify/1"
    ) -> None:
        self.timeout = timeout
        self.allow_http_hosts = allow_http_hosts
        self.user_agent = user_agent
        # One client for every delivery: a client per delivery built a TLS context each time.
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def send(self, message: Notification) -> None:
        if not message.webhook_secret:
            raise PermanentDeliveryError("the partner has no webhook secret")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            "X-Delivery-Id": str(message.id),
            "X-Event-Type": message.template,
        }
        try:
            response = await webhooks.post_signed(
                self._http(),
                message.address or "",
                message.webhook_secret,
                message.body_text.encode(),
                headers,
                allow_http_hosts=self.allow_http_hosts,
            )
        except webhooks.UnsafeWebhookURL as exc:
            raise PermanentDeliveryError(f"{exc} ({exc.reason})") from exc
        check_http_answer(response.status_code, "the webhook")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
