"""Importing this module registers every command on the root app, in help order.

Help shows panels in the order their first command is registered: Run, Inspect, Send,
Decide, Operate (see `flowctl.cli.app`).
"""

from flowctl.cli import (  # noqa: F401, I001 - help lists commands in this order
    start,
    watch,
    wait_cmd,
    schedule_cmd,
    inspection,
    kinds,
    ledger,
    messages,
    decisions,
    control,
    worker_cmd,
    workers_cmd,
    services_cmd,
    relay_cmd,
    server,
    config_cmd,
    codec_cmd,
    demo,
)
