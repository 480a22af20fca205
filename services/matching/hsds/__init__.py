"""Read and write the social map in Open Referral HSDS 3.x.

Reads ``service_full`` and ``organization_full`` JSON (``json_reader``: one object, a list, or an
API page with ``contents``) and the tabular form (``datapackage``: a directory with
``datapackage.json`` and the CSV files it names) into the records of ``model``, through the
validation of ``validate``. Every problem is reported as an ``ImportIssue`` and the rest of the file is still read:
a bad value is left out, and a record without what identifies it or decides eligibility (id,
name, status, organization, ages) is left out whole. Writes ``service_full`` JSON and the
tabular form back (``writers``); reading what was written gives the same records.

HSDS has no structured administrative area, so a Dutch social map follows two conventions:

- a ``service_area`` names its municipality by ``uri``, the government's TOOI identifier
  ``https://identifier.overheid.nl/tooi/id/gemeente/gm0327``;
- an area limited to one PC4 postcode area has ``extent_type`` ``text`` and ``extent`` ``3831``.

Matching terms are ``attributes`` whose ``taxonomy_term`` belongs to the project taxonomy
(``services.matching.taxonomy``)."""

from __future__ import annotations

from pathlib import Path

from services.matching.hsds.datapackage import load_datapackage
from services.matching.hsds.json_reader import load_json, parse_json
from services.matching.hsds.model import ImportIssue, ParseResult, Service
from services.matching.hsds.writers import to_service_full, write_datapackage

# The package's API (readers, writers, what they return); the records are in ``model``.
__all__ = [
    "ImportIssue",
    "ParseResult",
    "Service",
    "load",
    "load_datapackage",
    "load_json",
    "parse_json",
    "to_service_full",
    "write_datapackage",
]


def load(path: Path) -> ParseResult:
    """A JSON file, or a directory holding a tabular datapackage."""
    return load_datapackage(path) if path.is_dir() else load_json(path)
