"""The caregiver consultant's workbench, through a real browser against the whole stack:
cases that need a person reach the consultant's queue in Dutch, a municipality without a
consultant falls to the regional fallback queue (and its referrer hears a person has it),
and the consultant records answers (a re-screen), hands off to the Wmo desk and closes."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx

from deploy.run import DEMO_CONSULTANT, DEMO_WMO_DESK
from deploy.stack import REPO, Stack
from tests.conftest import ARTIFACTS
from tests.e2e.conftest import case_of, make_signal, post, query, wait_for_status

CONSULTANT_EMAIL = DEMO_CONSULTANT[1]


async def keep(page: Any, name: str) -> None:
    """A screenshot of an intermediate page, kept with the tests' artifacts."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"casework_{name}.png"), full_page=True)


def sign_in_link(stack: Stack) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "services.casework.cli", "sign-in-link", "--email", CONSULTANT_EMAIL],
        env=stack.env_for("casework"),
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip().splitlines()[-1]


async def until_visible(page: Any, url: str, text: str, timeout: float = 45) -> None:
    """Reload ``url`` until ``text`` is on the page (events reach the workbench asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        await page.goto(url)
        if await page.get_by_text(text, exact=False).count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} did not appear on {url} in {timeout}s:\n{await page.inner_text('main')}")
        await asyncio.sleep(0.5)


async def voice_a_concern(page: Any, stack: Stack, about: str) -> None:
    """A resident's concern through the public form, confirmed through the local mailbox."""
    reporter = f"buur-{uuid.uuid4().hex[:8]}@example.nl"
    await page.goto(f"{stack.services['signals'].url}/aanmelden/zorg")
    await page.locator("#caregiver_name").fill(about)
    await page.locator("select[name=municipality_code]").select_option("GM0327")
    await page.get_by_label("Wat ziet u?").fill("Mijn buurvrouw zorgt dag en nacht voor haar man.")
    await page.get_by_label("Uitputting").check()
    await page.get_by_label("Uw e-mailadres").fill(reporter)
    await page.get_by_role("button", name="Zorg doorgeven").click()
    await page.get_by_role("heading", name="Kijk in uw e-mail").wait_for()
    deadline = time.monotonic() + 30
    while not (mails := [p for p in (stack.config.data_dir / "mailbox").glob("*.eml") if reporter in p.read_text()]):
        assert time.monotonic() < deadline, "no confirmation mail arrived"
        await asyncio.sleep(0.5)
    await page.goto(re.search(r"http://\S+/aanmelden/bevestigen/\S+", mails[0].read_text()).group(0))
    await page.get_by_role("button", name="Bevestigen").click()
    await page.get_by_role("heading", name="Dank u wel").wait_for()


