"""flowctl's settings: one TOML file, `FLOWCTL_*` variables, flags; validated by pydantic.

The same file may hold Temporal's own connection profiles (`[profile.NAME]`, the SDK's
environment-configuration format); those are read by `flowctl.connect`, not here.
Precedence: flag > environment > file > default.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from flowctl.errors import UsageError
from flowctl.files import is_text, read_text, write_text
from flowctl.inputs import SECRET_KEYS as SECRET_KEYS  # re-exported: redaction lives here
from flowctl.inputs import describe_validation_error, shortened
from flowctl_workflows.fields import Duration, Money
from flowctl_workflows.numbers import as_written

ENV_PREFIX = "FLOWCTL_"
# The embedded server's addresses that mean this machine: a client reaches them as localhost.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "0.0.0.0"})  # noqa: S104 - compared with, never bound
MAX_AMOUNT = 1_000_000_000.0  # the largest approval amount a request may carry; thresholds need no more
Amount = Annotated[Money, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)]  # a threshold of money, in whole cents
CONFIG_ENV = "FLOWCTL_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LocalServices(_Section):
    db: Path | None = Field(default=None, description="ledger SQLite file; default: ledger.db in the state dir")
    transient_failure_rate: float = Field(
        default=0.0, ge=0.0, le=0.9, description="share of calls that fail transiently"
    )
    fraud_review_threshold: Amount = Field(default=1000.0, description="order total that needs a fraud review")
    latency: Duration = Field(default=timedelta(0), description="how long every service call takes, at least")


class Route(_Section):
    """How one service command reaches its PURISTA command: `{base_url}{api_mount}/v{version}/{path}`."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(default="POST")
    path: str = Field(min_length=1, description="the path the command is exposed at, e.g. charges or shipments/:key")
    base_url: str | None = Field(default=None, description="default: services.http.base_url")
    api_mount: str | None = Field(default=None, description="default: services.http.api_mount")
    version: int | None = Field(default=None, ge=1, description="the service's version; default: services.http.version")
    timeout: Duration | None = Field(default=None, description="default: services.http.timeout")
    request: str | None = Field(default=None, description="JSONata: flowctl's request -> the service's payload")
    params: str | None = Field(default=None, description="JSONata: flowctl's request -> path and query parameters")
    answer: str | None = Field(default=None, description="JSONata: the service's answer -> flowctl's answer")
    changes_nothing: bool = Field(
        default=False, description="the command only reads (a screening): it needs no idempotency key"
    )

    @field_validator("base_url")
    @classmethod
    def _route_url(cls, value: str | None) -> str | None:
        return None if value is None else service_url(value)


class HttpServices(_Section):
    base_url: str = Field(default="http://127.0.0.1:8090", description="where the services listen")
    api_mount: str = Field(default="/api", description="PURISTA's apiMountPath")
    version: int = Field(default=1, ge=1, description="the services' version, in their URLs (/v1/)")
    timeout: Duration = Field(default=timedelta(seconds=5), description="how long a call may take")
    token_env: str | None = Field(default=None, description="variable holding a bearer token for the services")
    token_file: Path | None = Field(default=None, description="file holding a bearer token for the services")
    ca_file: Path | None = Field(
        default=None, description="CA certificate that signed the services' https certificates"
    )
    routes: dict[str, Route] = Field(default_factory=dict, description="service command -> route")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return service_url(value)

    @field_validator("token_env")
    @classmethod
    def _token_env(cls, value: str | None) -> str | None:
        return _variable_name(value)


