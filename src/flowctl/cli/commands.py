"""Importing this module registers every command on the root app, in help order."""

from flowctl.cli import (  # noqa: F401, I001 - help lists commands in this order
    config_cmd,
    control,
    decisions,
    demo,
    inspect,
    kinds,
    ledger,
    messages,
    server,
    codec_cmd,
    start,
    watch,
    worker_cmd,
)
