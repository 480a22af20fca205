"""The front doors, through a real browser (Playwright driving Debian's Chromium) against
the session stack: a caregiver refers themselves and confirms through the link in the local
mailbox, then follows their own status page; a professional posts a signal through the
form and watches its status; anyone searches the social map. Screenshots are kept in
test-artifacts/."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.run import DEMO_SOCIAL_MAP, sign_in_link
from deploy.stack import REPO, Stack
from tests.e2e.conftest import GP_KEY, make_signal, post, query

pytestmark = pytest.mark.e2e


async def _until(page: Any, selector: str, text: str, timeout: float = 60) -> None:
    """Reload (as a reader without automatic refresh would) until ``selector`` shows ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = page.locator(selector)
        if await found.count() and text in await found.first.inner_text():
            return
        await asyncio.sleep(1)
        await page.reload()
    raise AssertionError(f"{selector} did not show {text!r} within {timeout}s: {await page.content()}")


def import_social_map(stack: Stack, path: Path, **env_overrides: str) -> subprocess.CompletedProcess[str]:
    """The README's import command, as next to `make run`: no database setting, only the
    stack file the running stack wrote."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    env["STS_STACK_FILE"] = str(stack.stack_file)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "services.matching.cli", "import", str(path)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def free_places(stack: Stack, tmp_path: Path) -> Iterator[None]:
    """Every service on the demo map reports its places free again, as providers do: the
    demo map lists only a few, and earlier tests on the session stack hold them."""
    organisations = json.loads(DEMO_SOCIAL_MAP.read_text())
    for service in (s for o in organisations for s in o["services"]):
        for capacity in service.get("capacities", []):
            capacity.update(available=capacity["maximum"], updated=datetime.now(UTC).isoformat())
    refreshed = tmp_path / "social_map.json"
    refreshed.write_text(json.dumps(organisations))
    assert import_social_map(stack, refreshed).returncode == 0
    yield
    assert import_social_map(stack, DEMO_SOCIAL_MAP).returncode == 0


async def test_a_caregiver_refers_themselves_confirms_by_mail_and_follows_their_own_status_page(
    page: Any,
    stack: Stack,
    free_places: None,
) -> None:
    email = f"mz-{uuid.uuid4().hex[:8]}@example.nl"
    signals = stack.services["signals"].url
    await page.goto(f"{signals}/aanmelden")
    await page.get_by_label("Uw naam").fill("Els Zelfmelder")
    await page.get_by_label("Uw e-mailadres").fill(email)
    await page.get_by_label("Geboortejaar").fill("1958")
    await page.get_by_label("Postcode").fill("3832 AB")
    await page.get_by_label("Uw gemeente").select_option("GM0327")
    await page.get_by_label("Uren zorg per week").fill("35")
    await page.locator("select[name=task_supervision_effort]").select_option("very_heavy")
    await page.locator("select[name=task_supervision_help]").select_option("no")
    await page.locator("select[name=task_household_effort]").select_option("heavy")
    for item in range(1, 16):  # the EDIZ-plus, answered "yes" throughout: heavily burdened
        await page.locator(f"input[name=ediz_{item}][value='1']").check()
    await page.get_by_label("Wat zou u het meest helpen?").fill("Af en toe een dag voor mezelf.")
    await page.get_by_label("Aanbieders die wij voorstellen mogen mijn gegevens krijgen", exact=False).check()
    [(submitted,)] = await query(stack, "signals", "SELECT now()")
    await page.get_by_role("button", name="Aanmelden").click()
    await page.get_by_role("heading", name="Kijk in uw e-mail").wait_for()
    [(count,)] = await query(stack, "signals", "SELECT count(*) FROM signals WHERE received_at > $1", submitted)
    assert count == 0, "nothing enters the pipeline before the address confirms"

    # The confirmation mail, read in the local mailbox's web page like a person would.
    deadline = time.monotonic() + 30
    while True:
        await page.goto(stack.mailbox.url + "/")
        row = page.locator("tr", has_text=email)
        if await row.count():
            break
        assert time.monotonic() < deadline, "no confirmation mail arrived"
        await asyncio.sleep(0.5)
    await row.get_by_role("link").first.click()
    await page.locator("a[href*='/aanmelden/bevestigen/']").first.click()
    await page.get_by_role("button", name="Bevestigen").click()
    await page.wait_for_url(re.compile(r"/mijn/[0-9a-f-]+\?exp=\d+&sig="))
    await page.get_by_role("heading", name="Uw aanmelding").wait_for()
    await _until(page, "#matches", "Mantelzorgconsulent")
    matches = await page.locator("#matches").inner_text()
    assert re.search(r"Logeeropvang|Dagopvang|Vrijwillige thuisondersteuning", matches), (
        "the heavy supervision task asks for respite care"
    )
    assert "+31" in matches and "Leusden" in matches, "each proposed service comes with its contact details"
    assert await page.get_by_role("button", name=re.compile("Wis mijn aanmelding")).count() == 1

    signal_id = uuid.UUID(re.search(r"/mijn/([0-9a-f-]+)", page.url).group(1))
    [(source, share, status_url, body)] = await query(
        stack,
        "signals",
        "SELECT source_kind, body->'consent'->>'share_with_providers', "
        "(SELECT count(*) FROM self_referrals WHERE body IS NULL AND signal_id = s.id), body::text FROM signals s "
        "WHERE id = $1",
        signal_id,
    )
    assert (source, share, status_url) == ("self", "true", 1), "confirmed: the submission's copy is gone"
    assert email not in body, "stored sealed: the address only as ciphertext"


async def test_a_resident_s_concern_never_contacts_the_person(page: Any, stack: Stack) -> None:
    reporter = f"buur-{uuid.uuid4().hex[:8]}@example.nl"
    await page.goto(f"{stack.services['signals'].url}/aanmelden/zorg")
    await page.locator("#caregiver_name").fill("Mevrouw Overbelast")
    await page.get_by_label("Wat ziet u?").fill(
        "Mijn buurvrouw zorgt dag en nacht voor haar man en ziet er uitgeput uit."
    )
    await page.get_by_label("Uitputting").check()
    await page.get_by_label("Uw e-mailadres").fill(reporter)
    await page.get_by_role("button", name="Zorg doorgeven").click()
    await page.get_by_role("heading", name="Kijk in uw e-mail").wait_for()
    deadline = time.monotonic() + 30
    while not (mails := [p for p in (stack.config.data_dir / "mailbox").glob("*.eml") if reporter in p.read_text()]):
        assert time.monotonic() < deadline, "no confirmation mail arrived"
        await asyncio.sleep(0.5)
    link = re.search(r"http://\S+/aanmelden/bevestigen/\S+", mails[0].read_text()).group(0)
    await page.goto(link)
    await page.get_by_role("button", name="Bevestigen").click()
    await page.get_by_role("heading", name="Dank u wel").wait_for()
    [signal] = await query(
        stack,
        "signals",
        "SELECT id, source_kind, body FROM signals WHERE source_kind = 'resident' ORDER BY received_at DESC LIMIT 1",
    )
    body = json.loads(signal["body"])  # a plain connection returns jsonb as text
    assert body["consent"]["contact_caregiver"] is False
    assert "Mevrouw Overbelast" not in signal["body"] and reporter not in signal["body"], "stored sealed"


async def test_a_professional_posts_a_signal_through_the_form_and_watches_its_status(
    page: Any,
    stack: Stack,
    free_places: None,
) -> None:
    name = f"Mantelzorger {uuid.uuid4().hex[:8]}"
    await page.goto(sign_in_link(stack))  # the one-time link `make run` prints
    await page.get_by_role("heading", name="Een mantelzorger melden").wait_for()
    cookie = next(c for c in await page.context.cookies() if c["name"] == "sts_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "demo-gp-key" not in await page.content()
    await page.get_by_label("Naam", exact=True).fill(name)
    await page.get_by_label("E-mail", exact=True).fill(f"{uuid.uuid4().hex[:8]}@example.nl")
    await page.get_by_label("Postcode").fill("3831 AB")
    await page.get_by_label("Gemeente").select_option("GM0327")
    await page.get_by_label("Uren zorg per week").fill("30")
    await page.get_by_label("Slaapproblemen").check()
    await page.get_by_label("Uitputting").check()
    await page.get_by_label("De eigen vraag van de mantelzorger", exact=False).fill("Iemand die meedenkt.")
    await page.get_by_label("De mantelzorger wil benaderd worden").check()
    await page.get_by_label("Toestemming gevraagd door").fill("dr. Jansen, huisarts")
    await page.get_by_label("Toestemming gevraagd op").fill("2026-11-20")
    await page.get_by_role("button", name="Signaal versturen").click()
    await page.wait_for_url(re.compile(r"/melden/signalen/[0-9a-f-]+"))
    await _until(page, "#status", "berichten verstuurd")
    assert "Mantelzorgconsulent" in await page.locator("#matches").inner_text()
    signal_id = uuid.UUID(re.search(r"/melden/signalen/([0-9a-f-]+)", page.url).group(1))
    [signal] = await query(stack, "signals", "SELECT source_kind, body FROM signals WHERE id = $1", signal_id)
    body = json.loads(signal["body"])  # a plain connection returns jsonb as text
    assert signal["source_kind"] == "gp"
    assert body["consent"]["obtained_by"] == "dr. Jansen, huisarts"
    assert name not in signal["body"] and "Iemand die meedenkt." not in signal["body"], (
        "the caregiver and their own question are stored sealed"
    )

    # A sign-in link works once.
    link = sign_in_link(stack)
    await page.context.clear_cookies()
    await page.goto(link)
    await page.goto(link)
    assert "werkt niet" in await page.locator("h1").inner_text()


async def test_a_professional_signs_in_to_the_form_with_the_organisation_s_key(page: Any, stack: Stack) -> None:
    await page.goto(f"{stack.services['signals'].url}/melden/inloggen")
    await page.get_by_label("Sleutel van uw organisatie").fill("not-a-key-anyone-was-given")
    await page.get_by_role("button", name="Inloggen").click()
    await page.get_by_role("alert").filter(has_text="Deze sleutel kennen wij niet").wait_for()
    await page.get_by_label("Sleutel van uw organisatie").fill(GP_KEY)
    await page.get_by_role("button", name="Inloggen").click()
    await page.get_by_role("heading", name="Een mantelzorger melden").wait_for()
    assert any(c["name"] == "sts_session" for c in await page.context.cookies())


async def test_the_api_binds_the_source_kind_to_the_organisation(client: httpx.AsyncClient) -> None:
    response = await post(client, make_signal(source__kind="resident"))
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == ["source.kind"]
    assert (await post(client, make_signal(source__kind="practice_nurse"))).status_code == 202


async def test_anyone_searches_the_social_map_for_respite_care_in_leusden(page: Any, stack: Stack) -> None:
    await page.goto(stack.social_map_url)
    await page.get_by_label("Gemeente of postcode").fill("Leusden")
    await page.get_by_label("Wat zoekt u?").fill("respijt")
    await page.get_by_role("button", name="Zoeken").click()
    results = page.locator("#results")
    await results.wait_for()
    titles = await page.locator("article h3").all_inner_texts()
    assert {"Logeeropvang bij dementie", "Dagopvang Het Hamersveld", "Vrijwillige thuisondersteuning"} <= set(titles)
    assert "Mantelzorgcafé Leusden" not in titles and "Dagopvang De Eemhof" not in titles, "Amersfoort's stays out"
    card = page.locator("article", has_text="Dagopvang Het Hamersveld")
    text = await card.inner_text()
    for label in ("Adres", "Openingstijden", "Contact"):
        assert label in text
    assert re.search(r"\+31|@", text)
    await page.get_by_role("link", name="English").click()
    assert "results in Leusden" in await results.inner_text()


async def test_a_postcode_finds_its_municipality_and_an_unknown_place_is_answered_404(page: Any, stack: Stack) -> None:
    response = await page.goto(f"{stack.social_map_url}?plaats=3831&zoek=&lang=en")
    assert response.status == 200
    await page.get_by_role("heading", name="results in Leusden (postcode 3831)").wait_for()
    assert await page.locator("article.card").count() > 0, "an empty search shows everything in the area"
    response = await page.goto(f"{stack.social_map_url}?plaats=Nergenshuizen")
    assert response.status == 404
    assert "Deze gemeente of postcode kennen wij niet" in await page.get_by_role("alert").inner_text()
    assert await page.locator("article.card").count() == 0


async def test_the_readme_import_command_works_next_to_the_running_stack(stack: Stack) -> None:
    result = import_social_map(stack, DEMO_SOCIAL_MAP.relative_to(REPO))
    assert result.returncode == 0, result.stderr
    assert "36 services: 0 created, 0 updated, 36 unchanged" in result.stdout

    failed = import_social_map(
        stack,
        DEMO_SOCIAL_MAP,
        STS_STACK_FILE=str(stack.stack_file.with_name("no-such-stack.json")),
        MATCHING_DATABASE_URL="postgresql://postgres@127.0.0.1:1/matching",
    )
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert failed.stderr.count("\n") == 1 and "cannot reach the database" in failed.stderr