def service_url(value: str, *, path: bool = False) -> str:
    """An http(s) URL of a host that a client can use as written (`path`: an endpoint, kept as is)."""
    from urllib.parse import urlsplit

    example = "http://127.0.0.1:4318/v1/traces" if path else "http://127.0.0.1:8090"
    if not value.isprintable() or " " in value:
        raise ValueError(f"must be a URL without spaces or control characters, e.g. {example}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - reading it checks it: out of range or not a number raises
    except ValueError as exc:
        raise ValueError(f"is not a URL flowctl can use ({exc}), e.g. {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"must be an http(s) URL of a host, e.g. {example}")
    if parts.username is not None or parts.password is not None:  # it would be shown wherever the URL is
        raise ValueError("must not carry a user or password: give a token with token_env or token_file")
    return value.rstrip("/") if not path else value


def _variable_name(value: str | None) -> str | None:
    """A variable's name, not its value: a secret written here would be shown by `config show`."""
    import re

    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(
            "must name an environment variable (letters, digits, _), e.g. PURISTA_TOKEN, not hold the token"
        )
    return value


class Services(_Section):
    bridge: Literal["local", "http"] = Field(default="local", description="how activities reach business services")
    local: LocalServices = Field(default_factory=LocalServices)
    http: HttpServices = Field(default_factory=HttpServices)


class OrderPolicy(_Section):
    review_timeout: Duration = Field(default=timedelta(hours=24), description="how long a fraud review may take")

    @field_validator("review_timeout")
    @classmethod
    def _at_least_a_second(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):  # shorter, every held order would be rejected before anyone could look
            raise ValueError("must be at least 1s, e.g. 30m or 24h")
        return value


class ApprovalPolicy(_Section):
    auto_approve_below: Amount = Field(default=1000.0, description="amounts below are approved by the pre-screen")
    reject_above: Amount = Field(default=100_000.0, description="amounts above are rejected by the pre-screen")
    blocked_requesters: list[str] = Field(default_factory=list, description="requesters the pre-screen rejects")


class OnboardingPolicy(_Section):
    admin_email: str = Field(default="admin@example.com", min_length=3, description="who hears of new users")


class Server(_Section):
    port: int = Field(default=7233, ge=1, le=65535, description="gRPC port of the embedded dev server")
    ui_port: int | None = Field(default=None, ge=1, le=65535, description="Web UI port; default port + 1000")
    ip: str = Field(default="127.0.0.1", description="address the embedded server binds")
    db_file: Path | None = Field(default=None, description="SQLite file; default: temporal.db in the state dir")
    ui_codec_endpoint: str | None = Field(
        default=None, description="codec server the Web UI decodes payloads with, e.g. http://127.0.0.1:8081"
    )

    @field_validator("ui_codec_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL, e.g. http://127.0.0.1:8081")
        return value

    @field_validator("ip")
    @classmethod
    def _an_address(cls, value: str) -> str:
        import ipaddress

        if value != "localhost":
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise ValueError("must be an IPv4 address the server can bind, e.g. 127.0.0.1 or 0.0.0.0") from None
        return value

    @model_validator(mode="after")
    def _ports_apart(self) -> Server:
        if self.ui_port is None and self.port + 1000 > 65535:
            raise ValueError(
                f"server.port {self.port} leaves no room for the Web UI's default port (port + 1000): "
                "set server.ui_port too"
            )
        if self.effective_ui_port == self.port:
            raise ValueError(f"server.ui_port and server.port are both {self.port}: give the Web UI another port")
        return self

    @property
    def effective_ui_port(self) -> int:
        return self.ui_port or self.port + 1000


class WorkerSettings(_Section):
    max_activities: int = Field(default=100, ge=1, le=10_000)
    max_cached_workflows: int = Field(default=1000, ge=0, le=1_000_000)
    shutdown_grace: Duration = Field(default=timedelta(seconds=30))
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    health_port: int | None = Field(
        default=None, ge=0, le=65535, description="serve /livez and /readyz on this port (0: any free)"
    )
    health_host: str = Field(
        default="127.0.0.1", description="address the health port binds; 0.0.0.0 for a pod's probes"
    )

    @field_validator("health_host")
    @classmethod
    def _an_ip(cls, value: str) -> str:
        import ipaddress

        if value != "localhost":
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError("must be an IP address to bind, e.g. 127.0.0.1, 0.0.0.0 or ::") from None
        return value


class CodecSettings(_Section):
    keys: SecretStr | None = Field(
        default=None, description="AES-GCM keys as ID:BASE64, the first seals; usually FLOWCTL_CODEC__KEYS"
    )
    keys_file: Path | None = Field(default=None, description="file of ID:BASE64 keys, one per line")


class RelayEvent(_Section):
    """What one PURISTA event does: signal (or update) a workflow, optionally starting it."""

    workflow: str = Field(
        min_length=1, description="workflow id template over the event's data, e.g. onboarding-{userId}"
    )
    signal: str | None = Field(default=None, description="the signal to send")
    update: str | None = Field(default=None, description="or the update to run (decisions by update, say)")
    payload: str | None = Field(default=None, description="JSONata: the event's data -> the message's payload")
    start_input: str | None = Field(
        default=None, description="JSONata: the event's data -> the workflow's input, to start it when it does not run"
    )

    @model_validator(mode="after")
    def _one_message(self) -> RelayEvent:
        if (self.signal is None) == (self.update is None):
            raise ValueError("give one of signal or update")
        if self.start_input is not None and self.update is not None:
            raise ValueError("start_input goes with a signal (signal-with-start), not an update")
        return self


class Relay(_Section):
    host: str = Field(default="127.0.0.1", description="address to bind; beyond loopback a token is required")
    port: int = Field(default=8092, ge=0, le=65535, description="port to listen on (0: any free)")
    token_env: str | None = Field(default=None, description="variable holding the bearer token senders must give")
    token_file: Path | None = Field(default=None, description="file holding that token")
    update_timeout: Duration = Field(
        default=timedelta(seconds=10), description="how long an update may wait for a worker before the sender retries"
    )
    events: dict[str, RelayEvent] = Field(default_factory=dict, description="event name -> what it does")

    @field_validator("token_env")
    @classmethod
    def _token_env(cls, value: str | None) -> str | None:
        return _variable_name(value)


class Tracing(_Section):
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces; unset: no tracing"
    )
    service_name: str = Field(default="flowctl", min_length=1, description="the service.name of flowctl's spans")

    @field_validator("otlp_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else service_url(value, path=True)


class Settings(_Section):
    task_queue: str = Field(default="flowctl", min_length=1, max_length=200)
    ui_url: str | None = Field(default=None, description="Web UI base URL; default: the embedded server's UI")
    outage_limit: Duration = Field(
        default=timedelta(minutes=2),
        description="how long a waiting command without --timeout waits out an unreachable server",
    )
    services: Services = Field(default_factory=Services)
    order: OrderPolicy = Field(default_factory=OrderPolicy)
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    onboarding: OnboardingPolicy = Field(default_factory=OnboardingPolicy)
    server: Server = Field(default_factory=Server)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    codec: CodecSettings = Field(default_factory=CodecSettings)
    relay: Relay = Field(default_factory=Relay)
    tracing: Tracing = Field(default_factory=Tracing)
    # Temporal's own connection profiles, in the SDK's format; checked when connecting.
    profile: dict[str, dict[str, Any]] = Field(default_factory=dict)


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "flowctl"


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "flowctl"


def config_path(flag: Path | None = None) -> Path:
    """The config file in use: `--config`, else `FLOWCTL_CONFIG`, else the user config dir."""
    if flag is not None:
        return flag
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    return config_dir() / "config.toml"


class UnfitNumber(ValueError):
    """A number written with more digits than a float holds: read, it would be another number."""


def _exact_float(text: str) -> float:
    # TOML's inf and nan go on to the settings' own checks, which name the setting.
    value = float(text)
    if value == value and abs(value) != float("inf") and not as_written(text.replace("_", ""), value):
        raise UnfitNumber(f"the number {text[:40]} has more digits than a setting holds (it would be {value!r})")
    return value


def read_file(path: Path) -> dict[str, Any]:
    """The file's table, or an empty one if it does not exist."""
    if not path.exists() and not path.is_symlink():
        return {}
    if path.exists() and not path.is_file():  # a directory, a device (/dev/zero), a pipe
        raise UsageError(f"config {path}: not a regular file", hint="name a TOML file, or move this aside")
    text = read_text(path, "config", hint="fix the file or run 'flowctl config init --force'")
    try:
        return tomllib.loads(text, parse_float=_exact_float)
    except UnfitNumber as exc:
        raise UsageError(
            f"config {path}: {exc}", hint="write the number as the setting takes it, e.g. 999.99"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"config {path}: not valid TOML: {exc}", hint="fix the file or run 'flowctl config init'"
        ) from None
    except (RecursionError, ValueError):  # nesting, or a number of thousands of digits
        raise UsageError(
            f"config {path}: nested too deep or a number too long", hint="no setting needs either"
        ) from None


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """`FLOWCTL_TASK_QUEUE=q`, `FLOWCTL_SERVICES__LOCAL__DB=/x.db`: `__` separates sections."""
    data: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        if not is_text(value):
            raise UsageError(f"{name}: its value is not UTF-8 text", hint=f"set {name} as UTF-8, or unset it")
        path = name[len(ENV_PREFIX) :].lower().split("__")
        target = data
        for depth, part in enumerate(path[:-1]):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):  # FLOWCTL_SERVICES=x beside FLOWCTL_SERVICES__LOCAL__...
                section = ENV_PREFIX + "__".join(path[: depth + 1]).upper()
                raise UsageError(
                    f"{name} sets a key inside {section}, which is set to a value",
                    hint=f"unset {section}: it names a table of settings",
                )
        if isinstance(target.get(path[-1]), dict):
            raise UsageError(
                f"{name} sets a table of settings to a value",
                hint=f"unset {name}, or set its keys (e.g. {name}__KEY)",
            )
        target[path[-1]] = value
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


PROFILE_KEYS = ("address", "namespace", "api_key", "tls", "codec", "grpc_meta")  # Temporal's profile fields


def known_keys(model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Every dotted key `config set` takes, for completion: a table of named entries (routes,
    events, profiles) is offered as its prefix, `services.http.routes.`."""
    import typing

    keys = []
    for name, field in (model or Settings).model_fields.items():
        key = f"{prefix}{name}"
        nested = [t for t in (field.annotation, *typing.get_args(field.annotation)) if isinstance(t, type)]
        inner = next((t for t in nested if issubclass(t, BaseModel)), None)
        if typing.get_origin(field.annotation) is dict:
            keys.append(f"{key}.")
        elif inner is not None:
            keys += known_keys(inner, f"{key}.")
        else:
            keys.append(key)
    if model is None:
        keys += [f"profile.default.{name}" for name in PROFILE_KEYS]
    return keys


def validate_settings(data: dict[str, Any], origin: str) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        raise UsageError(
            describe_validation_error(err, f"configuration ({origin})", Settings),
            hint="see config.example.toml for every key",
        ) from None


def with_flags(settings: Settings, flags: dict[str, tuple[str, Any]]) -> Settings:
    """`settings` with each flag that was given (not None) in place of the setting it stands for,
    by dotted key: `{"worker.max_activities": ("--max-activities", 4)}`. So a flag outranks the
    environment and the file, and its value is checked as the setting's is (exit 2 naming the flag)."""
    result = settings.model_copy(deep=True)
    for key, (flag, value) in flags.items():
        if value is None:
            continue
        *path, name = key.split(".")
        section: BaseModel = result
        for part in path:
            section = getattr(section, part)
        try:
            setattr(section, name, value)  # the sections validate what is assigned
        except ValidationError as exc:
            reason = describe_validation_error(exc, flag).removeprefix(f"invalid {flag}: {name}: ")
            raise UsageError(f"{flag}: {reason}") from None
    return result


def load(path: Path | None = None) -> Settings:
    """Settings from the file and the environment, in rising precedence (flags are the commands')."""
    file = config_path(path)
    named = "--config" if path is not None else CONFIG_ENV if os.environ.get(CONFIG_ENV) else None
    if named is not None and not file.exists():
        # A file named on purpose and missing: falling back to defaults (localhost:7233) could
        # reach somebody else's server.
        raise UsageError(
            f"{named} {file}: no such file", hint="check the path, or create it with 'flowctl config init'"
        )
    data = read_file(file)
    env = _env_overrides(dict(os.environ))
    origin = f"{file}" + (" and FLOWCTL_* variables" if env else "")
    return validate_settings(_merge(data, env), origin)


def ledger_path(settings: Settings) -> Path:
    return settings.services.local.db or state_dir() / "ledger.db"


def ui_base_url(settings: Settings) -> str:
    return (settings.ui_url or f"http://localhost:{settings.server.effective_ui_port}").rstrip("/")


# Tables of request headers (Temporal's rpc-metadata setting is `grpc_meta`): a header may carry
# a credential under any name, so every value in them is secret but these.
HEADER_TABLES = frozenset({"grpc_meta", "headers"})
HARMLESS_HEADERS = frozenset({"user-agent", "accept", "content-type", "x-trace-id", "traceparent"})


def check_metadata(headers: dict[str, Any]) -> None:
    """Refuse a gRPC metadata header no server could be sent (named, never its value: it may be a secret)."""
    import re

    for name, value in headers.items():
        where = f"gRPC metadata header {name!r} ([profile.NAME.grpc_meta] or TEMPORAL_GRPC_META_*)"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name)):
            raise UsageError(f"{where}: a header name is letters, digits, '-', '_' and '.'")
        if str(name).lower().endswith("-bin"):  # the SDK takes these as ASCII headers and refuses them
            raise UsageError(f"{where}: a '-bin' header carries bytes, which a text setting cannot hold")
        if not isinstance(value, str) or not re.fullmatch(r"[\x20-\x7e]*", value):
            raise UsageError(f"{where}: its value must be printable ASCII text (no newline or control character)")


