"""Approximate centroids of the PC4 postcode areas in the demo municipalities.

Used to estimate a caregiver's distance to a service when only the postcode is known. The
coordinates are rounded approximations for the demo (Leusden, Amersfoort, Bunschoten), not
an authoritative geocoding source; a production deployment loads the CBS/PDOK PC4 set."""

from __future__ import annotations

# pc4 -> (municipality code, latitude, longitude)
PC4_CENTROIDS: dict[str, tuple[str, float, float]] = {
    # Leusden (GM0327), including the village of Achterveld
    "3831": ("GM0327", 52.1322, 5.4305),
    "3832": ("GM0327", 52.1255, 5.4245),
    "3833": ("GM0327", 52.1362, 5.4168),
    "3834": ("GM0327", 52.1288, 5.4412),
    "3835": ("GM0327", 52.1441, 5.4378),
    "3791": ("GM0327", 52.1390, 5.4970),
    # Amersfoort (GM0307)
    "3811": ("GM0307", 52.1561, 5.3878),
    "3812": ("GM0307", 52.1620, 5.3720),
    "3813": ("GM0307", 52.1490, 5.3920),
    "3814": ("GM0307", 52.1490, 5.3750),
    "3815": ("GM0307", 52.1650, 5.4010),
    "3816": ("GM0307", 52.1680, 5.4120),
    "3817": ("GM0307", 52.1520, 5.4030),
    "3818": ("GM0307", 52.1440, 5.4020),
    "3821": ("GM0307", 52.1770, 5.4080),
    "3822": ("GM0307", 52.1740, 5.4270),
    "3823": ("GM0307", 52.1810, 5.4350),
    "3825": ("GM0307", 52.1940, 5.4200),
    "3828": ("GM0307", 52.1860, 5.3770),
    "3829": ("GM0307", 52.1840, 5.4260),
    # Bunschoten (GM0313): Bunschoten-Spakenburg and Eemdijk
    "3751": ("GM0313", 52.2500, 5.3780),
    "3752": ("GM0313", 52.2410, 5.3700),
    "3754": ("GM0313", 52.2360, 5.3750),
    "3755": ("GM0313", 52.2250, 5.3560),
}


def centroid(pc4: str | None) -> tuple[float, float] | None:
    """(latitude, longitude) of a PC4 area, or None when it is not in the table."""
    entry = PC4_CENTROIDS.get(pc4 or "")
    return (entry[1], entry[2]) if entry else None


def pc4_of(postcode: str | None) -> str | None:
    """The PC4 part of a Dutch postcode ('3831 AB' or '3831AB' -> '3831')."""
    digits = (postcode or "").strip()[:4]
    return digits if len(digits) == 4 and digits.isdigit() else None
