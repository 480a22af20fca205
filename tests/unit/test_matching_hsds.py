"""Reading and writing HSDS 3.x: the specification's examples, bad records, the demo map."""

import copy
import csv
import json
from collections import Counter
from datetime import date, time
from pathlib import Path

import pytest

from deploy.stack import REPO
from services.matching import hsds
from services.matching.domain import Candidate, MatchRequest, match
from services.matching.taxonomy import TAXONOMY, TERMS
from shared.contracts import Need

FIXTURES = REPO / "tests" / "fixtures" / "hsds"
DEMO = REPO / "services" / "matching" / "demo" / "social_map.json"
TODAY = date(2026, 11, 22)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def as_candidate(service: hsds.Service) -> Candidate:
    """The service as matching would load it from the database."""
    location = next((sal.location for sal in service.locations if sal.location.latitude is not None), None)
    return Candidate(
        service_id=service.id,
        service_name=service.name,
        organization_name=service.organization.name,
        status=service.status,
        terms=service.term_codes,
        municipality_codes=frozenset(a.municipality_code for a in service.areas),
        pc4s=frozenset(a.pc4 for a in service.areas if a.pc4),
        min_age=service.minimum_age,
        max_age=service.maximum_age,
        languages=frozenset(lang.code for lang in service.languages),
        latitude=location.latitude if location else None,
        longitude=location.longitude if location else None,
        capacity_available=sum(c.available for c in service.capacities) if service.capacities else None,
        assured_date=service.assured_date,
        contact_email=service.email,
    )


# --- the specification's examples ------------------------------------------------------


def test_spec_service_full_is_read_and_its_placeholders_reported():
    result = hsds.load(FIXTURES / "spec_service_full.json")
    [service] = result.services
    assert (service.id, service.name, service.status) == (
        "ac148810-d857-441c-9679-408f346de14b",
        "Community Counselling",
        "active",
    )
    assert (service.minimum_age, service.maximum_age, service.assured_date) == (12, 100, date(2005, 1, 1))
    assert service.organization.name == "Example Organization Inc."
    assert [lang.code for lang in service.languages] == ["ur"]
    assert service.schedules[0].opens_at == time(10) and service.schedules[0].freq == "WEEKLY"
    assert service.contacts[0].email == "email@example.com"
    assert service.attributes[0].term.code == "code" and service.term_codes == frozenset()
    assert service.locations[0].location.latitude is None  # 100 is no latitude
    assert service.raw["interpretation_services"].startswith("Interpretation services")
    record = "ac148810-d857-441c-9679-408f346de14b"
    assert {(i.file, i.record, i.field) for i in result.issues} == {
        ("spec_service_full.json", record, "service_at_locations[0].location.latitude"),
        ("spec_service_full.json", record, "service_at_locations[0].service_areas[0].uri"),
        ("spec_service_full.json", record, "service_areas[0].uri"),
        ("spec_service_full.json", record, "capacities[0].available"),
    }
    assert "12 exceeds maximum 10" in next(i.message for i in result.issues if i.field.startswith("capacities"))


def test_spec_service_full_round_trips():
    first = hsds.load(FIXTURES / "spec_service_full.json").services
    exported = [hsds.to_service_full(s) for s in first]
    again = hsds.parse_json(json.loads(json.dumps(exported)), "exported.json")
    assert again.issues == []
    assert again.services == first
    original = fixture("spec_service_full.json")
    for key in (
        "id",
        "name",
        "description",
        "url",
        "email",
        "status",
        "application_process",
        "fees_description",
        "eligibility_description",
        "minimum_age",
        "maximum_age",
        "assured_date",
    ):
        assert exported[0][key] == original[key]
    assert exported[0]["attributes"][0]["taxonomy_term"]["id"] == original["attributes"][0]["taxonomy_term"]["id"]


def test_spec_datapackage_is_read_and_broken_links_reported_by_file_and_row():
    result = hsds.load(FIXTURES / "spec_datapackage")
    [service] = result.services
    assert service.name == "Community Counselling" and service.organization.name == "Example Organization Inc."
    assert service.minimum_age == 12 and [lang.code for lang in service.languages] == ["ur"]
    assert service.capacities == ()
    assert {(i.file, i.record, i.field) for i in result.issues} == {
        ("locations.csv", "row 2", "organization_id"),
        ("locations.csv", "row 2", "latitude"),
        ("service_areas.csv", "row 2", "uri"),
        ("service_capacity.csv", "row 2", "unit_id"),
    }


