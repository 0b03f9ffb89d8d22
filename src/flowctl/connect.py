"""The one place a Temporal client and its data converter are built, for CLI and worker alike.

The connection comes from Temporal's environment configuration (profiles in the config
file or Temporal's own file, `TEMPORAL_*` variables), then flags; with nothing set it is
localhost:7233, namespace `default`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowctl.errors import UnreachableError, UsageError

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.converter import DataConverter
    from temporalio.runtime import Runtime

    from flowctl.config import Settings

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Target:
    """Where and how to connect; `api_key` and TLS material never leave this object in output."""

    address: str
    namespace: str
    profile: str | None = None
    api_key: str | None = field(default=None, repr=False)
    tls: Any = field(default=None, repr=False)  # None (SDK decides), bool or a TLSConfig
    rpc_metadata: dict[str, str] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "namespace": self.namespace,
            "profile": self.profile,
            "tls": bool(self.tls) or (self.tls is None and bool(self.api_key)),
            "api_key": "<set>" if self.api_key else None,
        }


def resolve(
    settings: Settings,
    config_file: Path,
    *,
    profile: str | None = None,
    address: str | None = None,
    namespace: str | None = None,
) -> Target:
    """Apply Temporal's environment configuration, then the flags."""
    from temporalio.envconfig import ClientConfigProfile

    # Profiles in flowctl's file win; without any, Temporal's own config file is honoured.
    source = config_file if settings.profile and config_file.exists() else None
    try:
        loaded = ClientConfigProfile.load(profile, config_source=source).to_client_connect_config()
    except Exception as exc:  # noqa: BLE001 - the SDK raises its bridge's ConfigError, not exported
        where = f" in {config_file}" if source else ""
        raise UsageError(
            f"connection profile{where}: {exc}", hint="check --profile, TEMPORAL_PROFILE and [profile.*]"
        ) from None
    return Target(
        address=address or loaded.get("target_host") or DEFAULT_ADDRESS,
        namespace=namespace or loaded.get("namespace") or DEFAULT_NAMESPACE,
        profile=profile,
        api_key=loaded.get("api_key"),
        tls=loaded.get("tls"),
        rpc_metadata=dict(loaded.get("rpc_metadata") or {}),
    )


def data_converter() -> DataConverter:
    from temporalio.contrib.pydantic import pydantic_data_converter

    return pydantic_data_converter


async def connect(target: Target, *, runtime: Runtime | None = None) -> Client:
    """A connected client, or `UnreachableError` naming the address and what to try."""
    from temporalio.client import Client

    try:
        return await asyncio.wait_for(
            Client.connect(
                target.address,
                namespace=target.namespace,
                api_key=target.api_key,
                tls=target.tls,
                rpc_metadata=target.rpc_metadata,
                data_converter=data_converter(),
                runtime=runtime,
            ),
            timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except (TimeoutError, RuntimeError, OSError) as exc:
        detail = str(exc) or f"no answer within {CONNECT_TIMEOUT_SECONDS:.0f}s"
        raise UnreachableError(
            f"cannot reach Temporal at {target.address} (namespace {target.namespace}): {_first_line(detail)}",
            hint="start the embedded server with 'flowctl server start', or set --address / TEMPORAL_ADDRESS",
        ) from None


def _first_line(text: str) -> str:
    """The readable core of a transport error (the OS's words where the SDK quotes them)."""
    import re

    quoted = re.search(r'(?:message|error): "([^"]+)"', text)
    if quoted:
        return quoted.group(1)
    line = text.strip().splitlines()[0] if text.strip() else text
    return line[:300]
