"""Message templates: Jinja2 files per language.

``<language>/<template>.subject.j2`` and ``.txt.j2`` make an e-mail's subject and plain-text
part; the HTML part is the plain text in ``_layout.html.j2`` (links made clickable), so the
two parts never say different things. ``.sms.j2`` is the short form for SMS.
``<language>/labels.json`` names the codes (needs, statuses, reasons) in that language.
``pages/*.html.j2`` are the small web pages the signed links in messages open."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("nl", "en")
# Caregivers' languages without templates yet: the message is sent in Dutch, and its first
# line says so in their own language.
FALLBACK_NOTES = {
    "tr": "Bu mesaj Felemenkçedir: henüz sizin dilinizde bir metnimiz yok.",
    "ar": "هذه الرسالة باللغة الهولندية: ليس لدينا نص بلغتك بعد.",
    "pl": "Ta wiadomość jest po niderlandzku: nie mamy jej jeszcze w Twoim języku.",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


@cache
def _environment(html: bool) -> Environment:
    return Environment(
        # Escaped for the HTML part; the plain-text part and SMS are not HTML, escaping would garble them.
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=html,  # noqa: S701
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@cache
def labels(language: str) -> dict[str, dict[str, str]]:
    return json.loads((TEMPLATES / language / "labels.json").read_text(encoding="utf-8"))


def render(template: str, language: str, context: dict[str, Any], channel: str = "email") -> Rendered:
    """Render ``template`` for ``channel`` (email or sms); an unknown language falls back to
    Dutch, and a caregiver's language without templates says so on the first line."""
    note = None if language in LANGUAGES else FALLBACK_NOTES.get(language)
    if language not in LANGUAGES:
        language = "nl"
    env = _environment(False)
    context = {**context, "labels": labels(language), "language": language}
    subject = env.get_template(f"{language}/{template}.subject.j2").render(context).strip()
    if channel == "sms":
        sms = env.get_template(f"{language}/{template}.sms.j2").render(context).strip()
        return Rendered(subject, f"{note}\n{sms}" if note else sms, None)
    text = env.get_template(f"{language}/{template}.txt.j2").render(context)
    if note:
        text = f"{note}\n\n{text}"
    html = (
        _environment(True)
        .get_template("_layout.html.j2")
        .render(subject=subject, paragraphs=[p for p in text.split("\n\n") if p.strip()], language=language)
    )
    return Rendered(subject, text, html)


def render_page(page: str, language: str, **context: Any) -> str:
    language = language if language in LANGUAGES else "nl"
    return (
        _environment(True)
        .get_template(f"pages/{page}.html.j2")
        .render(labels=labels(language), language=language, **context)
    )
