"""Bulk start rate: `flowctl start --from` beside a shell loop of `temporal workflow start`.

    .venv/bin/python bench/bulk.py [--count 200] [--loop-count 50]

Both start order workflows on a task queue no worker polls (only starting is measured),
on the same embedded server, in the same run. Reports workflows started per second for
each and their ratio (target: flowctl >= 10x the loop).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import isolated

BIN = Path(sys.executable).parent
FLOWCTL = str(BIN / "flowctl")
TEMPORAL = str(BIN / "temporal")


def order(order_id: str) -> dict[str, object]:
    return {"order_id": order_id, "customer_id": "c", "email": "b@example.com",
            "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 1}]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--loop-count", type=int, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="flowctl-bulk-"))
    env, port = isolated.setup(root, "bulk-bench")
    subprocess.run([FLOWCTL, "server", "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        lines = root / "orders.jsonl"
        lines.write_text("".join(json.dumps(order(f"bulk-{i}")) + "\n" for i in range(args.count)))
        began = time.perf_counter()
        run = subprocess.run(
            [FLOWCTL, "start", "order", "--from", str(lines), "--concurrency", "200"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        flowctl_seconds = time.perf_counter() - began
        started = sum(1 for line in run.stdout.splitlines() if json.loads(line).get("run_id"))
        assert run.returncode == 0 and started == args.count, (run.returncode, started)

        began = time.perf_counter()
        for i in range(args.loop_count):
            subprocess.run(
                [TEMPORAL, "workflow", "start", "--type", "Order", "--task-queue", "bulk-bench",
                 "--workflow-id", f"order-loop-{i}", "--address", f"127.0.0.1:{port}",
                 "-i", json.dumps(order(f"loop-{i}"))],
                env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        loop_seconds = time.perf_counter() - began
    finally:
        subprocess.run([FLOWCTL, "server", "stop"], env=env, stdout=subprocess.DEVNULL)
    flowctl_rate = args.count / flowctl_seconds
    loop_rate = args.loop_count / loop_seconds
    print(json.dumps({
        "flowctl_bulk_workflows": args.count,
        "flowctl_bulk_seconds": round(flowctl_seconds, 2),
        "flowctl_bulk_per_second": round(flowctl_rate, 1),
        "temporal_cli_loop_workflows": args.loop_count,
        "temporal_cli_loop_seconds": round(loop_seconds, 2),
        "temporal_cli_loop_per_second": round(loop_rate, 1),
        "ratio": round(flowctl_rate / loop_rate, 1),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
