"""An isolated flowctl setup for a benchmark: its own config, state dir and free ports."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup(root: Path, name: str) -> tuple[dict[str, str], int]:
    """(environment, gRPC port) for a flowctl whose config, ledger and state live under root/name."""
    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = home / "flowctl.toml"
    config.write_text(
        f'task_queue = "{name}"\n[server]\nport = {port}\nui_port = {free_port()}\n'
        f'[services.local]\ndb = "{home / "ledger.db"}"\n[profile.default]\naddress = "127.0.0.1:{port}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "FLOWCTL_"))}
    env.update(FLOWCTL_CONFIG=str(config), XDG_STATE_HOME=str(home / "state"), XDG_CONFIG_HOME=str(home / "cfg"))
    return env, port
