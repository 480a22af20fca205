"""Message templates: Jinja2 files per language, ``<template>.subject.j2`` and ``.txt.j2``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )


def render(template: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    """Return (subject, plain-text body); falls back to Dutch for an unknown language."""
    if not (TEMPLATES / language / f"{template}.txt.j2").exists():
        language = "nl"
    env = _environment()
    subject = env.get_template(f"{language}/{template}.subject.j2").render(context).strip()
    body = env.get_template(f"{language}/{template}.txt.j2").render(context)
    return subject, body
