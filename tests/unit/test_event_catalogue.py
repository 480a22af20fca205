"""The event catalogue (docs/events.md): the checked-in page is what ``deploy.catalogue`` makes
from the contracts and the services' subscriptions now, and what it makes follows them."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import catalogue
from shared.cli import SERVICES
from shared.contracts import PAYLOADS, EventType, Topics

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def declared() -> list[catalogue.Declared]:
    return [catalogue.declared(service) for service in SERVICES]


def test_the_checked_in_catalogue_is_what_the_generator_makes_now(declared):
    assert (REPO / "docs" / "events.md").read_text() == catalogue.render(declared), (
        "docs/events.md is stale: run python -m deploy.catalogue --output docs/events.md"
    )


def test_every_event_type_has_its_topic_producer_and_consumers(declared):
    found = {e.name: e for e in catalogue.events(declared)}
    assert set(found) == {str(t) for t in PAYLOADS}
    received = found[EventType.SIGNAL_RECEIVED]
    assert (received.topic, received.producer, received.consumers) == (Topics.SIGNALS, "signals", ("screening",))
    erased = found[EventType.CAREGIVER_ERASED]
    assert set(erased.consumers) == {"screening", "matching", "notify", "municipalities", "casework"}
    assert found[EventType.CASE_CLOSED].producer == "casework"


def test_the_page_follows_the_subscriptions_and_the_contracts(declared):
    # Casework stops consuming follow-up answers: the page must say so.
    changed = [
        dataclasses.replace(
            d,
            consumes={
                t: tuple(e for e in types if e != EventType.FOLLOW_UP_RECORDED) for t, types in d.consumes.items()
            },
        )
        if d.service == "casework"
        else d
        for d in declared
    ]
    section = catalogue.render(changed).split("### followup.recorded")[1].split("###")[0]
    assert "consumers: signals, screening, municipalities\n" in section
    page = catalogue.render(declared)
    # Every field of a payload is listed with its type and a description (none left blank).
    assert "| `hours_per_week` | float \\| None | no, `null` | hours of care a week |" in page
    assert "|  |\n" not in page


def test_an_event_type_nobody_consumes_has_no_topic_and_is_refused(declared):
    without = [
        dataclasses.replace(
            d, consumes={t: tuple(e for e in types if e != EventType.RESCREEN_DUE) for t, types in d.consumes.items()}
        )
        for d in declared
    ]
    with pytest.raises(SystemExit, match=r"rescreen\.due"):
        catalogue.events(without)


def test_the_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "deploy.catalogue", "--help"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "--check" in result.stdout
    out = tmp_path / "events.md"
    assert catalogue.main(["--output", str(out)]) == 0
    assert out.read_text() == (REPO / "docs" / "events.md").read_text()
    assert catalogue.main(["--check"]) == 0