def is_secret(path: list[str]) -> bool:
    """Whether the setting at this dotted path holds a secret (never printed)."""
    if not path:
        return False
    if path[-1] in HEADER_TABLES:  # the whole table at once (a mistake, but its text is a header)
        return True
    in_headers = any(part in HEADER_TABLES for part in path[:-1])
    return path[-1] in SECRET_KEYS or (in_headers and path[-1].lower() not in HARMLESS_HEADERS)


def redact(value: Any, path: tuple[str, ...] = ()) -> Any:
    """A copy of a config value with every secret replaced by a marker."""
    if isinstance(value, dict):
        return {k: redact(v, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, path) for v in value]
    if is_secret(list(path)) and value not in (None, ""):
        return "<redacted>"
    return value


def parse_value(raw: str) -> Any:
    """A `config set` value: TOML syntax when it parses (3, true, [..]), else the plain text."""
    try:
        return tomllib.loads(f"v = {raw}", parse_float=_exact_float)["v"]
    except UnfitNumber as exc:
        raise UsageError(f"config value: {exc}", hint="write the number as the setting takes it, e.g. 999.99") from None
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        return raw


def set_key(path: Path, key: str, raw: str) -> dict[str, Any]:
    """Set a dotted key in the file, refusing anything that would not validate; two sets at
    once both land (one waits for the other)."""
    from flowctl.files import locked

    with locked(path.with_name(f".{path.name}.lock"), "config's folder"):
        return _set_key(path, key, raw)