async def test_crisis_and_concern_without_consent_reach_the_consultant_in_dutch(page, stack, client):
    crisis = make_signal(urgency="crisis", observations=["neglect", "exhaustion"])
    concern = {"caregiver": {"name": f"Mevrouw Overbelast {uuid.uuid4().hex[:6]}"}}
    crisis_id = (await post(client, crisis, **{"Idempotency-Key": str(uuid.uuid4())})).json()["id"]
    await voice_a_concern(page, stack, concern["caregiver"]["name"])
    base = stack.services["casework"].url

    await page.goto(sign_in_link(stack))
    assert page.url == base + "/", "the one-time link signs in and lands on the work queue"
    await until_visible(page, base + "/", concern["caregiver"]["name"])
    await until_visible(page, base + "/", crisis["caregiver"]["name"])
    own = page.locator("section", has=page.locator("#own"))
    row = own.locator("tr", has_text=crisis["caregiver"]["name"])
    assert "Crisis: binnen 4 uur oppakken" in await row.inner_text()
    assert "Veilig Thuis (0800-2000)" in await row.inner_text()
    row = own.locator("tr", has_text=concern["caregiver"]["name"])
    assert "Geen toestemming voor contact: zelf benaderen (bellen of langsgaan)" in await row.inner_text()
    assert await page.get_attribute("html", "lang") == "nl"

    # The referrer hears only that a person has it.
    for signal_id in (crisis_id,):
        body = await wait_for_status(
            client,
            signal_id,
            {"notified", "matched", "escalated", "screened"},
            until=lambda b: b.get("taken_up") is not None,
        )
        assert "een mantelzorgconsulent heeft dit opgepakt" in body["taken_up"]["summary"]

    # The case page of the crisis: sources, reasons in Dutch, the meldcode and Veilig Thuis.
    await own.locator("tr", has_text=crisis["caregiver"]["name"]).get_by_role("link").click()
    text = await page.inner_text("main")
    assert "Huisartsenpraktijk De Linde (demo) (huisarts)" in text
    assert "de verwijzer meldde een crisis" in text
    assert "Veilig Thuis om advies vragen: 0800-2000" in text
    await keep(page, "crisis_case")
    # English on request.
    await page.goto(page.url + "?lang=en")
    assert "the referrer reported a crisis" in await page.inner_text("main")
    await page.goto(base + "/?lang=nl")


async def test_a_municipality_without_a_consultant_falls_to_the_regional_queue(page, stack, client):
    signal = make_signal(caregiver__municipality_code="GM1680", caregiver__postcode="9461AA")
    signal_id = (await post(client, signal, **{"Idempotency-Key": str(uuid.uuid4())})).json()["id"]
    base = stack.services["casework"].url
    await page.goto(sign_in_link(stack))
    await until_visible(page, base + "/", signal["caregiver"]["name"])
    fallback = page.locator("section", has=page.locator("#fallback"))
    assert "Regionale vangnetwachtrij: Regionaal vangnet" in await fallback.inner_text()
    row = fallback.locator("tr", has_text=signal["caregiver"]["name"])
    assert "GM1680" in await row.inner_text() and "Geen passend aanbod gevonden" in await row.inner_text()
    own = page.locator("section", has=page.locator("#own"))
    assert signal["caregiver"]["name"] not in await own.inner_text()

    body = await wait_for_status(client, signal_id, {"matched", "notified"}, until=lambda b: b.get("taken_up"))
    assert body["taken_up"]["summary"].startswith("een mantelzorgconsulent heeft dit opgepakt")
    assert "GM1680" not in str(body["taken_up"]) and "vangnet" not in str(body), "no queue or region disclosed"


