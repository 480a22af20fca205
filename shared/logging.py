"""structlog setup: JSON lines in production, readable console output in development.

The correlation id travels in Kafka headers and is bound with ``bind_contextvars`` so every
log line of one signal's journey carries it.

No personal data in logs: call sites log ids and pseudonym digests, never payloads, and
every line (our own and the stdlib's: uvicorn, FastStream, aiokafka) passes ``redact``
last, a safety net that masks e-mail addresses, phone numbers and Dutch postcodes that an
exception text or a library message may still carry. Names cannot be recognised by a
pattern: those only stay out because nothing logs a payload. ``describe_error`` is the one
way to turn an exception into text for a log line, a stored error or an event."""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import Any

import structlog
from pydantic import ValidationError

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# International (+31 6 1234 5678, 0031…) or Dutch national (06-12345678, 030 1234567) numbers;
# not inside a longer token, so ids, offsets and timestamps stay readable.
_PHONE = re.compile(r"(?<![\w\-:.])(?:(?:\+|00)\d{2}[\s\-]?(?:\(0\)[\s\-]?)?|0)\d(?:[\s\-]?\d){7,9}(?![\w\-:])")
# 1234 AB (letters never SA, SD, SS); lower case only when written without a space, so
# "1000 ms" or "2026 at" in a message stays.
_POSTCODE = re.compile(r"(?<![\w\-])[1-9]\d{3}(?: ?(?!SA|SD|SS)[A-Z]{2}|(?!sa|sd|ss|ms)[a-z]{2})(?![\w\-])")

REDACTED_EMAIL, REDACTED_PHONE, REDACTED_POSTCODE = "[e-mail]", "[phone]", "[postcode]"


def redact(text: str) -> str:
    """``text`` with e-mail addresses, phone numbers and Dutch postcodes masked."""
    text = _EMAIL.sub(REDACTED_EMAIL, text)
    text = _PHONE.sub(REDACTED_PHONE, text)
    return _POSTCODE.sub(REDACTED_POSTCODE, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))  # rendered as text anyway; an exception's text is the usual case


def redact_event(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """structlog processor: runs after exceptions are formatted, right before rendering."""
    return {key: _redact_value(value) for key, value in event_dict.items()}


def describe_error(exc: BaseException) -> str:
    """An exception as text without personal values: a pydantic error lists fields and
    messages, never the input (its ``str`` echoes the input values); anything else is redacted."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
    return redact(str(exc) or repr(exc))


def configure_logging(service: str, fmt: str = "json", level: str = "INFO") -> None:
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    # Route stdlib logging (uvicorn, aiokafka, faststream) through the same renderer, with
    # their tracebacks formatted first so the redaction sees them too.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_event,
                renderer,
            ],
            foreign_pre_chain=[*shared_processors, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # FastStream and uvicorn give their loggers handlers of their own (plain text, ANSI
    # colours) that bypass the root's; uvicorn only when it is given a log_config, which
    # shared.service never does.
    for library in ("faststream", "faststream.access", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(library)
        logger.handlers.clear()
        logger.propagate = True
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Python's warnings and uncaught exceptions (of the main thread and of others) would go to
    # stderr as plain text: log them as JSON lines too.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda hook: _log_uncaught(
        hook.exc_type, hook.exc_value or hook.exc_type(), hook.exc_traceback
    )


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("uncaught").critical("uncaught exception", exc_info=(kind, exc, tb))
