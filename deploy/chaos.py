"""The chaos harness: faults while signals flow, then proof that nothing was lost or sent twice.

    make chaos                                   # every scenario, on a fresh embedded stack
    make chaos ARGS="--short --seed 7"           # the handful `make test` runs, short holds
    make chaos ARGS="--scenario kill-notify-x4 --scenario postgres-down --rate 3"

It starts its own embedded stack (free ports, a data directory of its own, kept afterwards
for inspection) with the supervisor of ``make run`` running, and keeps a steady stream of
signals going through the ingest API: unique caregivers, some signalled a second time by the
second demo organisation, a few erased mid-flight by the privacy officer. Every POST carries
an Idempotency-Key and is retried with the same key on connection errors and 5xx (honouring
Retry-After) until it is accepted or ``--accept-timeout`` runs out. Meanwhile it applies, one at a time, the faults
of a schedule drawn from ``--seed`` (printed first, so a run can be repeated):

    kill-<service>    SIGKILL of the service; the supervisor restarts it
    kill-notify-x4    SIGKILL of notify four times, each while it has e-mail to deliver
    kill-replicas     with --replicas 2 or more: SIGKILL of one instance of each scaled-out
                      service (screening, matching, notify, municipalities), held down
                      while the other instances take over their partitions and work
    stop-<service>    SIGSTOP for longer than the consumer session timeout, then SIGCONT
    postgres-down     PostgreSQL stopped immediately (pg_ctl stop -m immediate), held 5-30 s
    broker-kill       SIGKILL of the broker (in memory): the supervisor restarts it, the
                      services re-create the topics and replay their outboxes
    mailbox-down      the SMTP server killed and held down for a minute

Then it heals everything, stops posting, waits until nothing is pending and counts (the
exact definitions are printed with the summary):

    lost              accepted signals, not erased, without a caregiver/referrer outcome
    duplicate e-mails distinct Message-IDs beyond one per (recipient, template, case)
    sends after erasure
    capacity          available + held + confirmed = capacity for every counted service

Exit code 0 only when all four are 0, every signal was accepted and every SMTP receipt could
be traced to a notification."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from deploy.mailbox import journal
from deploy.run import DEMO_PRIVACY_OFFICER_KEY, seed_demo
from deploy.stack import REPLICATED, SERVICES, Stack, StackConfig, instance_name
from shared.commandline import new_parser, progress

DEMO_SIGNAL = json.loads((Path(__file__).parent / "demo" / "signal.json").read_text())
GP_KEY, WIJKTEAM_KEY = "demo-gp-key", "demo-wijkteam-key"  # seeded by deploy.run.seed_demo
# The consumers use aiokafka's default session timeout (10 s; the services do not set it):
# a member silent for longer is dropped from its group and its partitions move.
SESSION_TIMEOUT_SECONDS = 10.0
# Notify re-checks a message right before it sends it, so no send STARTS after an erasure
# committed; one that started just before cannot be recalled and ends within notify's SMTP
# timeout (NOTIFY_SMTP_TIMEOUT, 5 s). A receipt later than that is a send after the erasure.
# (Seen: 1.2 s on a loaded machine.)
ERASURE_GRACE_SECONDS = 5.0

DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

SCENARIOS = (
    *(f"kill-{name}" for name in SERVICES),
    "kill-notify-x4",
    "kill-replicas",
    *(f"stop-{name}" for name in SERVICES),
    "postgres-down",
    "broker-kill",
    "mailbox-down",
)
# The short run kills notify four times while it delivers (issue 9's check) rather than once,
# and with --replicas one instance of each scaled-out service (issue 16's check).
SHORT_SCENARIOS = (
    "kill-notify-x4",
    "kill-screening",
    "stop-matching",
    "postgres-down",
    "broker-kill",
    "mailbox-down",
    "kill-replicas",
)

DEFINITIONS = f"""\
lost: an accepted (202) signal whose caregiver was not erased and whose status view (GET
  /v1/signals/{{id}}) is not `notified` with a caregiver or referrer notification `delivered`.
  (An escalated case reaches `notified` the same way: the consultant's referral and the
  referrer's update.) A notification notify gave up on (`failed`) is not an outcome.
duplicate e-mails: over the mailbox journal (every SMTP receipt), per (envelope recipient,
  template, case) the number of distinct Message-IDs beyond one; a Message-ID
  <notification-id@...> is mapped to notify's notifications table for template and case.
  Re-deliveries of the same Message-ID are reported apart, as information: receivers dedupe them.
  "of which across signals of one case": groups whose messages belong to different signals
  (the second organisation's signal about the same caregiver made notify plan another one).
sends after erasure: SMTP receipts of a notification for a signal of an erased caregiver,
  received more than {ERASURE_GRACE_SECONDS:.0f} s after notify processed the erasure: the time notify's
  inbox recorded the caregiver.erased events that signals lists with the erasure (erasures
  .event_ids). An erasure notify never processed is counted as not applied.
capacity: for every service_capacity row of matching (the services of the social map that
  publish a count), available + reservations held + reservations confirmed = the available
  count imported with the map before the first signal. Services without a count are listed."""


# --- the load ------------------------------------------------------------------------------


@dataclass
class Posted:
    api_key: str
    idempotency_key: str
    signal_id: str | None = None
    attempts: int = 0
    gave_up: str | None = None


@dataclass
class Erasure:
    id: str | None = None
    # A 404 to a retried request: an earlier attempt erased the caregiver, unanswered. Done,
    # but without an id to follow.
    done_unanswered: bool = False
    gave_up: str | None = None


@dataclass
class Caregiver:
    index: int
    kind: str  # "single", "twice" (second organisation signals too) or "erased"
    email: str
    name: str
    posts: list[Posted] = field(default_factory=list)
    erasure: Erasure | None = None

    @property
    def erased(self) -> bool:
        return self.erasure is not None and (self.erasure.id is not None or self.erasure.done_unanswered)


def signal_body(run: str, caregiver: Caregiver, second: bool) -> dict[str, Any]:
    body = json.loads(json.dumps(DEMO_SIGNAL))
    body["caregiver"]["name"] = caregiver.name
    body["caregiver"]["email"] = caregiver.email
    body["caregiver"]["phone"] = None
    body["source"] = {
        "kind": "neighbourhood_team" if second else "gp",
        "reference": f"CHAOS-{run}-{caregiver.index}{'-b' if second else ''}",
    }
    return body


class Console:
    """Event lines on stdout; one status line on stderr below them (tqdm), drawn only on a terminal."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._status = progress("", bar_format="{desc}")
        self._lock = threading.Lock()
        self.lines: list[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def event(self, text: str) -> None:
        line = f"[chaos {self.elapsed():6.1f}s] {text}"
        with self._lock:
            self.lines.append(line)
            self._status.write(line, file=sys.stdout)  # above the status line, which is redrawn

    def progress(self, text: str) -> None:
        with self._lock:
            self._status.set_description_str(text)


class Load:
    """Posts caregivers' signals at ``rate`` per second until ``stop`` is set."""

    def __init__(self, stack: Stack, console: Console, options: argparse.Namespace) -> None:
        self.stack = stack
        self.console = console
        self.options = options
        self.run = uuid.uuid4().hex[:6]
        self.caregivers: list[Caregiver] = []
        self.stop = asyncio.Event()
        self.retries = Counter[str]()
        self._tasks: set[asyncio.Task[None]] = set()
        self.client = httpx.AsyncClient(
            base_url=stack.services["signals"].url, timeout=10, limits=httpx.Limits(max_connections=32)
        )

    async def generate(self) -> None:
        kinds = random.Random(f"{self.options.seed}-kinds")
        started = time.monotonic()
        index = 0
        while not self.stop.is_set():
            draw = kinds.random()
            kind = (
                "erased"
                if draw < self.options.erase_share
                else "twice"
                if draw < self.options.erase_share + self.options.twice_share
                else "single"
            )
            caregiver = Caregiver(
                index, kind, f"chaos-{self.run}-{index}@example.nl", f"Mantelzorger {self.run} {index}"
            )
            self.caregivers.append(caregiver)
            task = asyncio.create_task(self.flow(caregiver))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            index += 1
            # Open loop: on schedule whether or not earlier posts are still being retried.
            delay = started + index / self.options.rate - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)

    async def drain(self) -> None:
        """Wait for the posts and erasures still being retried."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def flow(self, caregiver: Caregiver) -> None:
        rng = random.Random(f"{self.options.seed}-{caregiver.index}")
        first = await self.post(caregiver, GP_KEY, second=False)
        if caregiver.kind == "twice" and first.signal_id:
            await asyncio.sleep(rng.uniform(1, 4))
            await self.post(caregiver, WIJKTEAM_KEY, second=True)
        elif caregiver.kind == "erased" and first.signal_id:
            await asyncio.sleep(rng.uniform(0, 3))  # mid-flight: somewhere between ingest and notify
            caregiver.erasure = await self.erase(caregiver)

    async def _retrying(self, what: str, send: Callable[[], Any], accept: set[int]) -> httpx.Response | str:
        """Send until an answer in ``accept``; retry transport errors and 5xx; a string is why not."""
        deadline = time.monotonic() + self.options.accept_timeout
        backoff = 0.5
        while True:
            wait = backoff
            try:
                response = await send()
                if response.status_code in accept:
                    return response
                if response.status_code < 500 and response.status_code != 429:
                    return f"{response.status_code} {response.text[:200]}"
                self.retries[f"{what} {response.status_code}"] += 1
                if (retry_after := response.headers.get("Retry-After", "")).isdigit():
                    wait = float(retry_after)
            except httpx.TransportError as exc:
                self.retries[f"{what} {type(exc).__name__}"] += 1
            if time.monotonic() + wait > deadline:
                return f"not accepted within {self.options.accept_timeout:.0f}s"
            await asyncio.sleep(wait)
            backoff = min(backoff * 2, 5)

    async def post(self, caregiver: Caregiver, api_key: str, second: bool) -> Posted:
        posted = Posted(api_key, str(uuid.uuid4()))
        caregiver.posts.append(posted)
        body = signal_body(self.run, caregiver, second)
        headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": posted.idempotency_key}

        async def send() -> httpx.Response:
            posted.attempts += 1
            return await self.client.post("/v1/signals", json=body, headers=headers)

        answer = await self._retrying("POST /v1/signals", send, {202})
        if isinstance(answer, str):
            posted.gave_up = answer
            self.console.event(f"signal of caregiver {caregiver.index} not accepted: {answer}")
        else:
            posted.signal_id = answer.json()["id"]
        return posted

    async def erase(self, caregiver: Caregiver) -> Erasure:
        erasure = Erasure()
        identity = {k: DEMO_SIGNAL["caregiver"][k] for k in ("birth_year", "postcode")} | {"name": caregiver.name}
        # The person's erasure across organisations (art. 17): a partner key would withdraw
        # only its own signals and leave the other organisation's signal flowing.
        headers = {"Authorization": f"Bearer {DEMO_PRIVACY_OFFICER_KEY}"}
        attempts = 0

        async def send() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            return await self.client.post("/v1/erasures", json={"caregiver": identity}, headers=headers)

        answer = await self._retrying("POST /v1/erasures", send, {202, 404})
        if isinstance(answer, str) or (answer.status_code == 404 and attempts == 1):
            erasure.gave_up = answer if isinstance(answer, str) else f"404 {answer.text[:200]}"
            self.console.event(f"erasure of caregiver {caregiver.index} not accepted: {erasure.gave_up}")
        elif answer.status_code == 404:
            # A retry found nothing left to erase: an earlier attempt committed unanswered.
            erasure.done_unanswered = True
            self.console.event(f"erasure of caregiver {caregiver.index} done by an unanswered attempt")
        else:
            erasure.id = answer.json()["id"]
        return erasure

    def accepted(self) -> list[tuple[Caregiver, Posted]]:
        return [(c, p) for c in self.caregivers for p in c.posts if p.signal_id]


# --- the database, read directly --------------------------------------------------------------


def dsn(stack: Stack, service: str) -> str:
    return stack.services[service].env[f"{service.upper()}_DATABASE_URL"]


async def fetch(stack: Stack, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn(stack, service), timeout=5)
    try:
        return await conn.fetch(sql, *args, timeout=10)
    finally:
        await conn.close()


async def fetch_value(stack: Stack, service: str, sql: str, *args: Any) -> Any:
    rows = await fetch(stack, service, sql, *args)
    return rows[0][0] if rows else None


# --- the faults ---------------------------------------------------------------------------------


@dataclass
class Step:
    scenario: str
    hold: float  # seconds the fault is held (0: a crash the supervisor undoes at once)
    gap: float  # seconds of calm before it
    started: float | None = None
    recovered_in: float | None = None
    note: str = ""


def schedule(scenarios: list[str], seed: int, short: bool) -> list[Step]:
    rng = random.Random(seed)
    order = list(scenarios)
    rng.shuffle(order)
    steps = []
    for name in order:
        if name.startswith("stop-"):
            hold = SESSION_TIMEOUT_SECONDS + (3 if short else rng.uniform(5, 15))
        elif name == "postgres-down":
            hold = rng.uniform(5, 8) if short else rng.uniform(5, 30)
        elif name == "mailbox-down":
            hold = 15 if short else 60
        elif name == "kill-replicas":
            # Past the session timeout, so the group drops the dead members and the survivors
            # take over their partitions before the dead ones come back.
            hold = SESSION_TIMEOUT_SECONDS + (10 if short else rng.uniform(15, 30))
        else:
            hold = 0
        steps.append(Step(name, round(hold, 1), round(rng.uniform(3, 5) if short else rng.uniform(5, 10), 1)))
    return steps


def all_up(stack: Stack) -> bool:
    if not (stack.postgres.running() and stack.broker.alive() and stack.mailbox.alive()):
        return False
    for service in stack.services.values():
        try:
            if httpx.get(f"{service.url}/healthz", timeout=2).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
    return True


async def wait_all_up(stack: Stack, timeout: float) -> float | None:
    """Seconds until everything answers again; None when it did not within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await asyncio.to_thread(all_up, stack):
            return round(time.monotonic() - started, 1)
        await asyncio.sleep(0.5)
    return None


async def apply(stack: Stack, step: Step, console: Console, rng: random.Random) -> None:
    name = step.scenario
    if name == "kill-notify-x4":
        for round_ in range(1, 5):
            # "While it delivers": notify is up and has e-mail to send.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if await fetch_value(
                        stack,
                        "notify",
                        "SELECT count(*) FROM notifications WHERE status = 'pending' AND channel = 'email'",
                    ):
                        break
                except DB_ERRORS:
                    pass
                await asyncio.sleep(0.1)
            else:
                step.note += f"round {round_}: no e-mail pending within 60 s; "
            await asyncio.sleep(rng.uniform(0, 0.3))
            await asyncio.to_thread(stack.kill, "notify")
            console.event(f"  SIGKILL notify ({round_}/4)")
            await wait_all_up(stack, 90)
    elif name == "kill-replicas":
        # The last instance of each: the first keeps the name the other scenarios use.
        victims = [instance_name(service, stack.config.replicas) for service in REPLICATED]
        for victim in victims:
            stack.pause(victim)
        try:
            for victim in victims:
                await asyncio.to_thread(stack.kill, victim)
            console.event(f"  SIGKILL {', '.join(victims)}; held down {step.hold:.0f} s")
            await asyncio.sleep(step.hold)
        finally:
            for victim in victims:
                stack.resume(victim)
    elif name.startswith("kill-"):
        await asyncio.to_thread(stack.kill, name.removeprefix("kill-"))
    elif name.startswith("stop-"):
        service = name.removeprefix("stop-")
        stack.send_signal(service, signal.SIGSTOP)
        try:
            await asyncio.sleep(step.hold)
        finally:
            stack.send_signal(service, signal.SIGCONT)
    elif name == "postgres-down":
        with stack.held("postgres"):
            await asyncio.to_thread(stack.kill, "postgres")
            await asyncio.sleep(step.hold)
    elif name == "broker-kill":
        await asyncio.to_thread(stack.kill, "broker")
    elif name == "mailbox-down":
        with stack.held("mailbox"):
            await asyncio.to_thread(stack.kill, "mailbox")
            await asyncio.sleep(step.hold)
    else:
        raise ValueError(f"unknown scenario {name!r}")


class Supervisor(threading.Thread):
    """``make run``'s supervision loop, in a thread: one step a second."""

    def __init__(self, stack: Stack, console: Console) -> None:
        super().__init__(name="supervisor", daemon=True)
        self.stack, self.console = stack, console
        self.halt = threading.Event()
        self.actions: list[str] = []

    def run(self) -> None:
        while not self.halt.wait(1):
            for action in self.stack.supervise():
                self.actions.append(action)
                self.console.event(f"supervisor: {action}")


# --- the count ------------------------------------------------------------------------------------


def notification_id(message_id: str) -> str:
    """Notify's Message-ID is ``<notification-id@domain>``."""
    return message_id.strip().strip("<>").split("@")[0]


def outcome(status: dict[str, Any]) -> bool:
    return status.get("status") == "notified" and any(
        n["recipient"] in ("caregiver", "referrer") and n["status"] == "delivered"
        for n in status.get("notifications", [])
    )


@dataclass
class Report:
    seed: int
    data_dir: str
    schedule: list[dict[str, Any]]
    caregivers: int
    signals_accepted: int
    signals_not_accepted: int
    signals_notified: int
    caregivers_erased: int
    signals_erased: int
    settled: bool
    lost: list[str]
    duplicates: list[dict[str, Any]]
    redeliveries: int
    unknown_message_ids: int
    sends_after_erasure: list[dict[str, Any]]
    erasures_not_applied: list[str]
    capacity_rows: int
    capacity_broken: list[dict[str, Any]]
    services_without_count: int
    failed_notifications: int
    retries: dict[str, int]
    supervisor_actions: list[str]
    caregiver_emails: list[str]  # of the caregivers not erased, for the tests

    @property
    def ok(self) -> bool:
        # A receipt that cannot be traced to a notification could hide a duplicate.
        return not (
            self.lost
            or self.duplicates
            or self.sends_after_erasure
            or self.erasures_not_applied
            or self.capacity_broken
            or self.signals_not_accepted
            or self.unknown_message_ids
        )


async def statuses(load: Load, signals: list[tuple[Caregiver, Posted]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    limit = asyncio.Semaphore(8)

    async def one(posted: Posted) -> None:
        async with limit:
            try:
                response = await load.client.get(
                    f"/v1/signals/{posted.signal_id}", headers={"Authorization": f"Bearer {posted.api_key}"}
                )
                if response.status_code == 200:
                    found[posted.signal_id] = response.json()  # type: ignore[index]
            except httpx.HTTPError:
                pass

    await asyncio.gather(*(one(p) for _, p in signals))
    return found


async def erasures_in_effect(load: Load) -> dict[str, float | None]:
    """Per erasure id: when notify recorded its caregiver.erased events in its inbox (the last
    of them, as a Unix time), or None while it has not."""
    ids = [uuid.UUID(c.erasure.id) for c in load.caregivers if c.erasure and c.erasure.id]
    events = {
        str(r["id"]): r["event_ids"]
        for r in await fetch(
            load.stack, "signals", "SELECT id, event_ids FROM erasures WHERE id = ANY($1::uuid[])", ids
        )
    }
    processed = {
        r["event_id"]: r["at"].timestamp()
        for r in await fetch(
            load.stack,
            "notify",
            "SELECT event_id, min(processed_at) AS at FROM inbox WHERE event_id = ANY($1::uuid[]) GROUP BY event_id",
            [e for ev in events.values() for e in ev],
        )
    }
    return {
        str(i): (
            max(processed[e] for e in events[str(i)])
            if str(i) in events and all(e in processed for e in events[str(i)])
            else None
        )
        for i in ids
    }


async def pending_work(stack: Stack) -> dict[str, int]:
    pending = {}
    for service in SERVICES:
        pending[f"{service} outbox"] = await fetch_value(
            stack, service, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
    pending["notify pending"] = await fetch_value(
        stack, "notify", "SELECT count(*) FROM notifications WHERE status = 'pending'"
    )
    return pending


async def settle(load: Load, console: Console, timeout: float, quiet: float) -> bool:
    """Wait until every signal has its outcome, every erasure took effect and nothing is
    pending; or, with nothing pending, until nothing changed for ``quiet`` seconds."""
    started = time.monotonic()
    last_change, last_state = time.monotonic(), None
    while time.monotonic() - started < timeout:
        live = [(c, p) for c, p in load.accepted() if not c.erased]
        done = sum(outcome(s) for s in (await statuses(load, live)).values())
        try:
            erasures = sum(at is None for at in (await erasures_in_effect(load)).values())
            pending = await pending_work(load.stack)
        except DB_ERRORS as exc:
            erasures, pending = 0, {"database": 1}
            console.event(f"settling: database not answering ({exc})")
        state = (done, erasures, tuple(sorted(pending.items())))
        if state != last_state:
            last_change, last_state = time.monotonic(), state
        console.progress(
            f"settling {time.monotonic() - started:5.0f}s: {done}/{len(live)} with an outcome, "
            f"{erasures} erasures not yet in effect, pending {sum(pending.values())}"
        )
        if done == len(live) and not erasures and not any(pending.values()):
            return True
        if not any(pending.values()) and time.monotonic() - last_change >= quiet:
            console.event(f"settling: nothing pending and nothing changed for {quiet:.0f}s")
            return False
        await asyncio.sleep(2)
    console.event(f"settling: timed out after {timeout:.0f}s")
    return False


async def count(
    load: Load,
    steps: list[Step],
    supervisor: Supervisor,
    settled: bool,
    capacity_before: dict[str, int],
    options: argparse.Namespace,
) -> Report:
    stack = load.stack
    accepted = load.accepted()
    live = [(c, p) for c, p in accepted if not c.erased]
    found = await statuses(load, live)
    lost = [p.signal_id for _, p in live if p.signal_id and not outcome(found.get(p.signal_id, {}))]

    notifications = {
        str(r["id"]): r
        for r in await fetch(
            stack, "notify", "SELECT id, signal_id, case_id, template, recipient_role, status FROM notifications"
        )
    }
    receipts = journal(stack.config.data_dir / "mailbox")
    per_message = Counter(r["message_id"] for r in receipts)
    redeliveries = sum(n - 1 for n in per_message.values())
    groups: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    unknown = 0
    for receipt in receipts:
        row = notifications.get(notification_id(receipt["message_id"]))
        if row is None:
            unknown += 1
            continue
        for recipient in receipt["recipients"]:
            groups[(recipient.lower(), row["template"], str(row["case_id"]))].add(receipt["message_id"])
    duplicates = [
        {
            "recipient": k[0],
            "template": k[1],
            "case": k[2],
            "message_ids": sorted(v),
            # One message per signal of the case (a second organisation signalled): notify
            # plans the caregiver's overview per case and proposal set. Shown to tell apart.
            "signals": len({str(notifications[notification_id(m)]["signal_id"]) for m in v}),
        }
        for k, v in groups.items()
        if len(v) > 1
    ]

    after_erasure, not_applied = [], []
    in_effect = await erasures_in_effect(load)
    for caregiver in load.caregivers:
        if not (caregiver.erasure and caregiver.erasure.id):
            continue
        effective = in_effect.get(caregiver.erasure.id)
        if effective is None:
            not_applied.append(caregiver.erasure.id)
            continue
        signal_ids = {p.signal_id for p in caregiver.posts if p.signal_id}
        for receipt in receipts:
            row = notifications.get(notification_id(receipt["message_id"]))
            received = datetime.fromisoformat(receipt["received_at"]).timestamp()
            if row and str(row["signal_id"]) in signal_ids and received > effective + ERASURE_GRACE_SECONDS:
                after_erasure.append(
                    {
                        "caregiver": caregiver.index,
                        "message_id": receipt["message_id"],
                        "template": row["template"],
                        "seconds_after": round(received - effective, 1),
                    }
                )

    rows = await fetch(
        stack,
        "matching",
        """
        SELECT c.id, c.service_id, c.available,
               count(r.id) FILTER (WHERE r.status = 'held')::int AS held,
               count(r.id) FILTER (WHERE r.status = 'confirmed')::int AS confirmed
        FROM service_capacity c LEFT JOIN reservation r ON r.capacity_id = c.id
        GROUP BY c.id, c.service_id, c.available""",
    )
    broken = [
        {
            "capacity_id": r["id"],
            "service_id": r["service_id"],
            "capacity": capacity_before.get(r["id"]),
            "available": r["available"],
            "held": r["held"],
            "confirmed": r["confirmed"],
        }
        for r in rows
        if r["available"] + r["held"] + r["confirmed"] != capacity_before.get(r["id"])
    ]
    broken += [{"capacity_id": cid, "missing": True} for cid in set(capacity_before) - {r["id"] for r in rows}]
    uncounted = await fetch_value(
        stack,
        "matching",
        "SELECT count(*) FROM service s WHERE NOT EXISTS (SELECT 1 FROM service_capacity c WHERE c.service_id = s.id)",
    )

    erased = [c for c in load.caregivers if c.erased]
    return Report(
        seed=options.seed,
        data_dir=str(stack.config.data_dir),
        schedule=[asdict(s) for s in steps],
        caregivers=len(load.caregivers),
        signals_accepted=len(accepted),
        signals_not_accepted=sum(1 for c in load.caregivers for p in c.posts if p.gave_up),
        signals_notified=sum(outcome(s) for s in found.values()),
        caregivers_erased=len(erased),
        signals_erased=sum(1 for c in erased for p in c.posts if p.signal_id),
        settled=settled,
        lost=lost,
        duplicates=duplicates,
        redeliveries=redeliveries,
        unknown_message_ids=unknown,
        sends_after_erasure=after_erasure,
        erasures_not_applied=not_applied,
        capacity_rows=len(rows),
        capacity_broken=broken,
        services_without_count=uncounted,
        failed_notifications=sum(1 for r in notifications.values() if r["status"] == "failed"),
        retries=dict(load.retries),
        supervisor_actions=supervisor.actions,
        caregiver_emails=sorted({c.email for c, _ in live}),
    )


def summary(report: Report) -> str:
    lines = [
        "",
        f"schedule (seed {report.seed}):",
        f"  {'#':>2}  {'scenario':<18} {'gap s':>6} {'hold s':>7} {'recovered in s':>15}  note",
    ]
    for i, step in enumerate(report.schedule, 1):
        recovered = "-" if step["recovered_in"] is None else f"{step['recovered_in']:.1f}"
        lines.append(
            f"  {i:>2}  {step['scenario']:<18} {step['gap']:>6.1f} {step['hold']:>7.1f} {recovered:>15}  {step['note']}"
        )

    def verdict(n: int) -> str:
        return "ok" if n == 0 else "FAIL"

    rows = [
        ("signals accepted", report.signals_accepted, ""),
        ("signals not accepted (client gave up)", report.signals_not_accepted, verdict(report.signals_not_accepted)),
        ("signals notified (caregiver/referrer)", report.signals_notified, ""),
        ("caregivers / signals erased", f"{report.caregivers_erased} / {report.signals_erased}", ""),
        ("lost", len(report.lost), verdict(len(report.lost))),
        (
            "duplicate e-mails",
            sum(len(d["message_ids"]) - 1 for d in report.duplicates),
            verdict(len(report.duplicates)),
        ),
        (
            "  of which across signals of one case",
            sum(len(d["message_ids"]) - 1 for d in report.duplicates if d["signals"] > 1),
            "",
        ),
        ("sends after erasure", len(report.sends_after_erasure), verdict(len(report.sends_after_erasure))),
        ("erasures notify never applied", len(report.erasures_not_applied), verdict(len(report.erasures_not_applied))),
        (
            f"capacity rows broken (of {report.capacity_rows})",
            len(report.capacity_broken),
            verdict(len(report.capacity_broken)),
        ),
        ("re-deliveries of a Message-ID (info)", report.redeliveries, ""),
        ("receipts with an unknown Message-ID", report.unknown_message_ids, verdict(report.unknown_message_ids)),
        ("notifications failed (info)", report.failed_notifications, ""),
        ("services without a capacity count (info)", report.services_without_count, ""),
        ("supervisor restarts (info)", len(report.supervisor_actions), ""),
        ("settled before the timeout", "yes" if report.settled else "no", ""),
    ]
    lines += ["", f"  {'count':<44} {'value':>10}  verdict"]
    lines += [f"  {name:<44} {value!s:>10}  {v}" for name, value, v in rows]
    if report.retries:
        lines.append("  client retries: " + ", ".join(f"{k} x{n}" for k, n in sorted(report.retries.items())))
    for title, items in (
        ("lost", report.lost),
        ("duplicates", report.duplicates),
        ("sends after erasure", report.sends_after_erasure),
        ("erasures not applied", report.erasures_not_applied),
        ("capacity broken", report.capacity_broken),
    ):
        if items:
            lines.append(f"  {title} (first 10): " + "; ".join(json.dumps(i, default=str) for i in items[:10]))
    lines += [
        "",
        "definitions:",
        *("  " + line for line in DEFINITIONS.splitlines()),
        "",
        f"result: {'PASS' if report.ok else 'FAIL'} (data, logs and journal in {report.data_dir})",
    ]
    return "\n".join(lines)


# --- the run --------------------------------------------------------------------------------------


async def drive(stack: Stack, console: Console, supervisor: Supervisor, options: argparse.Namespace) -> Report:
    steps = schedule(options.scenario, options.seed, options.short)
    console.event("schedule: " + ", ".join(f"{s.scenario} (after {s.gap}s, hold {s.hold}s)" for s in steps))
    capacity_before = {
        r["id"]: r["available"] for r in await fetch(stack, "matching", "SELECT id, available FROM service_capacity")
    }
    load = Load(stack, console, options)
    generator = asyncio.create_task(load.generate())
    rng = random.Random(f"{options.seed}-faults")
    started = time.monotonic()
    current = "warm-up"

    async def show_progress() -> None:
        while True:
            accepted = len(load.accepted())
            retrying = sum(1 for c in load.caregivers for p in c.posts if not p.signal_id and not p.gave_up)
            console.progress(
                f"[chaos {console.elapsed():6.1f}s] caregivers {len(load.caregivers)}, "
                f"accepted {accepted}, in retry {retrying}, fault: {current}, "
                f"restarts {len(supervisor.actions)}"
            )
            await asyncio.sleep(1)

    progress = asyncio.create_task(show_progress())
    try:
        await asyncio.sleep(options.warmup)
        for i, step in enumerate(steps, 1):
            await asyncio.sleep(step.gap)
            step.started = round(console.elapsed(), 1)
            console.event(f"fault {i}/{len(steps)}: {step.scenario}" + (f", held {step.hold}s" if step.hold else ""))
            current = step.scenario
            await apply(stack, step, console, rng)
            recovered = await wait_all_up(stack, 180)
            step.recovered_in = recovered
            if recovered is None:
                step.note += "not all up again within 180 s"
            console.event(
                f"fault {i}/{len(steps)}: {step.scenario} over; all up again after "
                f"{'-' if recovered is None else recovered}s"
            )
            current = "calm"
        remaining = options.duration - (time.monotonic() - started)
        await asyncio.sleep(max(remaining, options.tail))
    finally:
        # Heal: nothing held, nothing frozen; the supervisor brings back what is down.
        for name in ("postgres", "broker", "mailbox", *stack.services):
            stack.resume(name)
        for name in stack.services:
            stack.send_signal(name, signal.SIGCONT)
        load.stop.set()
        await generator
    console.event(f"posting stopped after {len(load.caregivers)} caregivers; healing and waiting for the rest")
    await load.drain()
    try:
        if await wait_all_up(stack, 180) is None:
            console.event("not everything came back within 180 s")
        settled = await settle(load, console, options.settle_timeout, options.quiet)
        progress.cancel()
        return await count(load, steps, supervisor, settled, capacity_before, options)
    finally:
        progress.cancel()
        await load.client.aclose()


def run(options: argparse.Namespace) -> Report:
    """Start a stack, drive the load and the faults, count; the stack is stopped afterwards."""

    data_dir = (options.data_dir or Path(tempfile.mkdtemp(prefix="sts-chaos-"))).resolve()
    console = Console()
    config = StackConfig.ephemeral(data_dir, replicas=options.replicas)
    # PostgreSQL is crashed on purpose (stop -m immediate): without fsync and synchronous
    # commit a commit already acknowledged would be lost with it, and the count would blame
    # the pipeline for the test set-up.
    config.durable_postgres = True
    stack = Stack(config, progress=lambda t: console.event(f"stack: {t}"))
    supervisor = Supervisor(stack, console)
    try:
        stack.start()
        seed_demo(stack, lambda t: console.event(f"stack: {t}"))
        supervisor.start()
        report = asyncio.run(drive(stack, console, supervisor, options))
    finally:
        supervisor.halt.set()
        if supervisor.is_alive():
            supervisor.join()
        for name in stack.services:  # a service left frozen would not stop
            stack.send_signal(name, signal.SIGCONT)
        stack.stop()
    (data_dir / "chaos-result.json").write_text(json.dumps(asdict(report), indent=2, default=str))
    (data_dir / "chaos-events.log").write_text("\n".join(console.lines) + "\n")
    return report


def parser() -> argparse.ArgumentParser:
    p = new_parser("python -m deploy.chaos", __doc__)
    p.add_argument("--seed", type=int, default=1, help="draws the schedule, holds and load (default 1)")
    p.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        metavar="NAME",
        help=f"run only this scenario (repeatable); one of: {', '.join(SCENARIOS)}",
    )
    p.add_argument(
        "--short",
        action="store_true",
        help=f"the short run of `make test`: {', '.join(SHORT_SCENARIOS)}, with short holds",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=0,
        help="post for at least this many seconds, even when the schedule is done sooner",
    )
    p.add_argument("--rate", type=float, default=None, help="caregivers per second (default 2, short 1)")
    p.add_argument(
        "--twice-share",
        type=float,
        default=0.15,
        help="share of caregivers the second organisation signals too (default 0.15)",
    )
    p.add_argument(
        "--erase-share", type=float, default=0.05, help="share of caregivers erased mid-flight (default 0.05)"
    )
    p.add_argument(
        "--accept-timeout",
        type=float,
        default=300,
        help="how long one POST is retried before the client gives up (default 300 s)",
    )
    p.add_argument(
        "--settle-timeout",
        type=float,
        default=None,
        help="how long to wait for nothing pending after the faults (default 300 s, short 150 s)",
    )
    p.add_argument(
        "--quiet",
        type=float,
        default=30,
        help="stop waiting when nothing is pending and nothing changed this long (default 30 s)",
    )
    p.add_argument("--data-dir", type=Path, help="the stack's data directory (default: a new temporary one)")
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="instances of screening, matching, notify and municipalities (default 1)",
    )
    return p


def options_from(argv: list[str] | None = None) -> argparse.Namespace:
    options = parser().parse_args(argv)
    if not options.scenario:
        options.scenario = list(SHORT_SCENARIOS if options.short else SCENARIOS)
        if options.replicas < 2:
            options.scenario.remove("kill-replicas")
    elif "kill-replicas" in options.scenario and options.replicas < 2:
        parser().error("kill-replicas needs --replicas 2 or more")
    if options.settle_timeout is None:
        options.settle_timeout = 150 if options.short else 300
    if options.rate is None:
        # Seven services restarting on two cores: the short run checks correctness (nothing
        # lost or sent twice), not throughput, so it offers half the full run's load.
        options.rate = 1.0 if options.short else 2.0
    options.warmup = 5 if options.short else 10  # signals in every stage before the first fault
    options.tail = 5 if options.short else 10  # signals still posted after the last fault
    return options


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # A SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the stack it started is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    report = run(options_from(argv))
    print(summary(report), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
