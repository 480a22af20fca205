"""Field types for values that reach an e-mail header or address, shared by every API and CLI.

A CR or LF in a header value would let a sender add headers (the standard library refuses
it at send time, too late: the message is then retried and lost), and ``,`` or ``;`` in an
address field would add recipients. So a single-line text refuses control characters, and an
e-mail field holds exactly one plain address, checked when the value comes in (422 naming the
field, or a CLI error), never at send time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# One address: no display name, no separators, no whitespace or control characters.
EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]")


def email_problem(value: str) -> str | None:
    """Why ``value`` is not one plain e-mail address, or None."""
    if _CONTROL.search(value):
        return "must not contain line breaks or control characters"
    if any(sep in value for sep in ",;"):
        return "one address only (no ',' or ';')"
    if len(value) > 254 or not EMAIL_PATTERN.match(value):
        return "must be one e-mail address such as naam@example.nl"
    return None


def _one_address(value: str) -> str:
    if (problem := email_problem(value)) is not None:
        raise ValueError(problem)
    return value


def _single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain line breaks or control characters")
    return value


@dataclass(frozen=True)
class Documented:
    """Adds to a field's JSON Schema what its validator checks (a validator is invisible to
    the OpenAPI document), so a client, and a generated test, knows the rule."""

    pattern: str | None = None
    enum: tuple[str, ...] | None = None

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        return schema


EmailAddress = Annotated[
    str, StringConstraints(max_length=254), AfterValidator(_one_address), Documented(pattern=EMAIL_PATTERN.pattern)
]
# Text that may end up in a subject or another header: a name, a reference, a label.
SingleLine = Annotated[
    str, AfterValidator(_single_line), Documented(pattern="^[^\\x00-\\x1f\\x7f\\u2028\\u2029\\u0085]*$")
]
