"""`flowctl worker` beside a bare SDK worker, and its memory with thousands of workflows waiting.

    .venv/bin/python bench/worker.py [--count 200] [--rounds 3]
    .venv/bin/python bench/worker.py --memory [--waiting 10000] [--step 1000]

Throughput (the default). One embedded server; `flowctl worker` and a bare temporalio worker
(this file run with --bare-worker) poll their own task queues, both up for the whole run.
Rounds alternate: `flowctl start order --from FILE --concurrency 200` starts N orders that
complete on their own (a total below the fraud-review threshold, a card the local services
accept), then an SDK client starts N bare workflows, 200 in flight. A bare workflow runs
what a completed order runs, minus the business: as many activities, one after the other,
each a no-op; the warm-up checks the counts match in both histories. A round's rate is
N / (last close time - first start time) as the server recorded them, so neither client's
start-up is counted. Every order must end `completed` (its FlowStatus). One untimed warm-up
round per side goes first: a fresh server and fresh workers are slower on their first tasks.
Beside the rates, each worker's CPU time per workflow (from /proc) over its rounds: on a
small machine both sides may wait on the same server, and the CPU says what each worker costs.
Target: flowctl >= 0.8x bare.

Memory (--memory). `flowctl worker --max-cached-workflows CACHE` (1000 by default, as in
flowctl's config), then onboarding workflows started `--step` at a time up to `--waiting`;
each waits for a verify-email signal that never comes. Once the worker has taken every
started workflow to its wait (FlowStatus awaiting_verification), the RSS of the worker process
and its children is read from /proc. The workflow cache bounds what the worker holds, so RSS
should stop growing once it is full: it is said to plateau when it grew at most 10% from the
first sample with twice the cache size waiting (else the half-way one) to the last. Stopping
the isolated server at the end disposes of the waiting workflows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client

with workflow.unsafe.imports_passed_through():
    import isolated

BIN = Path(sys.executable).parent
FLOWCTL = str(BIN / "flowctl")
BARE_QUEUE = "worker-bench-bare"
CONCURRENCY = 200
# A completed order's steps (workflows/order.py); the warm-up checks the count against a real history.
STEPS = ("reserve_inventory", "charge_payment", "fraud_screen", "create_shipment", "send_confirmation")
PLATEAU_GROWTH = 0.10

# What a mode runs against a fresh server: (client, environment, temp root, address) -> its report.
Body = Callable[[Client, dict[str, str], Path, str], Awaitable[dict[str, object]]]


@activity.defn(name="noop")
async def noop(step: str) -> dict[str, str]:
    return {}


@workflow.defn(name="BareOrder")
class BareOrder:
    """A completed order's shape without its business: one no-op activity per step, in turn."""

    @workflow.run
    async def run(self, order_id: str) -> str:
        for step in STEPS:
            await workflow.execute_activity(noop, step, start_to_close_timeout=timedelta(seconds=10))
        return order_id


async def bare_worker(address: str, task_queue: str) -> None:
    """Poll `task_queue` with SDK defaults until SIGTERM (the --bare-worker mode)."""
    from temporalio.worker import Worker

    client = await Client.connect(address)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    async with Worker(client, task_queue=task_queue, workflows=[BareOrder], activities=[noop]):
        print(f"bare worker ready: task queue {task_queue!r}", file=sys.stderr, flush=True)
        await stopping.wait()


