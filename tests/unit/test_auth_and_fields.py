"""Pure parts of the abuse limits: key strength, e-mail and single-line fields, the CBS list."""

from __future__ import annotations

import secrets

import pytest
from pydantic import TypeAdapter, ValidationError

from shared import municipality_codes
from shared.auth import KeyRefused, hash_key, key_weakness, new_key
from shared.fields import EmailAddress, SingleLine, email_problem


@pytest.mark.parametrize(
    "weak", ["demo-gp-key", "hunter2", "a" * 64, "abababababababababababababababab", "0123456789" * 4]
)
def test_weak_keys_are_refused_with_a_reason(weak: str) -> None:
    assert key_weakness(weak)
    with pytest.raises(KeyRefused, match="leave --key out"):
        new_key(weak)


def test_random_keys_are_strong_and_stored_only_as_a_digest() -> None:
    for _ in range(20):
        assert key_weakness(secrets.token_urlsafe(32)) is None
    generated = new_key(None)
    assert len(generated) >= 40 and key_weakness(generated) is None
    assert hash_key(generated) != generated and len(hash_key(generated)) == 64


@pytest.mark.parametrize(
    "value",
    [
        "a@x.nl,b@y.nl",
        "a@x.nl; b@y.nl",
        "a@x.nl\r\nBcc: c@z.nl",
        "a@x.nl\n",
        "Anna <a@x.nl>",
        "a b@x.nl",
        "no-at-sign",
        "a@localhost",
    ],
)
def test_an_email_field_holds_exactly_one_plain_address(value: str) -> None:
    assert email_problem(value)
    with pytest.raises(ValidationError):
        TypeAdapter(EmailAddress).validate_python(value)


def test_plain_addresses_pass() -> None:
    for value in ("anna.devries@example.nl", "zorg+leusden@wijkteam.example.nl"):
        assert TypeAdapter(EmailAddress).validate_python(value) == value


@pytest.mark.parametrize("value", ["line\r\nBcc: x@y.nl", "a\nb", "tab\there", "nul\x00"])
def test_single_line_text_refuses_line_breaks_and_control_characters(value: str) -> None:
    with pytest.raises(ValidationError, match="line breaks"):
        TypeAdapter(SingleLine).validate_python(value)


def test_the_cbs_list_holds_the_342_existing_municipalities() -> None:
    codes = municipality_codes.municipalities()
    assert len(codes) == 342
    assert codes["GM0327"] == "Leusden" and codes["GM0363"] == "Amsterdam" and codes["GM1992"] == "Voorne aan Zee"
    assert not municipality_codes.exists("GM0501"), "Brielle merged into Voorne aan Zee in 2023"
    assert not municipality_codes.exists("GM9999")
    with pytest.raises(ValueError, match="existing Dutch municipality"):
        municipality_codes.check_code("GM0000")
