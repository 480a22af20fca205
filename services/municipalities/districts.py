"""Which CBS district (wijk) a postcode lies in, for the demo municipalities.

The table maps PC4 areas of Leusden (GM0327), Amersfoort (GM0307) and Bunschoten (GM0313)
to wijk codes (``WK`` + municipality number + two digits). It is an approximate mapping for
the demo, not an authoritative source: a production deployment loads the CBS "wijk- en
buurtkaart" with the PC4 correspondence. A postcode outside the table keeps its PC4.

The table is also the list of municipalities this deployment serves: only they get a topic,
a credential and a stream; any other code is refused."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

# pc4 -> wijk
PC4_DISTRICTS: dict[str, str] = {
    # Leusden: the centre, the south, the north-east, and the village of Achterveld
    "3831": "WK032700",
    "3832": "WK032700",
    "3833": "WK032701",
    "3834": "WK032701",
    "3835": "WK032702",
    "3791": "WK032703",
    # Amersfoort
    "3811": "WK030700",
    "3812": "WK030701",
    "3813": "WK030701",
    "3814": "WK030701",
    "3815": "WK030702",
    "3816": "WK030702",
    "3817": "WK030702",
    "3818": "WK030702",
    "3821": "WK030703",
    "3822": "WK030703",
    "3823": "WK030703",
    "3825": "WK030704",
    "3828": "WK030704",
    "3829": "WK030704",
    # Bunschoten: Bunschoten-Spakenburg and Eemdijk
    "3751": "WK031300",
    "3752": "WK031300",
    "3754": "WK031301",
    "3755": "WK031302",
}

# Statistics put everything outside the municipality's known districts in this row, so no
# row ever names a single postcode that was seen.
UNKNOWN_DISTRICT = "unknown"

_POSTCODE = re.compile(r"^([1-9]\d{3}) ?(?:[A-Za-z]{2})?$")


class Area(BaseModel):
    """Where the caregiver lives, never finer than a PC4 area."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["wijk", "pc4"]  # a CBS district, or the PC4 when the district is unknown
    code: str


def area_of(postcode: str | None) -> Area | None:
    """The district of a postcode, else its PC4; None for a missing or malformed postcode."""
    match = _POSTCODE.match((postcode or "").strip())
    if match is None:
        return None
    pc4 = match.group(1)
    district = PC4_DISTRICTS.get(pc4)
    return Area(kind="wijk", code=district) if district else Area(kind="pc4", code=pc4)


def districts_of(municipality_code: str) -> list[str]:
    """The municipality's known districts in code order (empty outside the table)."""
    prefix = "WK" + municipality_code.removeprefix("GM")
    return sorted({d for d in PC4_DISTRICTS.values() if d.startswith(prefix)})


def municipalities() -> list[str]:
    """Every municipality the table covers."""
    return sorted({"GM" + d[2:6] for d in PC4_DISTRICTS.values()})


def is_known(municipality_code: str) -> bool:
    return municipality_code in MUNICIPALITIES


MUNICIPALITIES = frozenset(municipalities())