def _check_profiles(profiles: Any, key: str) -> None:
    """The connection profiles as Temporal's own loader will read them: a value of the wrong
    type or an unknown key is refused now, not by every later command."""
    import tomli_w
    from temporalio.envconfig import ClientConfigProfile

    if not isinstance(profiles, dict):
        raise UsageError(f"config key {key!r}: profile is a table of connection profiles", hint="set profile.NAME.KEY")
    text = tomli_w.dumps({"profile": profiles}).encode()
    for name in profiles:
        try:
            ClientConfigProfile.load(name, config_source=text, disable_env=True, config_file_strict=True)
        except Exception as exc:  # noqa: BLE001 - the SDK raises its bridge's ConfigError, not exported
            why = " ".join(str(exc).split("\n")[-2:]).strip() or str(exc)
            raise UsageError(f"config key {key!r}: profile {name!r}: {why}", hint="see config.example.toml") from None


def _set_key(path: Path, key: str, raw: str) -> dict[str, Any]:
    import tomli_w

    data = read_file(path)
    parts = key.split(".")
    if len(parts) > 6 or len(raw) > 10_000:
        raise UsageError(f"config key {shortened(key)!r} or its value is far longer than any setting")
    if not all(parts):
        raise UsageError(f"config key {key!r} is malformed", hint="use a dotted key, e.g. services.bridge")
    target = data
    for part in parts[:-1]:
        nxt = target.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise UsageError(f"config key {key!r}: {part!r} is not a table")
        target = nxt
    target[parts[-1]] = parse_value(raw)
    if parts[-1] in HEADER_TABLES:
        raise UsageError(
            f"config key {key!r} is a table of headers, not a value",
            hint=f"set one header: flowctl config set {key}.NAME VALUE",
        )
    if len(parts) > 1 and parts[-2] in HEADER_TABLES:
        check_metadata({parts[-1]: target[parts[-1]]})
    settings = validate_settings(data, f"{path} after setting {key}")
    if parts[0] == "codec":
        from flowctl.codec import keyring

        keyring(settings.codec)  # the keys must parse (and a keys file be there), as every later command needs
    if parts[0] == "profile":
        _check_profiles(data.get("profile"), key)
    write_text(path, tomli_w.dumps(data), "config")
    if is_secret(parts):
        path.chmod(0o600)  # the file now holds a secret: readable by its owner only
    return data