async def test_the_consultant_records_answers_hands_off_and_closes(page, stack, client):
    concern = make_signal(
        source={"kind": "gp"}, instrument=None, consent={"contact_caregiver": False, "share_with_providers": True}
    )
    signal_id = (await post(client, concern, **{"Idempotency-Key": str(uuid.uuid4())})).json()["id"]
    base = stack.services["casework"].url
    await page.goto(sign_in_link(stack))
    await until_visible(page, base + "/", concern["caregiver"]["name"])
    await page.get_by_role("link", name=concern["caregiver"]["name"]).click()
    case_url = page.url.split("?")[0]
    assert "volgende stap: neem de EDIZ-plus af om de belasting te meten" in await page.inner_text("main")

    # A contact attempt, by keyboard only: the form is usable without a mouse.
    await page.select_option("#kind", "visit")
    await page.select_option("#outcome", "reached")
    await page.fill("#contact-note", "Keukentafel, dochter was erbij.")
    await page.focus("#contact-note")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**gedaan=contact")
    assert "Contactpoging vastgelegd." in await page.inner_text("main")

    # The conversation's EDIZ-plus answers: every statement applies.
    for item in range(1, 16):
        await page.check(f"input[name=item{item}][value='1']")
    await page.get_by_role("button", name="Antwoorden vastleggen").click()
    await page.wait_for_url("**gedaan=antwoorden")
    assert "Antwoorden vastgelegd; de zaak wordt opnieuw gescreend." in await page.inner_text("main")
    await until_visible(page, case_url, "EDIZ-plus-score 15 van 15")
    assert "Mantelzorgconsulent Demo mantelzorgconsulent Leusden" in await page.inner_text("main")
    await keep(page, "answers_rescreened")

    # Hand-off to the Wmo desk: a referral like any other, with an e-mail to the desk.
    await page.fill("#handoff-note", "Graag keukentafelgesprek; mevrouw is akkoord.")
    await page.get_by_role("button", name="Overdragen aan het Wmo-loket").click()
    await page.wait_for_url("**gedaan=wmo")
    assert "Overgedragen aan het Wmo-loket voor een keukentafelgesprek." in await page.inner_text("main")
    case_id = await case_of(stack, signal_id)
    deadline = time.monotonic() + 30
    while not await query(
        stack,
        "notify",
        "SELECT status FROM notifications WHERE case_id = $1 AND template = 'wmo_handoff' AND address = $2",
        case_id,
        DEMO_WMO_DESK[2],
    ):
        assert time.monotonic() < deadline, "no hand-off message to the Wmo desk"
        await asyncio.sleep(0.5)
    [(referral_status,)] = await query(
        stack, "notify", "SELECT status FROM referrals WHERE case_id = $1 AND service_id = 'wmo-desk-gm0327'", case_id
    )
    assert referral_status == "requested"

    # Closing after a death: no more re-screens, and the referrer is told (without the reason).
    await page.check("input[name=reason][value=deceased]")
    await page.get_by_role("button", name="Zaak afsluiten").click()
    await page.wait_for_url("**gedaan=afgesloten")
    text = await page.inner_text("main")
    assert "Zaak afgesloten." in text and "afgesloten: Naaste overleden" in text
    assert "overgedragen aan het Wmo-loket: Wmo-loket Leusden (demo)" in text, "the history shows the hand-off"
    assert "contactpoging: langsgegaan, bereikt" in text
    await keep(page, "case_closed")
    body = await wait_for_status(client, signal_id, {"matched", "notified"}, until=lambda b: b.get("closed"))
    assert "overleden" not in str(body) and "deceased" not in str(body)
    deadline = time.monotonic() + 30
    while not (
        await query(
            stack,
            "screening",
            "SELECT 1 FROM cases WHERE id = $1 AND closed_at IS NOT NULL AND rescreen_due_at IS NULL",
            case_id,
        )
    ):
        assert time.monotonic() < deadline, "screening did not stop the re-screens"
        await asyncio.sleep(0.5)
    await page.goto(base + "/")
    assert concern["caregiver"]["name"] not in await page.inner_text("main"), "a closed case leaves the queue"


async def test_actions_need_the_session_and_its_csrf_token(stack):
    base = stack.services["casework"].url
    link = sign_in_link(stack).removeprefix(base)
    async with httpx.AsyncClient(base_url=base) as browser_a, httpx.AsyncClient(base_url=base) as browser_b:
        response = await browser_a.get("/")
        assert response.status_code == 401 and "Niet aangemeld" in response.text
        assert (await browser_a.get("/aanmelden", params={"token": "not-a-token"})).status_code == 403
        response = await browser_a.get(link)
        assert response.status_code == 303 and "sts_consultant" in response.cookies
        assert (await browser_a.get("/")).status_code == 200
        response = await browser_a.post(f"/zaken/{uuid.uuid4()}/notitie", data={"note": "x", "csrf": "wrong"})
        assert response.status_code == 403 and "Formulier verlopen" in response.text
        response = await browser_a.post(f"/zaken/{uuid.uuid4()}/onbekend", data={"csrf": "wrong"})
        assert response.status_code == 404, "only the case page's own forms are actions"
        assert (await browser_b.get(link)).status_code == 403, "a sign-in link works once"
