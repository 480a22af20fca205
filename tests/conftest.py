"""Infrastructure for the tests: a real PostgreSQL and a real Kafka-compatible broker.

Each comes from the environment when given (``TEST_DATABASE_URL``, an admin URL, and
``KAFKA_BOOTSTRAP_SERVERS``), from testcontainers when a Docker engine answers, and from
the embedded PostgreSQL and Tansu otherwise. Nothing is mocked."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import settings

from deploy.stack import REPO, EmbeddedPostgres, Tansu, create_databases, free_port
from tests.tools import CHROMIUM_ARGS, ensure_debian_tool

# The property tests check what holds, not how fast: on two cores shared with a stack, an
# example can take longer than hypothesis' 200 ms default deadline without anything wrong.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

# Screenshots of the browser tests, kept as test artifacts (CI can collect this folder).
ARTIFACTS = REPO / "test-artifacts"


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def docker_available() -> bool:
    return _docker_available()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory, docker_available: bool) -> Iterator[str]:
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
    elif docker_available:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:17", driver=None) as pg:
            yield pg.get_connection_url()
    else:
        server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", free_port(), durable=False)
        server.start()
        try:
            yield server.dsn()
        finally:
            server.stop()


@dataclass(frozen=True)
class KafkaUnderTest:
    bootstrap: str
    idempotence: bool  # real Kafka: on; Tansu lacks InitProducerId


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory, docker_available: bool) -> Iterator[KafkaUnderTest]:
    if bootstrap := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield KafkaUnderTest(bootstrap, os.environ.get("KAFKA_IDEMPOTENCE", "false").lower() == "true")
    elif docker_available:
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield KafkaUnderTest(container.get_bootstrap_server(), True)
    else:
        broker = Tansu(free_port(), tmp_path_factory.mktemp("tansu") / "tansu.log")
        broker.start()
        try:
            yield KafkaUnderTest(broker.bootstrap, False)
        finally:
            broker.stop()


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """A new, empty database on the test server."""
    from deploy.stack import ExternalPostgres

    name = f"t_{uuid.uuid4().hex[:12]}"
    create_databases(postgres_url, [name])
    return ExternalPostgres(postgres_url).dsn(name)


@pytest.fixture(scope="session")
async def browser() -> Any:
    """Debian's Chromium driven by Playwright; no browser is downloaded at run time."""
    from playwright.async_api import async_playwright

    executable = ensure_debian_tool("chromium", "chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser: Any, request: pytest.FixtureRequest) -> Any:
    """A fresh browser page; its last state is kept as ``test-artifacts/<test>.png``."""
    context = await browser.new_context(locale="nl-NL")
    # Seven services and a browser share two cores in CI: a page may take longer than
    # Playwright's 30 s default to answer while another test's stack is still busy.
    context.set_default_timeout(90_000)
    page = await context.new_page()
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        name = request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
        await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        await context.close()