def test_datapackage_round_trip(tmp_path: Path):
    services = hsds.load(DEMO).services
    hsds.write_datapackage(services, tmp_path / "package")
    again = hsds.load(tmp_path / "package")
    assert again.issues == []
    assert again.services == services
    package = json.loads((tmp_path / "package" / "datapackage.json").read_text())
    assert {r["name"] for r in package["resources"]} >= {"organization", "service", "service_capacity", "attribute"}


def test_organization_full_services_carry_their_organization():
    result = hsds.load(DEMO)
    by_org = Counter(s.organization.name for s in result.services)
    assert by_org["Mantelzorgpunt Amersfoort"] == 6
    assert all(s.organization.raw.get("services") is None for s in result.services)


def test_an_api_page_is_read_like_a_list():
    page = {"total_items": 1, "contents": [fixture("service_full_no_taxonomy.json")]}
    assert len(hsds.parse_json(page).services) == 1


# --- bad records ----------------------------------------------------------------------


def test_bad_records_are_reported_and_the_rest_is_read():
    good = fixture("service_full_no_taxonomy.json")

    def variant(service_id: str, **changes) -> dict:
        record = copy.deepcopy(good)
        record["id"] = service_id
        record.update(changes)
        return record

    nameless = variant("nameless")
    del nameless["name"]
    records = [
        nameless,
        variant("closed-for-good", status="closed"),
        variant("ages", minimum_age=40, maximum_age=30),
        variant("bad-email", email="not-an-address", assured_date="yesterday"),
        variant(
            "bad-term",
            attributes=[
                {"id": "a1", "taxonomy_term": {"id": "t1", "name": "Onbekend", "code": "massage", "taxonomy": TAXONOMY}}
            ],
        ),
        variant("no-org", organization="Stichting X"),
        "not an object",
        good,
        variant(good["id"]),
    ]
    result = hsds.parse_json(records, "bad.json")
    assert sorted(s.id for s in result.services) == sorted(["bad-email", "bad-term", good["id"]])
    assert [(i.file, i.record, i.field) for i in result.issues] == [
        ("bad.json", "nameless", "name"),
        ("bad.json", "closed-for-good", "status"),
        ("bad.json", "ages", "maximum_age"),
        ("bad.json", "bad-email", "assured_date"),
        ("bad.json", "bad-email", "email"),
        ("bad.json", "bad-term", "attributes[0].taxonomy_term.code"),
        ("bad.json", "no-org", "organization"),
        ("bad.json", "#6", ""),
        ("bad.json", good["id"], "id"),
    ]
    messages = {i.record: i.message for i in result.issues}
    assert messages["nameless"] == "missing; service left out"
    assert "'closed' is not one of active" in messages["closed-for-good"]
    assert messages["ages"] == "30 is below minimum_age 40; service left out"
    assert messages[good["id"]] == "duplicate service id; later record left out"
    kept = next(s for s in result.services if s.id == "bad-email")
    assert kept.email is None and kept.assured_date is None and kept.name == good["name"]


def test_bad_csv_rows_are_reported_by_file_and_row(tmp_path: Path):
    services = hsds.load(DEMO).services
    package = tmp_path / "package"
    hsds.write_datapackage(services, package)

    def corrupt(file: str, row_number: int, column: str, value: str) -> str:
        path = package / file
        rows = list(csv.DictReader(path.open(encoding="utf-8")))
        rows[row_number - 2][column] = value
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return rows[row_number - 2]["id"]

    broken_service = corrupt("services.csv", 3, "status", "open")
    corrupt("locations.csv", 2, "latitude", "noord")
    corrupt("service_capacity.csv", 4, "available", "-2")
    corrupt("languages.csv", 5, "service_id", "no-such-service")
    result = hsds.load(package)
    assert {(i.file, i.record, i.field) for i in result.issues} == {
        ("languages.csv", "row 5", "service_id"),
        ("services.csv", "row 3", "status"),
        ("locations.csv", "row 2", "latitude"),
        ("service_capacity.csv", "row 4", "available"),
    }
    assert len(result.services) == len(services) - 1
    assert broken_service not in {s.id for s in result.services}


