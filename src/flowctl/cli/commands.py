"""Importing this module registers every command on the root app, in help order."""

from flowctl.cli import (  # noqa: F401
    config_cmd,
    control,
    decisions,
    demo,
    inspect,
    kinds,
    ledger,
    messages,
    server,
    start,
    watch,
    worker_cmd,
)
