"""The local mailbox of the embedded stack: an SMTP server (aiosmtpd) that accepts every
message (except for addresses at ``refused.example.nl``, which it refuses with ``550`` as a
real relay refuses an unknown user, echoing the address) and keeps it as an ``.eml`` file,
and a small web page to read them. Every receipt is also appended to ``journal.jsonl`` in
the same directory (received_at, Message-ID, envelope recipients, subject, file), so a test
can count what the server actually received, a repeated delivery of the same Message-ID
included.

    python -m deploy.mailbox --dir .data/mailbox --smtp-port 2525 --http-port 8025

Notify sends to it exactly as it would to a real relay, so what you read here is what a
recipient would get: headers, the plain-text part and the HTML part. It relays nothing
and needs no login; never expose it beyond localhost. Options default to the MAILBOX_DIR,
MAILBOX_HOST, MAILBOX_SMTP_PORT and MAILBOX_HTTP_PORT environment variables."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import signal
import sys
import threading
import uuid
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from shared.commandline import new_parser

JOURNAL = "journal.jsonl"
# Recipients at this domain are refused (550): how to see a permanent delivery failure.
REFUSED_DOMAIN = "refused.example.nl"

_NAME = re.compile(r"^[\w.-]+\.eml$")
_URL = re.compile(r"https?://[^\s<>\"']+")
_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#222}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}dt{font-weight:600}dd{margin:0 0 .4rem 0}"""


class Maildrop:
    """aiosmtpd handler: an accepted message becomes an ``.eml`` file, written atomically,
    with the SMTP envelope (which may differ from the headers) on top.

    Like a mail client, the mailbox shows a message once per Message-ID: a repeated delivery
    of the same message (a sender that crashed before it recorded the first) is kept in the
    journal, marked ``repeat``, but not stored a second time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address.lower().endswith("@" + REFUSED_DOMAIN):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        trace = (f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        content = envelope.original_content or envelope.content
        headers = BytesHeaderParser(policy=policy.default).parsebytes(content)
        message_id = str(headers["Message-ID"] or "").strip()
        name = hashlib.sha256(message_id.encode()).hexdigest()[:32] if message_id else uuid.uuid4().hex
        target = self.directory / f"{name}.eml"
        repeat = target.exists()
        if not repeat:
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(trace + content)
            os.replace(tmp, target)
        entry = {
            "received_at": datetime.now(UTC).isoformat(),
            "message_id": message_id,
            "recipients": list(envelope.rcpt_tos),
            "subject": str(headers["Subject"] or ""),
            "file": target.name,
            "repeat": repeat,
        }
        # Written before the 250: every message the sender was told is accepted is in the
        # journal. One write of one line on an O_APPEND descriptor, so lines never interleave.
        fd = os.open(self.directory / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (json.dumps(entry, ensure_ascii=False) + "\n").encode())
        finally:
            os.close(fd)
        return "250 Message accepted for delivery"


def journal(directory: Path) -> list[dict[str, Any]]:
    """Every SMTP receipt so far, oldest first (a line cut short by a crash is skipped)."""
    path = directory / JOURNAL
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def messages(directory: Path) -> list[Path]:
    """The stored messages, newest first."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.glob("*.eml")), key=lambda p: p.stat().st_mtime_ns, reverse=True)


def parse(path: Path) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def _linked(text: str) -> str:
    return _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', html.escape(text, quote=False))


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    ).encode()


def index_page(directory: Path) -> bytes:
    rows = []
    for path in messages(directory)[:500]:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(path.read_bytes())
        rows.append(
            f"<tr><td>{html.escape(str(headers['Date'] or ''))}</td><td>{html.escape(str(headers['To'] or ''))}</td>"
            f"<td><a href='/m/{path.name}'>{html.escape(str(headers['Subject'] or '(no subject)'))}</a></td>"
            f"<td>{html.escape(str(headers['Content-Language'] or ''))}</td></tr>"
        )
    body = (
        f"<h1>Local mailbox</h1><p>{len(rows)} message(s), newest first; files in "
        f"<code>{html.escape(str(directory))}</code>.</p><table><tr><th>date</th><th>to</th>"
        f"<th>subject</th><th>language</th></tr>{''.join(rows)}</table>"
    )
    return _page("Local mailbox", body)