async def launch(processes: list[subprocess.Popen[bytes]], command: list[str], env: dict[str, str], log: Path) -> int:
    """Start a worker (kept in `processes` for the caller to stop) and wait for its ready line."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    processes.append(proc)
    deadline = time.monotonic() + 60
    while "ready" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{command[1:3]} not ready (exit {proc.returncode}):\n{log.read_text()[-2000:]}")
        await asyncio.sleep(0.1)
    return proc.pid


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful drain), then SIGKILL if it is still there after a minute."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bulk_start(env: dict[str, str], root: Path, kind: str, tag: str, inputs: list[dict[str, object]]) -> None:
    """`flowctl start KIND --from FILE` at CONCURRENCY; every line must start."""
    lines = root / f"{kind}-{tag}.jsonl"
    lines.write_text("".join(json.dumps(item) + "\n" for item in inputs))
    run = subprocess.run(
        [FLOWCTL, "start", kind, "--from", str(lines), "--concurrency", str(CONCURRENCY)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    started = sum(1 for line in run.stdout.splitlines() if json.loads(line).get("run_id"))
    assert run.returncode == 0 and started == len(inputs), (run.returncode, started, run.stderr[-2000:])


async def wait_for(client: Client, query: str, count: int, *, timeout: float, failed: str | None = None) -> float:
    """Seconds until `count` workflows match `query`; stops early if any matches `failed`."""
    began = time.monotonic()
    while (await client.count_workflows(query)).count < count:
        if failed and (bad := (await client.count_workflows(failed)).count):
            raise RuntimeError(f"{bad} workflows matching {failed!r}")
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"fewer than {count} workflows match {query!r} after {timeout:.0f}s")
        await asyncio.sleep(0.25)
    return time.monotonic() - began


async def rate(client: Client, prefix: str, count: int) -> float:
    """Workflows per second between the first start and the last close the server recorded."""
    done = f"WorkflowId STARTS_WITH '{prefix}'"
    timeout = max(120.0, count / 2)
    await wait_for(client, f"{done} AND ExecutionStatus = 'Completed'", count, timeout=timeout,
                   failed=f"{done} AND ExecutionStatus != 'Running' AND ExecutionStatus != 'Completed'")  # fmt: skip
    starts, closes = [], []
    async for execution in client.list_workflows(done):
        starts.append(execution.start_time)
        closes.append(execution.close_time)
    assert len(closes) == count and None not in closes, (prefix, len(closes))
    return count / (max(c for c in closes if c) - min(starts)).total_seconds()


def order(order_id: str) -> dict[str, object]:
    return {"order_id": order_id, "customer_id": "c", "email": "b@example.com", "card": "tok_visa",
            "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 1}]}  # fmt: skip


async def flowctl_round(client: Client, env: dict[str, str], root: Path, tag: str, count: int) -> float:
    """Rate of `count` orders through `flowctl worker`, each of which must end `completed`."""
    bulk_start(env, root, "order", tag, [order(f"wb-{tag}-{i}") for i in range(count)])
    per_second = await rate(client, f"order-wb-{tag}-", count)
    completed = await client.count_workflows(f"WorkflowId STARTS_WITH 'order-wb-{tag}-' AND FlowStatus = 'completed'")
    assert completed.count == count, f"{count - completed.count} orders of round {tag} did not end completed"
    return per_second


async def bare_round(client: Client, tag: str, count: int) -> float:
    """Rate of `count` bare workflows through the bare worker, started CONCURRENCY at a time."""
    slots = asyncio.Semaphore(CONCURRENCY)

    async def start(i: int) -> None:
        async with slots:
            await client.start_workflow(BareOrder.run, f"{tag}-{i}", id=f"bare-{tag}-{i}", task_queue=BARE_QUEUE)

    await asyncio.gather(*(start(i) for i in range(count)))
    return await rate(client, f"bare-{tag}-", count)


async def activities_run(client: Client, workflow_id: str) -> int:
    from temporalio.api.enums.v1 import EventType

    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)


async def with_server(name: str, body: Body) -> None:
    """Run `body` against a fresh isolated server, stopped come what may; its state is kept on failure."""
    root = Path(tempfile.mkdtemp(prefix=f"flowctl-{name}-"))
    env, port = isolated.setup(root, name)
    subprocess.run([FLOWCTL, "server", "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        client = await Client.connect(f"127.0.0.1:{port}")
        report = await body(client, env, root, f"127.0.0.1:{port}")
    except BaseException:
        print(f"worker logs and server state kept in {root}", file=sys.stderr)
        raise
    finally:
        subprocess.run([FLOWCTL, "server", "stop"], env=env, stdout=subprocess.DEVNULL)
    shutil.rmtree(root)
    print(json.dumps(report, indent=2))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(pid: int, count: int, one_round: Awaitable[float]) -> tuple[float, float]:
    """(workflows per second, CPU ms per workflow of the worker `pid`) of one round."""
    before = cpu_seconds(pid)
    per_second = await one_round
    return per_second, (cpu_seconds(pid) - before) * 1000 / count


def throughput(count: int, rounds: int) -> Body:
    async def body(client: Client, env: dict[str, str], root: Path, address: str) -> dict[str, object]:
        processes: list[subprocess.Popen[bytes]] = []
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        try:
            flowctl_pid = await launch(processes, [FLOWCTL, "worker"], env, root / "flowctl-worker.log")
            bare = [sys.executable, str(Path(__file__).resolve()), "--bare-worker", "--address", address]
            bare_pid = await launch(processes, bare, env, root / "bare-worker.log")
            await flowctl_round(client, env, root, "warm-up", 20)
            await bare_round(client, "warm-up", 20)
            shape = {"order": await activities_run(client, "order-wb-warm-up-0"),
                     "bare": await activities_run(client, "bare-warm-up-0")}  # fmt: skip
            assert shape["order"] == shape["bare"] == len(STEPS), f"activities per workflow differ: {shape}"
            for r in range(rounds):
                ours.append(await measured(flowctl_pid, count, flowctl_round(client, env, root, f"r{r}", count)))
                theirs.append(await measured(bare_pid, count, bare_round(client, f"r{r}", count)))
        finally:
            for proc in processes:
                stop(proc)
        med = statistics.median
        return {
            "rounds": rounds, "workflows_per_round": count, "activities_per_workflow": len(STEPS),
            "start_concurrency": CONCURRENCY,
            "flowctl_worker": {"per_second": [round(x, 1) for x, _ in ours],
                               "cpu_ms_per_workflow": [round(y, 1) for _, y in ours]},
            "bare_sdk_worker": {"per_second": [round(x, 1) for x, _ in theirs],
                                "cpu_ms_per_workflow": [round(y, 1) for _, y in theirs]},
            "ratio": round(med(x for x, _ in ours) / med(x for x, _ in theirs), 3),
            "cpu_ratio": round(med(y for _, y in ours) / med(y for _, y in theirs), 2),
            "target": "ratio >= 0.8",
        }  # fmt: skip

    return body


def status_kib(pid: int, field: str) -> int:
    """A size from /proc/PID/status (VmRSS, VmHWM), 0 if the process is gone."""
    try:
        found = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    except OSError:
        return 0
    return int(found.group(1)) if found else 0


def rss_kib(pid: int) -> tuple[int, int]:
    """(summed VmRSS, process count) of `pid` and its descendants."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces and parentheses; the parent pid follows the last ')'.
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(status_kib(member, "VmRSS") for member in tree), len(tree)


