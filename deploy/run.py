"""Run the whole system on the embedded default: ``make run`` (or ``python -m deploy.run``).

Starts PostgreSQL (data kept in .data/) and Tansu, the six services as processes, seeds the
demo organisations, keys and social map, prints where everything is, and stops it all
cleanly on Ctrl-C. While it runs it restarts whatever dies (a service, PostgreSQL, the
broker, the mailbox) and prints what it restarted; the services' logs are in .data/logs/."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from deploy.stack import REPO, Stack, StackConfig
from shared import auth
from shared.commandline import new_parser

DEMO_ORGANISATIONS = [
    ("Huisartsenpraktijk De Linde (demo)", "gp", "demo-gp-key", "praktijk@delinde.example.nl"),
    ("Sociaal wijkteam Leusden (demo)", "neighbourhood_team", "demo-wijkteam-key", "wijkteam@leusden.example.nl"),
    ("Thuiszorg Eemland (demo)", "home_care", "demo-thuiszorg-key", "thuiszorg@eemland.example.nl"),
]
DEMO_GP = DEMO_ORGANISATIONS[0][0]
DEMO_SOCIAL_MAP = REPO / "services" / "matching" / "demo" / "social_map.json"
DEMO_MUNICIPALITY_KEYS = [("GM0327", "demo-gm0327-key"), ("GM0307", "demo-gm0307-key")]
DEMO_PRIVACY_OFFICER_KEY = "demo-privacy-officer-key"
# The caregiver consultant's workbench: a consultant for Leusden who is also the back-up of the
# default region's fallback queue (every municipality without a consultant, e.g. GM1680).
DEMO_CONSULTANT = ("Demo mantelzorgconsulent Leusden", "consulent@leusden.example.nl", "GM0327")
DEMO_FALLBACK_REGION = "Regionaal vangnet"
DEMO_WMO_DESK = ("GM0327", "Wmo-loket Leusden (demo)", "wmo@leusden.example.nl")


def seed_casework(stack: Stack, say) -> str:
    """The demo consultant and Wmo desk; returns the consultant's one-time sign-in link."""
    cli = [sys.executable, "-m", "services.casework.cli"]
    env = stack.env_for("casework")
    name, email, code = DEMO_CONSULTANT
    subprocess.run(
        [
            *cli,
            "set-wmo-desk",
            "--municipality",
            DEMO_WMO_DESK[0],
            "--name",
            DEMO_WMO_DESK[1],
            "--email",
            DEMO_WMO_DESK[2],
        ],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    issued = subprocess.run(
        [
            *cli,
            "issue-consultant",
            "--municipality",
            code,
            "--name",
            name,
            "--email",
            email,
            "--fallback-region",
            DEMO_FALLBACK_REGION,
        ],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    say(f"demo caregiver consultant seeded ({code}, back-up of {DEMO_FALLBACK_REGION})")
    return issued.stdout.strip().splitlines()[-1]


def seed_key(stack: Stack, service: str, key: str, scopes: Sequence[auth.Scope], subject: str, holder: str) -> None:
    """Issue a demo key straight into a service's credentials. The demo keys are weak on
    purpose (easy to type); the CLIs' ``--key`` refuses such values, so this is their only way in."""

    async def issue() -> None:
        conn = await asyncpg.connect(stack.services[service].env[f"{service.upper()}_DATABASE_URL"])
        try:
            await auth.issue(conn, key=key, scopes=scopes, subject=subject, holder=holder, label="demo")
        except auth.KeyRefused as exc:
            # Revoked by an operator (it stays revoked), or held since an older seeding.
            print(f"demo key {key!r} left as it is: {exc}", file=sys.stderr)
        finally:
            await conn.close()

    asyncio.run(issue())


DEMO_OPERATOR = ("Operator (demo)", "demo-operator-sign-in")


def seed_demo(stack: Stack, say) -> None:
    env = stack.env_for("signals")
    for name, kind, key, email in DEMO_ORGANISATIONS:
        cli = [sys.executable, "-m", "services.signals.cli"]
        added = subprocess.run(
            [*cli, "add-organisation", "--name", name, "--kind", kind],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        )
        # The referrer hears back by e-mail: notify needs the id signals gave the organisation.
        organisation_id = added.stdout.strip().rsplit(": ", 1)[-1]
        seed_key(stack, "signals", key, auth.PARTNER_SCOPES, organisation_id, name)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "services.notify.cli",
                "register-partner",
                "--organisation-id",
                organisation_id,
                "--name",
                name,
                "--email",
                email,
            ],
            env=stack.env_for("notify"),
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    say(f"demo organisations and keys seeded ({len(DEMO_ORGANISATIONS)})")
    seed_key(
        stack,
        "signals",
        DEMO_PRIVACY_OFFICER_KEY,
        [auth.Scope.PRIVACY_OFFICER],
        str(uuid.uuid5(uuid.NAMESPACE_URL, "signal-to-support:demo-privacy-officer")),
        "Privacy officer (demo)",
    )
    say("demo privacy officer credential seeded")
    for code, key in DEMO_MUNICIPALITY_KEYS:
        seed_key(stack, "municipalities", key, [auth.Scope.MUNICIPALITY_READ], code, code)
    say(f"demo municipality credentials seeded ({len(DEMO_MUNICIPALITY_KEYS)})")
    # The banner's link signs the demo operator in; unlike a real one it works more than once
    # (for a week), so the printed line keeps working while the demo runs.
    name, token = DEMO_OPERATOR
    subprocess.run(
        [
            sys.executable,
            "-m",
            "services.operators.cli",
            "issue-operator",
            "--name",
            name,
            "--token",
            token,
            "--reusable",
            "--valid-minutes",
            str(7 * 24 * 60),
        ],
        env=stack.env_for("operators"),
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    say("demo operator seeded")
    result = subprocess.run(
        [sys.executable, "-m", "services.matching.cli", "import", str(DEMO_SOCIAL_MAP)],
        env=stack.env_for("matching"),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"demo social map import failed:\n{result.stdout}\n{result.stderr}")
    say("demo social map imported: " + (result.stdout.strip().splitlines() or ["done"])[-1])


def sign_in_link(stack: Stack, organisation: str = DEMO_GP) -> str:
    """A one-time link that signs a professional of ``organisation`` in to the signal form."""
    result = subprocess.run(
        [sys.executable, "-m", "services.signals.cli", "sign-in-link", "--organisation", organisation],
        env=stack.env_for("signals"),
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip().splitlines()[-1]


def banner(stack: Stack, signal_form: str | None = None, consultant_link: str | None = None) -> str:
    s = stack.services
    # The front doors start their lines with their label, so they are easy to find and copy.
    front_doors = f"""
Self-referral   {s["signals"].url}/aanmelden   (caregivers; a resident's concern: /aanmelden/zorg)
Signal form     {signal_form or s["signals"].url + "/melden"}   (one-time link, signed in for {DEMO_GP})
Social map      {stack.social_map_url}   (for everyone; e.g. respijt in Leusden: ?plaats=Leusden&zoek=respijt)
Consultant      {consultant_link or s["casework"].url + "/"}   (the workbench, signed in once for {DEMO_CONSULTANT[0]})
Operators       {s["operators"].url}/sign-in?token={DEMO_OPERATOR[1]}   (the console: health, flow, lag, dead letters)
"""
    return f"""
signal-to-support is running (embedded default, demo data)
{front_doors}
  Ingest API      {s["signals"].url}            docs: {s["signals"].url}/docs
  Municipalities  {s["municipalities"].url}/v1/municipalities/<code>/…   stream schema: {s["municipalities"].url}/asyncapi
  Mailbox         {stack.mailbox.url}/   (SMTP 127.0.0.1:{stack.config.smtp_port}; files in {stack.config.data_dir / "mailbox"})
  Screening       {s["screening"].url}/healthz   /metrics
  Matching        {s["matching"].url}/healthz   /metrics
  Notify          {s["notify"].url}/healthz   /metrics
  Kafka (Tansu)   {stack.broker.bootstrap}
  PostgreSQL      {stack.postgres.dsn()}   (databases: signals, screening, matching, notify, municipalities, casework, operators)
  Logs            {stack.config.data_dir / "logs"}/*.log

  Demo API keys   demo-gp-key (GP practice), demo-wijkteam-key (neighbourhood team), demo-thuiszorg-key (home care)
  Municipalities  demo-gm0327-key (Leusden, GM0327), demo-gm0307-key (Amersfoort, GM0307)
  Privacy officer {DEMO_PRIVACY_OFFICER_KEY} (erases a person across organisations: POST /v1/erasures)
  Consultant      the link above signs in {DEMO_CONSULTANT[0]} once (GM0327 and the
                  "{DEMO_FALLBACK_REGION}" fallback queue); a new one: python -m services.casework.cli
                  sign-in-link --email {DEMO_CONSULTANT[1]}

  Try it:  curl -s -X POST {s["signals"].url}/v1/signals -H 'Authorization: Bearer demo-gp-key' \\
             -H 'Content-Type: application/json' -d @deploy/demo/signal.json
  Municipalities receive only groups of at least 10 persons: post 30 similar signals about
  30 different caregivers, and groups appear on GM0327's stream within seconds (3 would
  release nothing; a caregiver posted 30 times is still one person):
           for i in $(seq 30); do sed "s/Anna de Vries/Mantelzorger $i/; s/anna.devries/mz$i/" \\
             deploy/demo/signal.json | curl -s -o /dev/null -X POST {s["signals"].url}/v1/signals \\
             -H 'Authorization: Bearer demo-gp-key' -H 'Content-Type: application/json' -d @-; done
           curl -sN "{s["municipalities"].url}/v1/municipalities/GM0327/events?since=$(date +%F)" \\
             -H 'Authorization: Bearer demo-gm0327-key'
Press Ctrl-C to stop.
"""  # noqa: E501 - the banner's lines are as wide as the addresses and paths they show


def main(argv: list[str] | None = None) -> int:
    parser = new_parser("python -m deploy.run", __doc__)
    parser.add_argument("--data-dir", type=Path, default=REPO / ".data", help="default: .data/")
    parser.add_argument("--no-demo", action="store_true", help="do not seed demo keys and social map")
    parser.add_argument("--log-format", choices=["json", "console"], default="json")
    parser.add_argument(
        "--replicas",
        type=int,
        default=int(os.environ.get("STS_REPLICAS", "1")),
        help="instances of screening, matching, notify and municipalities; the n-th on its "
        "first instance's port + 100 * (n - 1) (default 1, or $STS_REPLICAS)",
    )
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be 1 or more")

    def say(text: str) -> None:
        print(f"[run] {text}", flush=True)

    stack = Stack(
        StackConfig(data_dir=args.data_dir.resolve(), log_format=args.log_format, replicas=args.replicas), progress=say
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        links: dict[str, str] = {}

        def seed(stack: Stack) -> None:
            seed_demo(stack, say)
            links["consultant"] = seed_casework(stack, say)

        stack.start(seed=None if args.no_demo else seed)
        print(banner(stack, None if args.no_demo else sign_in_link(stack), links.get("consultant")), flush=True)
        # Supervision: whatever dies (a service, PostgreSQL, the broker, the mailbox) comes back.
        while not stop.wait(1):
            for action in stack.supervise():
                say(action)
    except Exception as exc:
        say(f"error: {exc}")
        return 1
    finally:
        say("stopping ...")
        stack.stop()
        say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
