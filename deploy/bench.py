"""Benchmark: post N signals at a given rate and measure how fast they reach ``notified``.

    make bench                                 # 2,000 signals at 100/s: into `make run` when it runs
                                               # (watch it on the operator console), else a fresh stack
    make bench ARGS="--count 500 --rate 50"
    make bench ARGS="--fresh"                  # always a fresh embedded stack of its own
    make bench ARGS="--replicas 1 2"           # a fresh stack with one, then two instances of
                                               # screening, matching, notify and municipalities
    make bench ARGS="--ingest-only --count 3000 --rate 1000"   # the API alone: accepted/s
    python -m deploy.bench --url http://127.0.0.1:8080 --key demo-gp-key   # a running stack

Throughput is accepted signals per second (ingest) and notified signals per second (end to
end); latency is, per signal, the time from ``received`` to the first ``notified`` stage in
its status timeline. Next to them, the same run measures a bare relay on the same broker
(consume → produce over four topics, batched, no database): the ceiling the pipeline's
end-to-end rate is compared with. On a fresh stack it reports every service process's memory
(RSS) before the signals and after them. Results are printed and written to
``bench-results/``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from deploy.stack import REPO, Stack, StackConfig
from shared.commandline import new_parser, progress
from shared.config import running_stack, running_stack_database

DEMO_SIGNAL = json.loads((REPO / "deploy" / "demo" / "signal.json").read_text())


def signal_for(i: int, run: str) -> dict[str, Any]:
    signal = json.loads(json.dumps(DEMO_SIGNAL))
    signal["caregiver"]["name"] = f"Bench {run} {i}"
    signal["caregiver"]["email"] = f"bench-{run}-{i}@example.nl"
    signal["source"]["reference"] = f"BENCH-{run}-{i}"
    return signal


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Poster:
    """HTTP/1.1 POSTs over a pool of keep-alive connections, in plain asyncio. The load
    generator shares the machine with the stack: httpx's own cost per request (a few
    milliseconds of CPU, more under concurrency) held an empty FastAPI endpoint on this machine
    to under 400 requests/s where this client reaches 2,500."""

    def __init__(self, url: str, connections: int) -> None:
        parsed = urlsplit(url)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parsed.scheme == "https" else None
        self._idle: asyncio.Queue[_Connection | None] = asyncio.Queue()
        for _ in range(connections):
            self._idle.put_nowait(None)  # a slot; connected on first use

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        head = f"POST {path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Type: application/json\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        connection = await self._idle.get()
        try:
            if connection is not None:
                try:
                    return self._keep(connection, *await self._exchange(connection, request))
                except (OSError, asyncio.IncompleteReadError):
                    # The server closed it while it was idle (uvicorn's keep-alive is 5 s): no
                    # answer came, so sending again (same Idempotency-Key) on a new one is safe.
                    connection[1].close()
            connection = await asyncio.open_connection(self._host, self._port, ssl=self._ssl)
            return self._keep(connection, *await self._exchange(connection, request))
        except BaseException:
            if connection is not None:
                connection[1].close()
            self._idle.put_nowait(None)
            raise

    @staticmethod
    async def _exchange(connection: _Connection, request: bytes) -> tuple[int, dict[str, str], bytes]:
        reader, writer = connection
        writer.write(request)
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        answer = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        content = await reader.readexactly(int(answer.get("content-length", "0")))
        return int(status_line.split()[1]), answer, content

    def _keep(
        self, connection: _Connection, status: int, answer: dict[str, str], content: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if answer.get("connection") == "close":
            connection[1].close()
            self._idle.put_nowait(None)
        else:
            self._idle.put_nowait(connection)
        return status, answer, content

    async def close(self) -> None:
        while not self._idle.empty():
            if (connection := self._idle.get_nowait()) is not None:
                connection[1].close()


async def post_signals(url: str, key: str, count: int, rate: float) -> dict[str, Any]:
    """Post ``count`` signals at ``rate``/s, open loop; a shed request (429/503) is sent again
    with the same Idempotency-Key after its Retry-After, as a partner's client would."""
    run_id = uuid.uuid4().hex[:6]
    ids: list[str] = []
    failures: list[str] = []
    retries: list[int] = []
    poster = Poster(url, connections=64)
    bar = progress("posting", count, unit="signals")
    started = time.monotonic()

    async def post(i: int) -> None:
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"bench-{run_id}-{i}"}
        body = json.dumps(signal_for(i, run_id)).encode()
        try:
            while True:
                status, answer, content = await asyncio.wait_for(poster.post("/v1/signals", body, headers), 30)
                if status not in (429, 503):
                    break
                retries.append(status)
                await asyncio.sleep(float(answer.get("retry-after", "1")))
            if status != 202:
                failures.append(f"HTTP {status}: {content[:150]!r}")
                return
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:  # overload: count, don't hide
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        ids.append(json.loads(content)["id"])
        bar.update(1)

    inflight: set[asyncio.Task[None]] = set()
    for i in range(count):
        # Open-loop pacing: send on schedule whether or not earlier requests finished.
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(post(i))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    await asyncio.gather(*inflight)
    seconds = time.monotonic() - started
    bar.close()
    await poster.close()
    return {
        "ids": ids,
        "started": started,
        "accepted": len(ids),
        "post_failures": len(failures),
        "post_failure_examples": sorted(set(failures))[:3],
        "posts_shed_and_retried": len(retries),
        "ingest_throughput_per_s": round(len(ids) / seconds, 1),
    }