def plateau_from(samples: list[dict[str, float]], cache: int, waiting: int) -> dict[str, float]:
    """The sample growth is measured from: the first with twice the cache waiting, else the one half-way."""
    full = [s for s in samples[:-1] if s["waiting"] >= 2 * cache]
    return full[0] if full else min(samples, key=lambda s: abs(s["waiting"] - waiting / 2))


def user(i: int) -> dict[str, object]:
    return {"user_id": f"mem-{i}", "email": f"mem{i}@example.com", "name": "Bench User"}


def memory(waiting: int, step: int, cache: int) -> Body:
    async def body(client: Client, env: dict[str, str], root: Path, address: str) -> dict[str, object]:
        processes: list[subprocess.Popen[bytes]] = []
        samples: list[dict[str, float]] = []
        try:
            command = [FLOWCTL, "worker", "--max-cached-workflows", str(cache)]
            pid = await launch(processes, command, env, root / "flowctl-worker.log")
            idle, _ = rss_kib(pid)
            for first in range(0, waiting, step):
                total = min(first + step, waiting)
                began = time.monotonic()
                bulk_start(env, root, "onboarding", str(total), [user(i) for i in range(first, total)])
                await wait_for(client, "FlowStatus = 'awaiting_verification'", total, timeout=max(300.0, step / 2),
                               failed="WorkflowType = 'Onboarding' AND ExecutionStatus != 'Running'")  # fmt: skip
                kib, count = rss_kib(pid)
                samples.append({"waiting": total, "rss_mib": round(kib / 1024, 1), "processes": count,
                                "seconds_to_wait": round(time.monotonic() - began, 1)})  # fmt: skip
            peak = status_kib(pid, "VmHWM")
        finally:
            for proc in processes:
                stop(proc)
        after = plateau_from(samples, cache, waiting)
        growth = samples[-1]["rss_mib"] - after["rss_mib"]
        return {
            "waiting": waiting, "max_cached_workflows": cache, "idle_rss_mib": round(idle / 1024, 1),
            "samples": samples, "worker_peak_rss_mib": round(peak / 1024, 1),
            "growth_after_cache_full_mib": round(growth, 1),
            "mib_per_1000_more_waiting": round(growth * 1000 / max(1.0, waiting - after["waiting"]), 1),
            "plateaus": growth <= PLATEAU_GROWTH * after["rss_mib"],
            "plateau_means": f"RSS grew at most {PLATEAU_GROWTH:.0%} from {after['waiting']:.0f} to {waiting} waiting",
        }  # fmt: skip

    return body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200, help="workflows per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="measure worker RSS with workflows waiting instead")
    parser.add_argument("--waiting", type=int, default=10_000, help="--memory: workflows left waiting")
    parser.add_argument("--step", type=int, default=1_000, help="--memory: workflows started between samples")
    parser.add_argument("--cache", type=int, default=1_000, help="--memory: the worker's --max-cached-workflows")
    parser.add_argument("--bare-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        asyncio.run(bare_worker(args.address, BARE_QUEUE))
    elif args.memory:
        asyncio.run(with_server("worker-memory", memory(args.waiting, args.step, args.cache)))
    else:
        asyncio.run(with_server("worker-bench", throughput(args.count, args.rounds)))


if __name__ == "__main__":
    main()
