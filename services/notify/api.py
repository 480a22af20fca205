"""The notify service: its consumer, its delivery worker and the local mailbox page."""

from __future__ import annotations

import html
from pathlib import Path
from uuid import UUID

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse

from services.notify import repository
from services.notify.channels import MailboxChannel
from services.notify.config import NotifySettings
from services.notify.delivery import DeliveryWorker
from services.notify.handlers import register_handlers
from shared.contracts import Topics
from shared.service import Runtime, create_runtime, create_service_app

MIGRATIONS = Path(__file__).parent / "migrations"

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}}
pre{{white-space:pre-wrap;background:#f6f6f6;padding:1rem}}.failed{{color:#b00}}</style></head>
<body>{body}</body></html>"""


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or NotifySettings()
    runtime = create_runtime(settings)
    register_handlers(runtime)

    def delivery_worker(rt: Runtime) -> DeliveryWorker:
        return DeliveryWorker(
            rt, {"email": MailboxChannel(settings.mailbox_dir, settings.sender)},
            poll_seconds=settings.delivery_poll_seconds, max_attempts=settings.delivery_max_attempts,
            backoff_seconds=settings.delivery_backoff_seconds,
        )

    app = create_service_app(
        runtime, title="signal-to-support: notify", migrations=MIGRATIONS,
        produces=[Topics.NOTIFY], workers=[delivery_worker],
        description="Tells the caregiver, the referrer and the providers; the local mailbox is at /mailbox.",
    )

    @app.get("/mailbox", response_class=HTMLResponse, tags=["mailbox"], summary="The local mailbox")
    async def mailbox(request: Request) -> HTMLResponse:
        async with runtime.pool.acquire() as conn:
            rows = await repository.recent(conn)
        lines = "".join(
            f"<tr class='{r['status']}'><td>{r['created_at']:%Y-%m-%d %H:%M:%S}</td><td>{html.escape(r['recipient_role'])}</td>"
            f"<td>{html.escape(r['address'] or '')}</td><td><a href='/mailbox/{r['id']}'>{html.escape(r['subject'])}</a></td>"
            f"<td>{r['status']}</td></tr>"
            for r in rows
        )
        body = (f"<h1>Local mailbox</h1><p>{len(rows)} most recent e-mails "
                f"(files in <code>{html.escape(str(settings.mailbox_dir))}</code>).</p>"
                f"<table><tr><th>created</th><th>to (role)</th><th>address</th><th>subject</th><th>status</th></tr>{lines}</table>")
        return HTMLResponse(_PAGE.format(title="Mailbox", body=body))

    @app.get("/mailbox/{notification_id}", response_class=HTMLResponse, tags=["mailbox"])
    async def message(notification_id: UUID) -> HTMLResponse:
        async with runtime.pool.acquire() as conn:
            row = await repository.one(conn, notification_id)
        if row is None:
            raise HTTPException(404, "no such message")
        body = (f"<p><a href='/mailbox'>&larr; mailbox</a></p><h1>{html.escape(row['subject'])}</h1>"
                f"<p>To: {html.escape(row['address'] or '')} ({row['recipient_role']}, {row['language']}) "
                f"&middot; {row['status']}</p><pre>{html.escape(row['body_text'])}</pre>")
        return HTMLResponse(_PAGE.format(title=html.escape(row["subject"]), body=body))

    return app
