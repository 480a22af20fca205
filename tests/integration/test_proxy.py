"""The production proxy for real: Debian's Caddy (installed by apt-get when missing) runs
deploy/proxy/Caddyfile with certificates from deploy/certs/create-certs.sh, in front of stand-in
upstreams that say who answered. Public routes reach their service over TLS verified against
the CA; metrics, API documentation, internal routes and the internal-only services do not."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.stack import free_port
from tests.tools import ensure_debian_tool

REPO = Path(__file__).resolve().parents[2]
HOST = "steun.example.nl"
UPSTREAMS = ("signals", "notify", "municipalities", "matching", "casework", "operators", "grafana")
# The workbench, the console and Grafana answer on names of their own (their pages use root paths).
HOSTS = {"casework": f"werkbank.{HOST}", "operators": f"beheer.{HOST}", "grafana": f"grafana.{HOST}"}


class _Upstream(http.server.BaseHTTPRequestHandler):
    name = ""
    seen: list[str]

    def _answer(self) -> None:
        self.seen.append(self.path)
        body = f"{self.name} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    caddy = ensure_debian_tool("caddy", "caddy")
    certs = tmp_path_factory.mktemp("certs")
    subprocess.run(
        ["bash", str(REPO / "deploy" / "certs" / "create-certs.sh"), str(certs)],
        check=True,
        capture_output=True,
        timeout=300,
        env={"PATH": os.environ["PATH"], "PUBLIC_HOST": HOST, "KAFKA_SSL_KEYSTORE_PASSWORD": "pw"},
    )
    servers: list[http.server.ThreadingHTTPServer] = []
    seen: dict[str, list[Any]] = {}
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(certs),
        "XDG_DATA_HOME": str(certs / "data"),
        "XDG_CONFIG_HOME": str(certs / "config"),
        "PUBLIC_HOST": HOST,
        "PROXY_HTTPS_PORT": str(free_port()),
        "PROXY_HTTP_PORT": str(free_port()),
        "PROXY_TLS_CERT": str(certs / "public.crt"),
        "PROXY_TLS_KEY": str(certs / "public.key"),
        **{f"{name.upper()}_PUBLIC_HOST": host for name, host in HOSTS.items()},
    }
    for name in UPSTREAMS:
        seen[name] = []
        handler = type(name, (_Upstream,), {"name": name, "seen": seen[name]})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        env[f"{name.upper()}_UPSTREAM"] = f"127.0.0.1:{server.server_port}"
    process = subprocess.Popen(
        [caddy, "run", "--config", str(REPO / "deploy" / "proxy" / "Caddyfile"), "--adapter", "caddyfile"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    port = int(env["PROXY_HTTPS_PORT"])
    try:
        for _ in range(300):
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            if (
                subprocess.run(
                    [
                        "curl",
                        "-s",
                        "-o",
                        "/dev/null",
                        "--resolve",
                        f"{HOST}:{port}:127.0.0.1",
                        "--cacert",
                        str(certs / "ca.crt"),
                        f"https://{HOST}:{port}/",
                    ]
                ).returncode
                == 0
            ):
                break
            time.sleep(0.2)
        yield {"port": port, "ca": certs / "ca.crt", "seen": seen}
    finally:
        process.terminate()
        process.wait(30)
        for server in servers:
            server.shutdown()
            server.server_close()


def fetch(proxy: dict[str, Any], path: str, *extra: str, host: str = HOST) -> tuple[int, str, str]:
    """(status, body, headers) of an https request to the proxy, the certificate verified."""
    result = subprocess.run(
        [
            "curl",
            "-s",
            "-D",
            "-",
            "--resolve",
            f"{host}:{proxy['port']}:127.0.0.1",
            "--cacert",
            str(proxy["ca"]),
            *extra,
            f"https://{host}:{proxy['port']}{path}",
        ],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.decode().partition("\r\n\r\n")  # bytes: keep the CRLFs
    return int(head.split()[1]), body, head


@pytest.mark.parametrize(
    "path, upstream",
    [
        ("/v1/signals", "signals"),
        ("/v1/signals/0d9c", "signals"),
        ("/v1/erasures", "signals"),
        ("/v1/instruments", "signals"),
        ("/v1/referrals/7/status", "notify"),
        ("/r/7/accept?t=x", "notify"),
        ("/f/9/yes", "notify"),
        ("/v1/municipalities/GM0327/events", "municipalities"),
        ("/melden", "signals"),
        ("/aanmelden/zorg", "signals"),
        ("/mijn/5", "signals"),
        ("/sociale-kaart", "matching"),
    ],
)
def test_public_routes_reach_their_service_over_tls(proxy, path, upstream):
    status, body, headers = fetch(proxy, path)
    assert (status, body) == (200, f"{upstream} {path}")
    assert "strict-transport-security: max-age=31536000" in headers.lower()


@pytest.mark.parametrize(
    "upstream, path",
    [
        ("casework", "/"),
        ("casework", "/zaken/3"),
        ("operators", "/"),
        ("operators", "/dead-letters"),
        ("grafana", "/d/pipeline"),
    ],
)
def test_the_workbench_console_and_grafana_answer_on_their_own_names(proxy, upstream, path):
    status, body, _ = fetch(proxy, path, host=HOSTS[upstream])
    assert (status, body) == (200, f"{upstream} {path}")


@pytest.mark.parametrize(
    "upstream, path",
    [
        ("casework", "/metrics"),
        ("casework", "/internal/keys/1"),
        ("operators", "/openapi.json"),
        ("operators", "/docs"),
    ],
)
def test_their_metrics_docs_and_internal_routes_are_not_published(proxy, upstream, path):
    before = {name: len(seen) for name, seen in proxy["seen"].items()}
    status, body, _ = fetch(proxy, path, host=HOSTS[upstream])
    assert (status, body) == (404, "Not Found")
    assert {name: len(seen) for name, seen in proxy["seen"].items()} == before


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/docs",
        "/openapi.json",
        "/asyncapi",
        "/asyncapi.json",
        "/internal/dead-letters",
        "/healthz",
        "/v1/admin/social-map",
        "/",
        "/v1/signalsx",
        "/v1/municipalities",
    ],
)
def test_everything_else_is_404_and_reaches_no_service(proxy, path):
    before = {name: len(seen) for name, seen in proxy["seen"].items()}
    status, body, _ = fetch(proxy, path)
    assert (status, body) == (404, "Not Found")
    assert {name: len(seen) for name, seen in proxy["seen"].items()} == before


def test_an_untrusted_client_sees_a_certificate_error(proxy):
    # Without the CA the trial certificate is not trusted: TLS is real, not a pass-through.
    result = subprocess.run(
        ["curl", "-s", "--resolve", f"{HOST}:{proxy['port']}:127.0.0.1", f"https://{HOST}:{proxy['port']}/v1/signals"],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 60  # curl: peer certificate cannot be authenticated
