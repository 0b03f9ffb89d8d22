"""The one place a Temporal client and its data converter are built, for CLI and worker alike.

The connection comes from Temporal's environment configuration (profiles in the config
file or Temporal's own file, `TEMPORAL_*` variables), then flags; with nothing set it is the
embedded server's address (localhost:7233 by default), namespace `default`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowctl.config import LOCAL_HOSTS, check_metadata
from flowctl.errors import UnreachableError, UsageError

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.converter import DataConverter
    from temporalio.runtime import Runtime
    from temporalio.service import ServiceClient

    from flowctl.codec import KeyRing
    from flowctl.config import Settings

DEFAULT_NAMESPACE = "default"
ADDRESS_HINT = "fix --address, TEMPORAL_ADDRESS or address in [profile.NAME], e.g. localhost:7233"
# What Temporal accepts as a namespace name (Temporal Cloud's are `name.account`).
NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
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
    keys: KeyRing | None = field(default=None, repr=False)  # payload codec keys, if configured
    address_from: str = "default"  # --address, TEMPORAL_ADDRESS or the profile: named when it disagrees
    embedded: str = "localhost:7233"  # where the embedded server listens, by the [server] settings

    def summary(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "namespace": self.namespace,
            "profile": self.profile,
            "tls": bool(self.tls) or (self.tls is None and bool(self.api_key)),
            "api_key": "<set>" if self.api_key else None,
            "codec": f"AES-GCM, sealing with key {self.keys.active!r}, opening {', '.join(self.keys.ids)}"
            if self.keys
            else None,
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

    from flowctl.codec import keyring

    _check_switches()
    # Profiles in flowctl's file win; without any, Temporal's own config file is honoured.
    source = config_file if settings.profile and config_file.exists() else None
    try:
        loaded = ClientConfigProfile.load(
            profile, config_source=source, override_env_vars=_text_environment()
        ).to_client_connect_config()
    except FileNotFoundError as exc:
        raise UsageError(
            f"TLS file {exc.filename}: no such file",
            hint="fix the *_path setting in [profile.NAME.tls] or the TEMPORAL_TLS_*_PATH variable naming it",
        ) from None
    except Exception as exc:  # noqa: BLE001 - the SDK raises its bridge's ConfigError, not exported
        where = f" in {config_file}" if source else ""
        raise UsageError(
            f"connection profile{where}: {_without_source(str(exc))}",
            hint="check --profile, TEMPORAL_PROFILE and [profile.*]",
        ) from None
    check_metadata(dict(loaded.get("rpc_metadata") or {}))
    embedded = embedded_address(settings)
    for given in (address, loaded.get("target_host")):
        if given and "://" in given:  # the SDK only warns, with its own source path
            raise UsageError(
                f"address {given!r} is a URL; Temporal's address is host:port",
                hint=f"e.g. {given.split('://', 1)[1].split('/', 1)[0] or 'localhost:7233'}",
            )
        if given:
            host, _, port = given.rpartition(":")
            odd = "/" in given or not given.isprintable() or any(c.isspace() for c in given)
            if not host or odd or not port.isdigit() or not 0 < int(port) < 65536:
                raise UsageError(f"address {given!r} is not host:port", hint=ADDRESS_HINT)
    chosen = namespace or loaded.get("namespace") or DEFAULT_NAMESPACE
    if not NAMESPACE.fullmatch(chosen):
        raise UsageError(
            f"namespace {chosen!r} is not a namespace name",
            hint="fix --namespace, TEMPORAL_NAMESPACE or namespace in [profile.NAME]: letters, digits, '-', '_', '.'",
        )
    if address:
        address_from = "--address"
    elif loaded.get("target_host"):
        address_from = (
            "TEMPORAL_ADDRESS" if os.environ.get("TEMPORAL_ADDRESS") else f"profile {profile or 'default'}'s address"
        )
    else:
        address_from = "default"
    return Target(
        address=address or loaded.get("target_host") or embedded,
        address_from=address_from,
        embedded=embedded,
        namespace=chosen,
        profile=profile,
        api_key=loaded.get("api_key"),
        tls=loaded.get("tls"),
        rpc_metadata=dict(loaded.get("rpc_metadata") or {}),
        keys=keyring(settings.codec),
    )


def _same_endpoint(a: str, b: str) -> bool:
    """Whether two host:port addresses reach the same local server (localhost is 127.0.0.1)."""

    def norm(address: str) -> tuple[str, str]:
        host, _, port = address.rpartition(":")
        return ("local" if host in LOCAL_HOSTS or host == "[::1]" else host), port

    return norm(a) == norm(b)


def embedded_address(settings: Settings) -> str:
    """Where the embedded server listens: with no address configured, flowctl dials it there."""
    ip = settings.server.ip  # IPv4 or localhost, as the setting's check allows
    return f"{'localhost' if ip in LOCAL_HOSTS else ip}:{settings.server.port}"


def _text_environment() -> dict[str, str]:
    """The environment as the SDK may read it: a variable that is not UTF-8 would make its
    config loader panic. A TEMPORAL_* one is refused by name; any other is left out."""
    from flowctl.files import is_text

    clean: dict[str, str] = {}
    for name, value in os.environ.items():
        if not (is_text(name) and is_text(value)):
            if name.startswith("TEMPORAL_"):
                raise UsageError(f"{name}: its value is not UTF-8 text", hint=f"set {name} as UTF-8, or unset it")
            continue
        clean[name] = value
    return clean


def _check_switches() -> None:
    """Refuse a TLS switch Temporal would misread: it reads true/false/1/0, and `no` turns TLS on."""
    import os

    for name in ("TEMPORAL_TLS", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"):
        value = os.environ.get(name)
        if value is not None and value.lower() not in ("true", "false", "1", "0"):
            raise UsageError(f"{name}={value!r} is not true, false, 1 or 0", hint=f"set {name}=true or {name}=false")


def _without_source(message: str) -> str:
    """A config error without the quoted source line or value: it may be an API key or a key.

    The SDK's TOML errors quote the offending line (`| 3 | api_key = sk-...`) and values
    (`integer `5``); the line and column are kept, the text is not.
    """
    lines = [line.strip() for line in message.splitlines()]
    kept = [line for line in lines if line and not re.match(r"^\d*\s*\|", line)]
    return re.sub(r"\s*`[^`]*`", "", "; ".join(kept))


def data_converter(keys: KeyRing | None = None) -> DataConverter:
    """Pydantic-aware conversion reading numbers as written; with codec keys, every payload is
    sealed before it leaves."""
    from temporalio.converter import DataConverter

    from flowctl.codec import payload_codec
    from flowctl_workflows.converter import ExactPayloadConverter

    return DataConverter(payload_converter_class=ExactPayloadConverter, payload_codec=payload_codec(keys))


@functools.cache
def quiet_runtime() -> Runtime:
    """The SDK runtime for CLI commands: the same, minus Core's own log lines.

    A command reports a failure once, on one line. Without this, Core also prints its retry
    warnings (coloured, several lines each) to stderr while a server is away, between the
    command's output and its error. `--debug` keeps them (the default runtime); the worker
    keeps them in its log.
    """
    from temporalio.runtime import Runtime, TelemetryConfig

    return Runtime(telemetry=TelemetryConfig(logging=None))


async def connect(target: Target, *, runtime: Runtime | None = None, interceptors: list[Any] | None = None) -> Client:
    """A connected client, or `UnreachableError` naming the address and what to try."""
    from temporalio.client import Client

    service = await connect_service(target, runtime=runtime)
    return Client(
        service, namespace=target.namespace, data_converter=data_converter(target.keys), interceptors=interceptors or []
    )


async def connect_service(target: Target, *, runtime: Runtime | None = None) -> ServiceClient:
    """The connection alone (what `Client.connect` makes before wrapping it in a `Client`).

    Bulk start uses it directly: importing `temporalio.client` costs about 0.1 s, a third
    of a bulk command's start-up, and a start request needs none of it.
    """
    from temporalio.service import ConnectConfig, ServiceClient

    check_tls_material(target.tls)
    try:
        config = ConnectConfig(
            target_host=target.address,
            api_key=target.api_key,
            tls=target.tls,
            rpc_metadata=target.rpc_metadata,
            runtime=runtime,
        )
        return await asyncio.wait_for(ServiceClient.connect(config), timeout=CONNECT_TIMEOUT_SECONDS)
    except ValueError as exc:  # the SDK refuses a target it cannot parse
        raise UsageError(
            f"address {target.address!r} is not host:port ({transport_detail(str(exc))})",
            hint=ADDRESS_HINT,
        ) from None
    except (TimeoutError, RuntimeError, OSError) as exc:
        detail = str(exc) or f"no answer within {CONNECT_TIMEOUT_SECONDS:.0f}s"
        raise diagnose(target, detail) from None


def check_tls_material(tls: Any) -> None:
    """Refuse unreadable certificates and keys before connecting (exit 2, naming the setting).

    The SDK would report them as transport errors that do not say which one is wrong. The
    messages never quote the material itself.
    """
    if not tls or tls is True:
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    where = "in [profile.NAME.tls] or TEMPORAL_TLS_{}_*"
    certs: dict[str, list[x509.Certificate]] = {}
    for attr, setting, env in (
        ("server_root_ca_cert", "server_ca_cert", "SERVER_CA_CERT"),
        ("client_cert", "client_cert", "CLIENT_CERT"),
    ):
        data = getattr(tls, attr, None)
        if data is None:
            continue
        if not data.strip():  # an empty file would quietly fall back to the system's roots
            raise UsageError(f"TLS {setting} is empty", hint=f"fix {setting}_path / {setting}_data {where.format(env)}")
        try:
            certs[attr] = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise UsageError(
                f"TLS {setting} is not a PEM certificate",
                hint=f"fix {setting}_path / {setting}_data {where.format(env)}",
            ) from None
    key_data = getattr(tls, "client_private_key", None)
    if key_data:
        try:
            key = serialization.load_pem_private_key(key_data, password=None)
        except (ValueError, TypeError):
            raise UsageError(
                "TLS client_key is not an unencrypted PEM private key",
                hint=f"fix client_key_path / client_key_data {where.format('CLIENT_KEY')}",
            ) from None
        if "client_cert" in certs and certs["client_cert"][0].public_key() != key.public_key():
            raise UsageError(
                "TLS client_key does not belong to client_cert",
                hint="give the key the client certificate was issued for",
            )
    if bool(getattr(tls, "client_cert", None)) != bool(key_data):
        missing = "client_key" if not key_data else "client_cert"
        raise UsageError(
            f"TLS {missing} is missing: a client certificate needs both client_cert and client_key",
            hint=f"set {missing}_path {where.format(missing.upper())}",
        )


# Where each TLS setting goes, in the profile and in Temporal's variables.
_CA_HINT = "set the CA that signed it: server_ca_cert_path in [profile.NAME.tls] or TEMPORAL_TLS_SERVER_CA_CERT_PATH"
_CLIENT_CERT_HINT = (
    "set a client certificate the server trusts: client_cert_path and client_key_path in [profile.NAME.tls], "
    "or TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH"
)
_API_KEY_HINT = "check the API key the server refused: api_key in [profile.NAME] or TEMPORAL_API_KEY"
_TLS_ON_HINT = "turn TLS on (TEMPORAL_TLS=true, or server_ca_cert_path in [profile.NAME.tls]) if it expects TLS"
# How hyper reports a connection the server dropped right after it was made (a broken pipe is
# spelt both ways in one message).
_DROPPED = ("BrokenPipe", "broken pipe", "connection closed", "was not ready")
# How it reports an answer that is not gRPC: a GOAWAY, or an HTTP/1 error page.
_NOT_GRPC = ("GoAway", "h2 protocol error", "400 Bad Request")
# TLS alerts a server sends when it refuses the client's certificate (or its absence).
_CLIENT_CERT_ALERTS = ("CertificateRequired", "UnknownCA", "BadCertificate", "CertificateUnknown", "AccessDenied")


# Why a connection failed, read from the transport error's text: each rule recognises one
# failure by its words and names the setting that fixes it; the first that recognises it
# answers (their order matters where the words overlap), and a failure none recognises is
# reported as unreachable. tests/test_connect_rules.py holds a recorded error for each.
Rule = Callable[[Target, str, str], UnreachableError | None]  # (target, error text, "Temporal at ...")


def _refused_credentials(target: Target, detail: str, where: str) -> UnreachableError | None:
    refused = re.search(r"code: (Unauthenticated|PermissionDenied), message: \"([^\"]*)\"", detail)
    if not refused:
        return None
    has_client_cert = _has_client_cert(target)
    credentials = "the API key" if target.api_key else "no API key"
    credentials += " and a client certificate" if has_client_cert else " and no client certificate"
    reason = refused.group(2) or refused.group(1)
    # Servers word refusals their own way; past a named certificate problem, the hint follows what was sent.
    if "certificate" in reason.lower():
        hint = _CLIENT_CERT_HINT
    else:
        hint = _API_KEY_HINT if target.api_key else "set an API key: api_key in [profile.NAME] or TEMPORAL_API_KEY"
        if not has_client_cert:
            hint += "; or, if the server requires one, a client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH)"
    return UnreachableError(f"{where} refused the credentials ({credentials} sent): {reason}", hint=hint)


def _client_cert_alert(target: Target, detail: str, where: str) -> UnreachableError | None:
    alert = re.search(r"fatal alert: (\w+)", detail)
    if not (alert and alert.group(1) in _CLIENT_CERT_ALERTS):
        return None
    sent = "the client certificate" if _has_client_cert(target) else "the connection: no client certificate was sent"
    return UnreachableError(f"{where} refused {sent} (TLS alert {alert.group(1)})", hint=_CLIENT_CERT_HINT)


def _server_certificate(target: Target, detail: str, where: str) -> UnreachableError | None:
    invalid = re.search(r"InvalidCertificate\((\w+)", detail)
    if not invalid:
        return None
    reason = invalid.group(1)
    if reason.startswith("NotValidForName"):
        names = ", ".join(re.findall(r'(?:DnsName|IpAddress)\(\\?"?([^)"\\]+)', detail.split("presented", 1)[-1]))
        return UnreachableError(
            f"the TLS certificate of {where} is not valid for the name flowctl checked"
            + (f"; it names {names}" if names else ""),
            hint="connect by one of its names, or set server_name in [profile.NAME.tls] (TEMPORAL_TLS_SERVER_NAME)",
        )
    if reason == "UnknownIssuer":
        return UnreachableError(
            f"cannot verify the TLS certificate of {where}: it is signed by a CA flowctl does not trust", hint=_CA_HINT
        )
    return UnreachableError(f"cannot verify the TLS certificate of {where}: {reason}", hint=_CA_HINT)


def _tls_to_plain(target: Target, detail: str, where: str) -> UnreachableError | None:
    if "InvalidContentType" not in detail and "InvalidMessage" not in detail:
        return None
    why = " (an API key is set, which turns TLS on)" if target.tls is None and target.api_key else ""
    return UnreachableError(
        f"{where} does not speak TLS, but TLS is on{why}",
        hint="turn TLS off for this address: TEMPORAL_TLS=false or disabled = true in [profile.NAME.tls]",
    )


def _plain_dropped(target: Target, detail: str, where: str) -> UnreachableError | None:
    # A TLS endpoint or a plain HTTP/1 server (the Web UI's port, say) drops a gRPC preface
    # alike, right after the connection is made: a GOAWAY, a broken pipe, a close.
    if not (_plain(target) and "after connection" in detail and any(s in detail for s in (*_NOT_GRPC, *_DROPPED))):
        return None
    return UnreachableError(
        f"{where} did not answer plain gRPC: it may expect TLS, or this is not its gRPC port",
        hint=f"{_TLS_ON_HINT}; else check the port: the Web UI's port is not the gRPC port",
    )


def _plain_silence(target: Target, detail: str, where: str) -> UnreachableError | None:
    # Some TLS endpoints wait in silence for a TLS hello that a plain client never sends.
    if not (_plain(target) and detail.startswith("no answer within")):
        return None
    return UnreachableError(
        f"{where} gave {detail}: it may expect TLS, or be unreachable from here",
        hint=f"{_TLS_ON_HINT}; else check the address and that the server runs",
    )


def _tls_not_grpc(target: Target, detail: str, where: str) -> UnreachableError | None:
    # TLS was made, then what answered over it was not gRPC (an HTTPS site, a Web UI behind TLS).
    if _plain(target) or "after connection" not in detail or not any(sign in detail for sign in _NOT_GRPC):
        return None
    return UnreachableError(
        f"{where} answered over TLS, but not in gRPC: this is not its gRPC port",
        hint="check the address's port: an HTTPS site or the Web UI is not Temporal's gRPC port",
    )


def _tls_dropped(target: Target, detail: str, where: str) -> UnreachableError | None:
    # A server refusing the client certificate sends an alert, but the connection may be gone
    # before the alert is read (seen under load).
    if not (target.tls and "after connection" in detail and any(sign in detail for sign in _DROPPED)):
        return None
    why = (
        "it may not trust the client certificate"
        if _has_client_cert(target)
        else "no client certificate was sent (a server requiring one does this)"
    )
    return UnreachableError(f"{where} closed the TLS connection after the handshake: {why}", hint=_CLIENT_CERT_HINT)


RULES: tuple[Rule, ...] = (
    _refused_credentials,
    _client_cert_alert,
    _server_certificate,
    _tls_to_plain,
    _plain_dropped,
    _plain_silence,
    _tls_not_grpc,
    _tls_dropped,
)


def diagnose(target: Target, detail: str) -> UnreachableError:
    """Name what went wrong connecting (address, TLS, credentials) and the setting that fixes it."""
    where = f"Temporal at {target.address} (namespace {target.namespace})"
    for rule in RULES:
        found = rule(target, detail, where)
        if found is not None:
            return found
    if target.address_from != "default" and not _same_endpoint(target.address, target.embedded):
        hint = (
            f"the address comes from {target.address_from}, while the embedded server listens on "
            f"{target.embedded} (server.port): make them agree, or point {target.address_from} at a running server"
        )
    else:
        hint = "start the embedded server with 'flowctl server start', or set --address / TEMPORAL_ADDRESS"
    return UnreachableError(f"cannot reach {where}: {transport_detail(detail)}", hint=hint)


def _has_client_cert(target: Target) -> bool:
    return bool(getattr(target.tls, "client_cert", None))


def _plain(target: Target) -> bool:
    """No TLS: turned off, or left to the SDK with no API key (which would turn it on)."""
    return target.tls is False or (target.tls is None and not target.api_key)


def transport_detail(text: str) -> str:
    """The readable core of a transport error (the OS's words where the SDK quotes them)."""
    quoted = re.search(r'(?:message|error): "([^"]+)"', text)
    if quoted:
        return quoted.group(1)
    line = text.strip().splitlines()[0] if text.strip() else text
    return line[:300]
