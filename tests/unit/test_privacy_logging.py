"""No personal data in logs: the redaction safety net and error texts without input values."""

import json
import logging
from collections.abc import Iterator

import pytest
import structlog
import uvicorn
from pydantic import BaseModel, Field, ValidationError

from shared.logging import configure_logging, describe_error, redact, redact_event


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """configure_logging writes to the stdout of the test (capsys), closed after it: later
    tests get the default configuration back, not a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize(
    "text",
    [
        "anna.devries@example.nl",
        "+31612345678",
        "+31 6 1234 5678",
        "0031 6 12345678",
        "06-12345678",
        "0612345678",
        "030 1234567",
        "3831AB",
        "3831 AB",
        "3831ab",
    ],
)
def test_identifying_values_are_masked(text: str) -> None:
    line = f"refused <{text}> today"
    assert text not in redact(line) and redact(line).startswith("refused <[")


@pytest.mark.parametrize(
    "text",
    [
        "1c6a4e2e-0612-3456-7890-061234567890",
        "2026-11-25T16:32:23.123456Z",
        "offset 1234567890",
        "took 1000 ms",
        "in 2026 at GM0327",
        "a3f0612345678b9c" * 4,
        "partition 3 offset 12",
        "HTTP 550 5.1.1",
    ],
)
def test_ids_times_and_counts_stay_readable(text: str) -> None:
    assert redact(text) == text


def test_the_processor_redacts_nested_values_and_exceptions() -> None:
    event = {
        "event": "send failed to jan@example.nl",
        "detail": {"to": ["0612345678"], "n": 3},
        "exception": "Traceback ...\nSMTPRecipientsRefused: 3831 AB",
    }
    assert redact_event(None, "info", event) == {
        "event": "send failed to [e-mail]",
        "detail": {"to": ["[phone]"], "n": 3},
        "exception": "Traceback ...\nSMTPRecipientsRefused: [postcode]",
    }


def test_a_validation_error_is_described_without_its_input() -> None:
    class Caregiver(BaseModel):
        name: int
        email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")

    with pytest.raises(ValidationError) as caught:
        Caregiver(name="Anna de Vries", email="anna at example")
    assert "Anna de Vries" in str(caught.value)  # what pydantic itself would have logged
    text = describe_error(caught.value)
    assert "Anna de Vries" not in text and "anna at example" not in text
    assert text.startswith("name: ") and "email: " in text


def test_stdlib_and_faststream_lines_are_json_and_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test")
    logging.getLogger("faststream.access.kafka").warning("handled %s", "anna.devries@example.nl")
    logging.getLogger("uvicorn.error").error("boom", exc_info=ValueError("phone 06-12345678"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == ["handled [e-mail]", "boom"]
    assert "[phone]" in lines[1]["exception"] and "12345678" not in lines[1]["exception"]


def test_library_lines_are_json_with_the_bound_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    uvicorn.Config(app=None, log_config=uvicorn.config.LOGGING_CONFIG)  # uvicorn's own plain-text handlers
    configure_logging("test")
    structlog.contextvars.bind_contextvars(correlation_id="corr-1")
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("faststream.access.kafka").info("consumer assigned")
    structlog.contextvars.unbind_contextvars("correlation_id")
    out = capsys.readouterr()
    assert "\x1b" not in out.out and out.err == ""
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert [(line["logger"], line["correlation_id"]) for line in lines] == [
        ("uvicorn.error", "corr-1"),
        ("faststream.access.kafka", "corr-1"),
    ]