async def notified_from_database(database_url: str, ids: list[str], deadline: float) -> dict[str, float]:
    """Per signal, seconds from its ``received`` stage to its first ``notified`` one, read
    from the signals database: the timeline the status API shows, without a request per
    signal competing with the pipeline for the machine."""
    conn = await asyncpg.connect(database_url)
    latencies: dict[str, float] = {}
    bar = progress("notified", len(ids), unit="signals")
    try:
        pending = [uuid.UUID(i) for i in ids]
        while pending and time.monotonic() < deadline:
            rows = await conn.fetch(
                """SELECT signal_id,
                          min(occurred_at) FILTER (WHERE stage = 'received') AS received,
                          min(occurred_at) FILTER (WHERE stage = 'notified') AS notified
                   FROM signal_stages WHERE signal_id = ANY($1::uuid[])
                   GROUP BY signal_id HAVING bool_or(stage = 'notified')""",
                pending,
            )
            for row in rows:
                latencies[str(row["signal_id"])] = (row["notified"] - row["received"]).total_seconds()
            bar.update(len(rows))
            done = {row["signal_id"] for row in rows}
            pending = [i for i in pending if i not in done]
            if pending:
                await asyncio.sleep(0.5)
    finally:
        bar.close()
        await conn.close()
    return latencies


async def notified_from_api(url: str, key: str, ids: list[str], deadline: float) -> dict[str, float]:
    """The same from the status API, for a stack whose database the benchmark cannot reach."""
    headers = {"Authorization": f"Bearer {key}"}
    latencies: dict[str, float] = {}
    bar = progress("notified", len(ids), unit="signals")
    pending = set(ids)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while pending and time.monotonic() < deadline:
            for signal_id in list(pending):
                response = await client.get(f"/v1/signals/{signal_id}", headers=headers)
                if response.status_code == 429:  # the key's read rate: wait as told
                    await asyncio.sleep(int(response.headers.get("Retry-After", "1")))
                    continue
                stages = {t["stage"]: t["at"] for t in reversed(response.json()["timeline"])}
                if "notified" in stages:
                    latencies[signal_id] = (
                        datetime.fromisoformat(stages["notified"]) - datetime.fromisoformat(stages["received"])
                    ).total_seconds()
                    pending.discard(signal_id)
                    bar.update(1)
            if pending:
                await asyncio.sleep(0.5)
    bar.close()
    return latencies


async def run(
    url: str,
    key: str,
    count: int,
    rate: float,
    timeout: float,
    *,
    ingest_only: bool = False,
    database_url: str | None = None,
) -> dict[str, Any]:
    posted = await post_signals(url, key, count, rate)
    ids, started = posted.pop("ids"), posted.pop("started")
    result = {"count": count, "rate_requested_per_s": rate, **posted}
    if ingest_only:
        return {"mode": "ingest-only", **result, "not_notified_within_timeout": 0}
    deadline = time.monotonic() + timeout
    if database_url:
        latencies = await notified_from_database(database_url, ids, deadline)
    else:
        latencies = await notified_from_api(url, key, ids, deadline)
    total_seconds = time.monotonic() - started
    values = list(latencies.values())
    return {
        **result,
        "notified": len(values),
        "not_notified_within_timeout": len(ids) - len(values),
        "end_to_end_throughput_per_s": round(len(values) / total_seconds, 1) if values else 0,
        "latency_s": {
            "p50": round(percentile(values, 50), 3),
            "p95": round(percentile(values, 95), 3),
            "p99": round(percentile(values, 99), 3),
            "max": round(max(values), 3),
            "mean": round(statistics.fmean(values), 3),
        }
        if values
        else None,
        "p50_latency_s_by_tenth": by_tenth(ids, latencies),
    }


