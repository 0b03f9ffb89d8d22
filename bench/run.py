"""Benchmarks, reported as ratios measured side by side in one run (never as timed tests).

    make bench            # or: .venv/bin/python bench/run.py [--rounds N]

- `flowctl --help` latency, and that of `python -c pass` on the same interpreter;
- a one-call command (`describe`, `query`) beside the minimal SDK script a user would write
  for the same call (default converter, `os._exit` so it pays no interpreter teardown),
  interleaved round by round so machine noise hits both alike (target: ratio <= 1.25), and
  where flowctl's time goes: Python's start, typer, pydantic, flowctl's own imports and
  config, the connection, the call; and the same bare script importing only the packages
  flowctl is built on (typer, pydantic's models), the floor for any CLI made of them;
- `flowctl demo` wall time from nothing (it starts and stops its own server and worker).
"""

from __future__ import annotations

import argparse
import json
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

BARE = """
import asyncio, os, sys
from temporalio.client import Client

async def main(address, workflow_id, call):
    client = await Client.connect(address)
    if call == "connect":
        return
    handle = client.get_workflow_handle(workflow_id)
    result = await (handle.describe() if call == "describe" else handle.query("status"))
    print(result.id if call == "describe" else result)

asyncio.run(main(*sys.argv[1:]))
sys.stdout.flush()
os._exit(0)
"""

# The bare script with flowctl's packages loaded and used as flowctl uses them: typer parses
# the line (typer 0.29 coerces every parameter through a pydantic TypeAdapter) and a pydantic
# model holds the settings.
PACKAGES = """
import typer
from pydantic import BaseModel

class Settings(BaseModel):
    address: str

def call(address: str, workflow_id: str, call: str) -> None:
    Settings(address=address)
    asyncio.run(main(address, workflow_id, call))

app = typer.Typer()
app.command()(call)
"""

# Where a one-call command's time goes, each stage a process of its own (medians, differences
# between consecutive stages are what a stage adds).
STAGES = {
    "python": "pass",
    "typer": "import typer",
    "pydantic": "import typer, pydantic",
    "flowctl_imports_and_config": (
        "from flowctl.cli import inspection; from flowctl import config; from flowctl.ops import runs; config.load(); import os; os._exit(0)"
    ),
}


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    code = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return time.perf_counter() - start, code


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="flowctl-bench-"))
    env, port = isolated.setup(root, "bench")
    report: dict[str, object] = {"rounds": args.rounds}

    help_times, pass_times = [], []
    for _ in range(args.rounds):
        help_times.append(timed([FLOWCTL, "--help"], env)[0])
        pass_times.append(timed([sys.executable, "-c", "pass"], env)[0])
    report["help_ms"] = round(median_ms(help_times), 1)
    report["python_startup_ms"] = round(median_ms(pass_times), 1)

    demo_env, _ = isolated.setup(root, "demo")
    demo_seconds, demo_code = timed([FLOWCTL, "demo"], demo_env)
    report["demo_from_nothing_s"] = round(demo_seconds, 2)
    report["demo_exit_code"] = demo_code

    subprocess.run([FLOWCTL, "server", "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    # The worker's output goes to a file: a pipe nobody reads would stall it once full.
    log = root / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([FLOWCTL, "worker"], env=env, stdout=out, stderr=out)
    try:
        while b"worker ready" not in log.read_bytes():
            assert worker.poll() is None, log.read_text()
            time.sleep(0.1)
        order = {"order_id": "bench-1", "customer_id": "c", "email": "b@example.com",
                 "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 1}]}  # fmt: skip
        subprocess.run([FLOWCTL, "start", "order", "-i", json.dumps(order), "--wait"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        bare = root / "bare.py"
        bare.write_text(BARE)
        with_packages = root / "bare_with_packages.py"
        with_packages.write_text(
            BARE.replace(
                "asyncio.run(main(*sys.argv[1:]))",
                PACKAGES + "\ntry:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass",
            )
        )
        address = f"127.0.0.1:{port}"
        for call in ("describe", "query"):
            ours, theirs, floor, crashes = [], [], [], 0
            flowctl_cmd = [FLOWCTL, call, "order-bench-1", "-o", "json"]
            bare_cmd = [sys.executable, str(bare), address, "order-bench-1", call]
            floor_cmd = [sys.executable, str(with_packages), address, "order-bench-1", call]
            for _ in range(args.rounds):
                seconds, code = timed(flowctl_cmd, env)
                assert code == 0, f"flowctl {call} exited {code}"
                ours.append(seconds)
                seconds, code = timed(bare_cmd, env)
                crashes += code != 0
                theirs.append(seconds)
                seconds, code = timed(floor_cmd, env)
                assert code == 0, f"the bare script with flowctl's packages exited {code}"
                floor.append(seconds)
            report[f"{call}_flowctl_ms"] = round(median_ms(ours), 1)
            report[f"{call}_bare_sdk_ms"] = round(median_ms(theirs), 1)
            report[f"{call}_ratio"] = round(median_ms(ours) / median_ms(theirs), 3)
            report[f"{call}_bare_sdk_with_typer_and_pydantic_ms"] = round(median_ms(floor), 1)
            report[f"{call}_packages_floor_ratio"] = round(median_ms(floor) / median_ms(theirs), 3)
            report[f"{call}_flowctl_over_packages_floor"] = round(median_ms(ours) / median_ms(floor), 3)
            report[f"{call}_bare_sdk_crashed_at_exit"] = crashes
        breakdown: dict[str, list[float]] = {name: [] for name in [*STAGES, "sdk_connect"]}
        for _ in range(args.rounds):
            for name, snippet in STAGES.items():
                breakdown[name].append(timed([sys.executable, "-c", snippet], env)[0])
            breakdown["sdk_connect"].append(timed([sys.executable, str(bare), address, "-", "connect"], env)[0])
        report["one_call_stages_ms"] = {name: round(median_ms(samples), 1) for name, samples in breakdown.items()}
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        subprocess.run([FLOWCTL, "server", "stop"], env=env, stdout=subprocess.DEVNULL)
    shutil.rmtree(root)  # kept when a step fails, for the worker's and server's logs
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