def message_page(path: Path) -> bytes:
    mail = parse(path)
    shown = ("From", "To", "Subject", "Date", "Message-ID", "Content-Language", "Auto-Submitted")
    headers = "".join(f"<dt>{name}</dt><dd>{html.escape(str(mail[name]))}</dd>" for name in shown if mail[name])
    text = mail.get_body(preferencelist=("plain",))
    has_html = mail.get_body(preferencelist=("html",)) is not None
    links = f"<a href='/raw/{path.name}'>raw .eml</a>" + (
        f" · <a href='/html/{path.name}'>HTML part</a>" if has_html else ""
    )
    body = (
        f"<p><a href='/'>&larr; mailbox</a> · {links}</p><h1>{html.escape(str(mail['Subject'] or ''))}</h1>"
        f"<dl>{headers}</dl><h2>Plain text</h2><pre>{_linked(text.get_content() if text else '')}</pre>"
    )
    return _page(str(mail["Subject"] or "message"), body)


class _Handler(BaseHTTPRequestHandler):
    directory: Path

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/html; charset=utf-8",
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _file(self, name: str) -> Path | None:
        path = self.directory / name
        return path if _NAME.match(name) and path.is_file() else None

    def do_GET(self) -> None:
        route, _, name = self.path.partition("?")[0].lstrip("/").partition("/")
        if route == "":
            self._send(HTTPStatus.OK, index_page(self.directory))
        elif route == "healthz":
            self._send(HTTPStatus.OK, b"ok", "text/plain")
        elif route in ("m", "raw", "html") and (path := self._file(name)):
            if route == "m":
                self._send(HTTPStatus.OK, message_page(path))
            elif route == "raw":
                self._send(HTTPStatus.OK, path.read_bytes(), "message/rfc822")
            else:
                part = parse(path).get_body(preferencelist=("html",))
                # The mail's HTML is untrusted content: no scripts, no requests, links open apart.
                self._send(
                    HTTPStatus.OK,
                    (part.get_content() if part else "").encode(),
                    "text/html; charset=utf-8",
                    {"Content-Security-Policy": "sandbox allow-popups; default-src 'none'; style-src 'unsafe-inline'"},
                )
        else:
            self._send(HTTPStatus.NOT_FOUND, _page("Not found", "<h1>Not found</h1>"))

    def log_message(self, *args: Any) -> None:  # quiet: the page is polled by people and tests
        pass


class Mailbox:
    """The SMTP server and the web page, each in its own thread."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", smtp_port: int = 2525, http_port: int = 8025) -> None:
        self.directory = directory.resolve()
        self.smtp = Controller(Maildrop(self.directory), hostname=host, port=smtp_port)
        handler = type("Handler", (_Handler,), {"directory": self.directory})
        self.http = ThreadingHTTPServer((host, http_port), handler)
        self._thread = threading.Thread(target=self.http.serve_forever, name="mailbox-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.http.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.smtp.start()
        self._thread.start()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.smtp.stop()


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = new_parser("python -m deploy.mailbox", __doc__)
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(env("MAILBOX_DIR", ".data/mailbox")),
        help="where messages are kept (default: .data/mailbox)",
    )
    parser.add_argument("--host", default=env("MAILBOX_HOST", "127.0.0.1"), help="default: 127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=int(env("MAILBOX_SMTP_PORT", "2525")), help="default: 2525")
    parser.add_argument("--http-port", type=int, default=int(env("MAILBOX_HTTP_PORT", "8025")), help="default: 8025")
    args = parser.parse_args(argv)
    mailbox = Mailbox(args.dir, args.host, args.smtp_port, args.http_port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    mailbox.start()
    print(
        f"mailbox: SMTP on {args.host}:{args.smtp_port}, web page on {mailbox.url}, files in {mailbox.directory}",
        flush=True,
    )
    stopped.wait()
    mailbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
