"""`flowctl wait --from` beside the loop a script wrote before it: `xargs -P 8 flowctl result`.

    .venv/bin/python bench/wait.py [--count 200] [--rounds 3]

One embedded server and a worker. Each round bulk-starts two batches of N orders that complete
on their own (`start order --from`, its output kept), waits until the server has closed them
all, then times, side by side, how long each way takes to report every one's outcome from its
batch's file: `xargs -P 8 -n 1 flowctl result` over the workflow ids, and one
`flowctl wait --from FILE`. Both read workflows that have ended, so what is timed is the
waiting tool, not the workflows. Target: wait >= 5x faster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from temporalio.client import Client
from worker import FLOWCTL, launch, order, stop, wait_for, with_server


def batch(env: dict[str, str], root: Path, tag: str, count: int) -> Path:
    lines = root / f"orders-{tag}.jsonl"
    lines.write_text("".join(json.dumps(order(f"wt-{tag}-{i}")) + "\n" for i in range(count)))
    run = subprocess.run([FLOWCTL, "start", "order", "--from", str(lines)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    started = root / f"started-{tag}.jsonl"
    started.write_text(run.stdout)
    return started


def timed(command: str | list[str], env: dict[str, str], *, shell: bool = False) -> float:
    began = time.perf_counter()
    run = subprocess.run(command, env=env, shell=shell, capture_output=True, text=True)
    assert run.returncode == 0, (command, run.returncode, run.stderr[-2000:])
    return time.perf_counter() - began


async def body(
    client: Client, env: dict[str, str], root: Path, address: str, args: argparse.Namespace
) -> dict[str, Any]:
    processes: list[subprocess.Popen[bytes]] = []
    try:
        await launch(processes, [FLOWCTL, "worker"], env, root / "worker.log")
        loops, waits = [], []
        for r in range(args.rounds):
            files = {side: batch(env, root, f"{side}{r}", args.count) for side in ("loop", "wait")}
            for side in files:
                query = f"WorkflowId STARTS_WITH 'order-wt-{side}{r}-' AND ExecutionStatus = 'Completed'"
                await wait_for(client, query, args.count, timeout=300)
            ids = root / f"ids-{r}.txt"
            ids.write_text(
                "".join(json.loads(line)["workflow_id"] + "\n" for line in files["loop"].read_text().splitlines())
            )
            loops.append(timed(f"xargs -P 8 -n 1 {FLOWCTL} result < {ids} > /dev/null", env, shell=True))
            waits.append(timed([FLOWCTL, "wait", "--from", str(files["wait"]), "-o", "jsonl"], env))
    finally:
        for proc in processes:
            stop(proc)
    loop, wait = statistics.median(loops), statistics.median(waits)
    return {
        "workflows_per_round": args.count,
        "xargs_P8_flowctl_result_s": [round(v, 2) for v in loops],
        "flowctl_wait_from_s": [round(v, 2) for v in waits],
        "wait_speedup": round(loop / wait, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    async def run(client: Client, env: dict[str, str], root: Path, address: str) -> dict[str, Any]:
        return await body(client, env, root, address, args)

    asyncio.run(with_server("wait", run))


if __name__ == "__main__":
    main()