def by_tenth(ids: list[str], latencies: dict[str, float]) -> list[float]:
    """The median latency of each tenth of the signals in the order they were accepted: flat
    when a signal costs as much late in a long run (with history behind it) as early on."""
    bounds = [len(ids) * k // 10 for k in range(11)]
    parts = [[latencies[i] for i in ids[a:b] if i in latencies] for a, b in itertools.pairwise(bounds)]
    return [round(statistics.median(part), 3) for part in parts if part]


async def bare_relay(bootstrap: str, messages: int = 20_000, hops: int = 4) -> dict[str, Any]:
    """Messages through ``hops`` consume → produce relays on the broker alone (batched, no
    database, no service): what the broker and aiokafka can move on this machine."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topics = [f"bench-relay-{uuid.uuid4().hex[:6]}-{hop}" for hop in range(hops + 1)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in topics])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, enable_idempotence=False)
    await producer.start()
    # One reader per topic, by assign(): group subscription hangs against the embedded broker.
    readers = [
        AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=10
        )
        for _ in topics
    ]
    for reader, topic in zip(readers, topics, strict=True):
        await reader.start()
        reader.assign([TopicPartition(topic, 0)])

    async def relay(reader: Any, target: str | None) -> None:
        """Consume ``messages`` records and pass each on to ``target`` (None: the sink)."""
        moved = 0
        while moved < messages:
            for records in (await reader.getmany(timeout_ms=100, max_records=2000)).values():
                for record in records:
                    if target:
                        await producer.send(target, record.value, key=record.key)
                moved += len(records)

    async def source() -> None:
        body = json.dumps(DEMO_SIGNAL).encode()  # about a signal's size
        for i in range(messages):
            await producer.send(topics[0], body, key=str(i % 64).encode())

    started = time.monotonic()
    try:
        await asyncio.gather(
            source(), *(relay(reader, target) for reader, target in zip(readers, [*topics[1:], None], strict=True))
        )
        seconds = time.monotonic() - started
    finally:
        for reader in readers:
            await reader.stop()
        await producer.stop()
    return {"messages": messages, "hops": hops, "throughput_per_s": round(messages / seconds, 1)}


def rss_mib(stack: Stack) -> dict[str, float]:
    """Resident memory of every service process of ``stack`` (MiB), from /proc."""
    sizes = {}
    for name, service in stack.services.items():
        if service.process is None:
            continue
        try:
            status = Path(f"/proc/{service.process.pid}/status").read_text()
        except OSError:  # exited meanwhile
            continue
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        sizes[name] = round(kib / 1024, 1)
    return sizes


def _cpu_of(pid: int, children: bool = False) -> float:
    """CPU seconds a process has used (with ``children``: and its reaped children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _postgres_cpu(data_dir: Path) -> float:
    """The postmaster's CPU, its exited backends' and its live backends'."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = _cpu_of(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    total += _cpu_of(int(entry.name))
    return total


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by every process of ``stack``: each service (its instances
    summed), PostgreSQL, the broker and the mailbox; the difference over a run, divided by
    the signals, is what one signal costs the machine."""
    used: dict[str, float] = {}
    processes = [(service.service or name, service.process) for name, service in stack.services.items()]
    processes.append(("broker", getattr(stack.broker, "process", None)))
    for name, process in processes:
        if process is not None:
            with contextlib.suppress(OSError):
                used[name] = used.get(name, 0.0) + _cpu_of(process.pid)
    if isinstance(data_dir := getattr(stack.postgres, "data_dir", None), Path):
        with contextlib.suppress(OSError, ValueError):
            used["postgres"] = _postgres_cpu(data_dir)
    return used


def cost_per_signal(before: dict[str, float], after: dict[str, float], signals: int) -> dict[str, float]:
    """Milliseconds of CPU per signal, by process, and their sum."""
    costs = {name: round(1000 * (after[name] - before.get(name, 0.0)) / max(signals, 1), 1) for name in after}
    return {**dict(sorted(costs.items(), key=lambda kv: -kv[1])), "total": round(sum(costs.values()), 1)}


# `make run`'s ingest API: a benchmark into it shows on its operator console as it runs.
MAKE_RUN_URL = "http://127.0.0.1:8080"


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def measure(
    url: str,
    broker: str | None,
    args: argparse.Namespace,
    stack: Stack | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """One measurement against the ingest API at ``url``: the bare relay on ``broker`` first
    (when known), then the signals, followed in the signals database when it is known (else
    through the status API); with ``stack`` (a fresh one) the services' memory too."""
    relay = None
    if broker and args.relay_messages and not args.ingest_only:
        print(f"[bench] bare relay: {args.relay_messages} messages through 4 hops on {broker}", file=sys.stderr)
        relay = asyncio.run(bare_relay(broker, args.relay_messages))
    rss_before = rss_mib(stack) if stack else None
    cpu_before = cpu_seconds(stack) if stack else None
    if stack is not None:
        database_url = stack.services["signals"].env["SIGNALS_DATABASE_URL"]
    result = asyncio.run(
        run(url, args.key, args.count, args.rate, args.timeout, ingest_only=args.ingest_only, database_url=database_url)
    )
    if relay:
        result["bare_relay"] = relay
        result["end_to_end_share_of_relay_pct"] = round(
            100 * result["end_to_end_throughput_per_s"] / relay["throughput_per_s"], 2
        )
    if stack:
        result["replicas"] = stack.config.replicas
        result["rss_mib"] = {"start": rss_before, "end": rss_mib(stack)}
        # Measured when the last signal was notified (or the wait timed out): work that is
        # still to come (follow-ups days later) is not in it.
        result["cpu_ms_per_signal"] = cost_per_signal(cpu_before or {}, cpu_seconds(stack), result["accepted"])
    return result


def fresh_stack(replicas: int) -> Stack:
    from deploy.run import seed_demo

    config = StackConfig.ephemeral(Path(tempfile.mkdtemp(prefix="sts-bench-")), replicas=replicas)
    config.extra_env = {"NOTIFY_MAILBOX_DIR": str(config.data_dir / "mailbox")}
    stack = Stack(config, progress=lambda t: print(f"[bench] {t}", file=sys.stderr))
    try:
        stack.start()
        seed_demo(stack, lambda t: print(f"[bench] {t}", file=sys.stderr))
    except BaseException:
        stack.stop()
        raise
    return stack


def main(argv: list[str] | None = None) -> int:
    parser = new_parser("python -m deploy.bench", __doc__)
    parser.add_argument("--count", type=int, default=2000, help="signals to post (default 2000)")
    parser.add_argument("--rate", type=float, default=100, help="signals per second (default 100)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for all to be notified")
    parser.add_argument(
        "--url", help="a running ingest API; default: the one of `make run` if it answers, else a fresh embedded stack"
    )
    parser.add_argument("--fresh", action="store_true", help="start a fresh embedded stack even if `make run` runs")
    parser.add_argument(
        "--replicas",
        type=int,
        nargs="+",
        metavar="N",
        help="instances of screening, matching, notify and municipalities on a fresh stack; "
        "several values measure one fresh stack each (e.g. --replicas 1 2)",
    )
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="measure the ingest API alone: accepted signals per second, no waiting for notified",
    )
    parser.add_argument("--key", default="demo-gp-key", help="API key (default demo-gp-key)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results", help="where to write the JSON result")
    parser.add_argument(
        "--broker",
        help="the stack's Kafka bootstrap servers, for the bare relay next to a --url "
        "stack (default: the fresh stack's, or `make run`'s)",
    )
    parser.add_argument(
        "--relay-messages", type=int, default=20_000, help="messages through the bare relay (default 20000; 0: skip it)"
    )
    args = parser.parse_args(argv)
    if args.replicas and args.url:
        parser.error("--replicas starts fresh stacks of its own: leave out --url")
    if any(n < 1 for n in args.replicas or []):
        parser.error("--replicas takes counts of 1 or more")

    url, broker = args.url, args.broker
    if url is None and not args.fresh and not args.replicas and _answers(MAKE_RUN_URL):
        url = MAKE_RUN_URL
        broker = broker or (running_stack() or {}).get("broker")
        print(
            f"[bench] posting into the running `make run` stack at {url} (--fresh for a stack of its own)",
            file=sys.stderr,
        )
    runs: list[dict[str, Any]] = []
    if url is not None:
        runs.append(
            measure(url, broker, args, database_url=running_stack_database("signals") if url == MAKE_RUN_URL else None)
        )
    for replicas in args.replicas or ([] if url is not None else [1]):
        stack = fresh_stack(replicas)
        try:
            runs.append(measure(stack.services["signals"].url, stack.broker.bootstrap, args, stack))
        finally:
            stack.stop()
    fresh = url is None
    result: dict[str, Any] = runs[0] if len(runs) == 1 else {"runs": runs}
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "broker": "tansu (embedded)" if fresh else "given",
    }
    result["at"] = datetime.now().isoformat(timespec="seconds")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if len(runs) > 1:
        for r in runs:
            print(
                f"[bench] {r['replicas']} instance(s): ingest {r['ingest_throughput_per_s']}/s, end to end "
                f"{r.get('end_to_end_throughput_per_s', '-')}/s",
                file=sys.stderr,
            )
    print(f"written to {out}", file=sys.stderr)
    return 0 if all(r["not_notified_within_timeout"] == 0 and r["post_failures"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
