"""Importing this module registers every command on the root app, in help order."""

from flowctl.cli import (  # noqa: F401
    start,
    messages,
    inspect,
    control,
    kinds,
    ledger,
    worker_cmd,
    server,
    config_cmd,
    demo,
)