def test_unreadable_input_is_one_issue(tmp_path: Path):
    (tmp_path / "broken.json").write_text("{not json")
    result = hsds.load(tmp_path / "broken.json")
    assert result.services == [] and result.issues[0].file == "broken.json"
    (tmp_path / "empty").mkdir()
    assert hsds.load(tmp_path / "empty").issues[0].file == "datapackage.json"


# --- the demo social map --------------------------------------------------------------


def test_demo_map_imports_with_zero_issues_and_covers_the_taxonomy():
    result = hsds.load(DEMO)
    assert result.issues == []
    services = result.services
    assert len(services) >= 30
    municipalities = Counter(m for s in services for m in {a.municipality_code for a in s.areas})
    assert {"GM0327", "GM0307", "GM0313"} <= set(municipalities)
    assert set(TERMS) <= {code for s in services for code in s.term_codes}
    assert all(s.term_codes for s in services)
    assert any(c.available == 1 for s in services for c in s.capacities)
    assert {"nl", "en", "tr", "ar"} <= {lang.code for s in services for lang in s.languages}
    assert any(s.minimum_age is not None for s in services) and any(s.schedules for s in services)
    emails = [c.email for s in services for c in s.contacts] + [s.email for s in services]
    assert all(e.endswith(".example.nl") for e in emails)
    for s in services:
        for sal in s.locations:
            if sal.location.location_type == "physical":
                assert 52.0 < sal.location.latitude < 52.3 and 5.3 < sal.location.longitude < 5.55


@pytest.mark.parametrize(
    ("needs", "expected"),
    [
        ([Need.RESPITE_CARE], {"Logeeropvang bij dementie", "Vrijwillige thuisondersteuning"}),
        (
            [Need.INFORMATION_ADVICE, Need.EMOTIONAL_SUPPORT],
            {"Mantelzorgconsulent Leusden", "Alzheimer Café Amersfoort"},
        ),
    ],
)
def test_demo_map_answers_the_demo_caregiver(needs, expected):
    """The demo signal: a 65-year-old in Leusden (3831) caring for a partner with dementia."""
    candidates = [as_candidate(s) for s in hsds.load(DEMO).services]
    request = MatchRequest(
        needs=needs,
        municipality_code="GM0327",
        pc4="3831",
        caregiver_age=65,
        preferred_language="nl",
        target_groups=frozenset({"dementia"}),
    )
    outcome = match(request, candidates, TODAY)
    assert expected <= {p.service_name for p in outcome.proposals}
    excluded = dict(outcome.excluded)
    names = {s.id: s.name for s in hsds.load(DEMO).services}
    assert {names[s]: r for s, r in excluded.items()}["Jonge Mantelzorgers Leusden"] == (
        "not eligible: age 65 outside 8–24"
    )


# --- taxonomy attributes make a service matchable -------------------------------------


def test_service_without_taxonomy_parses_and_becomes_matchable_with_an_attribute():
    record = fixture("service_full_no_taxonomy.json")
    request = MatchRequest(needs=[Need.PEER_CONTACT], municipality_code="GM0327", pc4="3832", caregiver_age=50)

    result = hsds.parse_json(record)
    assert result.issues == [] and result.services[0].term_codes == frozenset()
    outcome = match(request, [as_candidate(result.services[0])], TODAY)
    assert outcome.proposals == [] and outcome.no_match_reason == "needs not covered"

    term = TERMS["caregiver_cafe"]
    record["attributes"] = [
        {
            "id": "8f0b8d1e-0d8b-4a57-9d1e-3c1f5d7f1a01",
            "link_entity": "service",
            "link_id": record["id"],
            "taxonomy_term": {"id": term.id, "code": term.code, "name": term.name_nl, "taxonomy": TAXONOMY},
        }
    ]
    result = hsds.parse_json(record)
    assert result.issues == [] and result.services[0].term_codes == {"caregiver_cafe"}
    [proposal] = match(request, [as_candidate(result.services[0])], TODAY).proposals
    assert proposal.service_name == "Mantelzorgsalon Hamersveld" and proposal.category == "caregiver_cafe"
    assert proposal.explanation.covers_needs == [Need.PEER_CONTACT]
