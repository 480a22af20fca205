"""Run the whole system on the embedded default: ``make run`` (or ``python -m deploy.run``).

Starts PostgreSQL (data kept in .data/) and Tansu, the five services as processes, seeds the
demo organisations, keys and social map, prints where everything is, and stops it all
cleanly on Ctrl-C. While it runs it restarts whatever dies (a service, PostgreSQL, the
broker, the mailbox) and prints what it restarted; the services' logs are in .data/logs/."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from pathlib import Path

from deploy.stack import REPO, Stack, StackConfig

DEMO_ORGANISATIONS = [
    ("Huisartsenpraktijk De Linde (demo)", "gp", "demo-gp-key", "praktijk@delinde.example.nl"),
    ("Sociaal wijkteam Leusden (demo)", "neighbourhood_team", "demo-wijkteam-key", "wijkteam@leusden.example.nl"),
]
DEMO_SOCIAL_MAP = REPO / "services" / "matching" / "demo" / "social_map.json"
DEMO_MUNICIPALITY_KEYS = [("GM0327", "demo-gm0327-key"), ("GM0307", "demo-gm0307-key")]
DEMO_PRIVACY_OFFICER_KEY = "demo-privacy-officer-key"
DEMO_OPERATOR = ("Operator (demo)", "demo-operator-sign-in")


def seed_demo(stack: Stack, say) -> None:
    env = stack.env_for("signals")
    for name, kind, key, email in DEMO_ORGANISATIONS:
        cli = [sys.executable, "-m", "services.signals.cli"]
        added = subprocess.run([*cli, "add-organisation", "--name", name, "--kind", kind], env=env, cwd=REPO,
                               check=True, capture_output=True, text=True)
        subprocess.run([*cli, "issue-key", "--organisation", name, "--key", key, "--label", "demo"],
                       env=env, cwd=REPO, check=True, capture_output=True)
        # The referrer hears back by e-mail: notify needs the id signals gave the organisation.
        organisation_id = added.stdout.strip().rsplit(": ", 1)[-1]
        subprocess.run([sys.executable, "-m", "services.notify.cli", "register-partner", "--organisation-id",
                        organisation_id, "--name", name, "--email", email],
                       env=stack.env_for("notify"), cwd=REPO, check=True, capture_output=True)
    say(f"demo organisations and keys seeded ({len(DEMO_ORGANISATIONS)})")
    subprocess.run([sys.executable, "-m", "services.signals.cli", "issue-privacy-officer-key", "--name",
                    "Privacy officer (demo)", "--key", DEMO_PRIVACY_OFFICER_KEY, "--label", "demo"],
                   env=env, cwd=REPO, check=True, capture_output=True)
    say("demo privacy officer credential seeded")
    for code, key in DEMO_MUNICIPALITY_KEYS:
        subprocess.run([sys.executable, "-m", "services.municipalities.cli", "issue-key", "--municipality", code,
                        "--key", key, "--label", "demo"],
                       env=stack.env_for("municipalities"), cwd=REPO, check=True, capture_output=True)
    say(f"demo municipality credentials seeded ({len(DEMO_MUNICIPALITY_KEYS)})")
    # The banner's link signs the demo operator in; unlike a real one it works more than once
    # (for a week), so the printed line keeps working while the demo runs.
    name, token = DEMO_OPERATOR
    subprocess.run([sys.executable, "-m", "services.operators.cli", "issue-operator", "--name", name,
                    "--token", token, "--reusable", "--valid-minutes", str(7 * 24 * 60)],
                   env=stack.env_for("operators"), cwd=REPO, check=True, capture_output=True)
    say("demo operator seeded")
    result = subprocess.run(
        [sys.executable, "-m", "services.matching.cli", "import", str(DEMO_SOCIAL_MAP)],
        env=stack.env_for("matching"), cwd=REPO, capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"demo social map import failed:\n{result.stdout}\n{result.stderr}")
    say("demo social map imported: " + (result.stdout.strip().splitlines() or ["done"])[-1])


def banner(stack: Stack) -> str:
    s = stack.services
    return f"""
signal-to-support is running (embedded default, demo data)

Operators  {s['operators'].url}/sign-in?token={DEMO_OPERATOR[1]}
           the operator console, signed in as the demo operator: health, flow, lag, dead letters

  Ingest API      {s['signals'].url}            docs: {s['signals'].url}/docs
  Municipalities  {s['municipalities'].url}/v1/municipalities/<code>/…   stream schema: {s['municipalities'].url}/asyncapi
  Mailbox         {stack.mailbox.url}/   (SMTP 127.0.0.1:{stack.config.smtp_port}; files in {stack.config.data_dir / 'mailbox'})
  Screening       {s['screening'].url}/healthz   /metrics
  Matching        {s['matching'].url}/healthz   /metrics
  Notify          {s['notify'].url}/healthz   /metrics
  Kafka (Tansu)   {stack.broker.bootstrap}
  PostgreSQL      {stack.postgres.dsn()}   (databases: signals, screening, matching, notify, municipalities, operators)
  Logs            {stack.config.data_dir / 'logs'}/*.log

  Demo API keys   demo-gp-key (GP practice), demo-wijkteam-key (neighbourhood team)
  Municipalities  demo-gm0327-key (Leusden, GM0327), demo-gm0307-key (Amersfoort, GM0307)
  Privacy officer {DEMO_PRIVACY_OFFICER_KEY} (erases a person across organisations: POST /v1/erasures)

  Try it:  curl -s -X POST {s['signals'].url}/v1/signals -H 'Authorization: Bearer demo-gp-key' \\
             -H 'Content-Type: application/json' -d @deploy/demo/signal.json
  Municipalities receive only groups of at least 10 persons: post 30 similar signals about
  30 different caregivers, and groups appear on GM0327's stream within seconds (3 would
  release nothing; a caregiver posted 30 times is still one person):
           for i in $(seq 30); do sed "s/Anna de Vries/Mantelzorger $i/; s/anna.devries/mz$i/" \\
             deploy/demo/signal.json | curl -s -o /dev/null -X POST {s['signals'].url}/v1/signals \\
             -H 'Authorization: Bearer demo-gp-key' -H 'Content-Type: application/json' -d @-; done
           curl -sN "{s['municipalities'].url}/v1/municipalities/GM0327/events?since=$(date +%F)" \\
             -H 'Authorization: Bearer demo-gm0327-key'
Press Ctrl-C to stop.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO / ".data", help="default: .data/")
    parser.add_argument("--no-demo", action="store_true", help="do not seed demo keys and social map")
    parser.add_argument("--log-format", choices=["json", "console"], default="json")
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(f"[run] {text}", flush=True)

    stack = Stack(StackConfig(data_dir=args.data_dir.resolve(), log_format=args.log_format), progress=say)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stack.start()
        if not args.no_demo:
            seed_demo(stack, say)
        print(banner(stack), flush=True)
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
