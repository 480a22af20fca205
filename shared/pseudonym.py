"""Keyed-HMAC pseudonyms of a caregiver's identity.

Never a plain hash: name, birth year and postcode are guessable, so without the key a
dictionary attack would recover them. Each purpose (case merging, a municipality's stream)
uses its own key so the resulting data sets cannot be linked."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata


def _normalise_text(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]", "", letters.casefold())


def identity_basis(
    *,
    name: str | None,
    birth_year: int | None,
    postcode: str | None,
    email: str | None,
    phone: str | None,
) -> str | None:
    """The normalised identity a pseudonym is computed from, strongest first; None if none."""
    if name and birth_year and postcode:
        return f"npb:{_normalise_text(name)}|{birth_year}|{_normalise_text(postcode)}"
    if email:
        return f"e:{email.strip().casefold()}"
    if phone:
        digits = re.sub(r"\D", "", phone)
        if digits.startswith("0") and not digits.startswith("00"):
            digits = "31" + digits[1:]  # Dutch national format to international
        return f"p:{digits.lstrip('0')}"
    return None


def pseudonymise(key: bytes, basis: str) -> str:
    return hmac.new(key, basis.encode(), hashlib.sha256).hexdigest()
