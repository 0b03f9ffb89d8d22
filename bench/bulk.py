"""Bulk start rate: `flowctl start --from` beside a shell loop of `temporal workflow start`.

    .venv/bin/python bench/bulk.py [--count 200 --count 1000] [--loop-count 50] [--rounds 5]

Both start order workflows on a task queue no worker polls (only starting is measured), on
the same embedded server, in alternating rounds of one run; the figures are medians over
the rounds. flowctl runs as a user would run it, with its default --concurrency (50). flowctl's rate is given two ways:
  - end to end: workflows / wall time of the whole `flowctl` process (start-up, imports,
    connecting and reading the file included). The ratio to the loop uses this one;
  - start phase: what flowctl itself reports, from its first start request to the last answer.
Bulk starts of 200 and of 1000 workflows are measured by default: the fixed cost of one
flowctl process (about 0.27 s here, most of it imports: typer, pydantic and the SDK's core)
weighs on 200, much less on 1000. Both sides mostly wait for the server, which writes every
start to SQLite one at a time: about 3 ms of server time per start, against the loop's
50-odd ms per `temporal` process.
Before the rounds, one untimed bulk and one untimed loop warm the fresh server up: its first
starts on a new task queue are several times slower, and whichever went first would pay for it.
Target: flowctl >= 10x the loop.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import statistics
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


def flowctl_round(env: dict[str, str], root: Path, tag: str, count: int) -> tuple[float, float]:
    """(end-to-end rate, start-phase rate) of one bulk start of `count` new orders."""
    lines = root / f"orders-{tag}.jsonl"
    lines.write_text("".join(json.dumps(order(f"bulk-{tag}-{i}")) + "\n" for i in range(count)))
    began = time.perf_counter()
    run = subprocess.run(
        [FLOWCTL, "start", "order", "--from", str(lines)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    started = sum(1 for line in run.stdout.splitlines() if json.loads(line).get("run_id"))
    assert run.returncode == 0 and started == count, (run.returncode, started, run.stderr)
    phase = re.search(r"failed in ([\d.]+)s", run.stderr)
    assert phase and float(phase.group(1)) > 0, run.stderr
    return count / seconds, count / float(phase.group(1))


def loop_round(env: dict[str, str], root: Path, port: int, tag: str, count: int) -> float:
    """Rate of a real shell loop (one bash process running `temporal workflow start` per line)."""
    script = root / f"loop-{tag}.sh"
    script.write_text(
        "set -e\n"
        + "".join(
            f"{shlex.quote(TEMPORAL)} workflow start --type Order --task-queue bulk-bench "
            f"--workflow-id order-loop-{tag}-{i} --address 127.0.0.1:{port} "
            f"-i {shlex.quote(json.dumps(order(f'loop-{tag}-{i}')))} >/dev/null\n"
            for i in range(count)
        )
    )
    began = time.perf_counter()
    subprocess.run(["bash", str(script)], env=env, check=True)
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, action="append", help="workflows per bulk start (repeatable)")
    parser.add_argument("--loop-count", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    counts = args.count or [200, 1000]
    root = Path(tempfile.mkdtemp(prefix="flowctl-bulk-"))
    env, port = isolated.setup(root, "bulk-bench")
    subprocess.run([FLOWCTL, "server", "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    end_to_end: dict[int, list[float]] = {n: [] for n in counts}
    phase: dict[int, list[float]] = {n: [] for n in counts}
    loop: list[float] = []
    try:
        flowctl_round(env, root, "warm-up", 100)
        loop_round(env, root, port, "warm-up", 5)
        for r in range(args.rounds):
            for n in counts:
                e2e, ph = flowctl_round(env, root, f"{n}-{r}", n)
                end_to_end[n].append(e2e)
                phase[n].append(ph)
            loop.append(loop_round(env, root, port, str(r), args.loop_count))
    finally:
        subprocess.run([FLOWCTL, "server", "stop"], env=env, stdout=subprocess.DEVNULL)
    shutil.rmtree(root)  # kept when a round fails, for its server log
    med = statistics.median
    print(json.dumps({
        "rounds": args.rounds,
        "temporal_cli_loop": {"workflows_per_round": args.loop_count, "per_second": [round(x, 1) for x in loop]},
        "flowctl_bulk": {
            str(n): {
                "end_to_end_per_second": [round(x, 1) for x in end_to_end[n]],
                "start_phase_per_second": [round(x, 1) for x in phase[n]],
                "ratio_end_to_end": round(med(end_to_end[n]) / med(loop), 1),
                "ratio_start_phase": round(med(phase[n]) / med(loop), 1),
            }
            for n in counts
        },
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
