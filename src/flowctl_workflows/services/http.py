"""The `http` bridge: each service command is a call to a PURISTA command over HTTP.

PURISTA serves a command at `{base}{apiMountPath}/v{serviceVersion}/{path}`; the service's name
is not in the URL, so every command flowctl's workflows use has a route (`Route`). A route can
map flowctl's request to the service's own payload, path and query parameters, and the
service's answer back to what the command's contract says (`services.commands`), in JSONata
expressions: names, nesting, constants and units change by configuration alone.

How an answer is read:
- 200 with JSON, or 204: done (the answer mapped, then checked by the activity);
- 202: an asynchronous job, not the command's result: refused, naming the route;
- 408, 425, 429, 5xx, a connection that fails, no answer in time: worth retrying (the
  activity's retry policy, waiting at least what `Retry-After` says);
- any other 4xx: a business refusal, not retried, carrying the service's own message, code,
  trace id and details, in either of PURISTA's error styles (v2 `{status, message, data}`,
  v3 `application/problem+json`).

Every call carries the step's idempotency key in the payload (PURISTA has no idempotency
header; the request mapping must keep it), an `x-trace-id` that is the same for every call of
one workflow, and a W3C `traceparent` continuing it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import ssl
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import BusinessError, ContractError, TransientError

if TYPE_CHECKING:
    import httpx

RETRIED = frozenset({408, 425, 429})  # 4xx worth retrying: timeout, too early, too many requests
MAX_ANSWER = 8 << 20  # bytes of an answer read at most: more is no answer flowctl reads
MAX_SAID = 2000  # characters of a service's message kept in a failure
MAX_DETAILS = 32 << 10  # bytes of a refusal's details kept (a failure lives in the workflow's history)
MAX_RETRY_AFTER = 3600.0  # seconds of Retry-After honoured at most
MARKER = "flowctl-idempotency-key-check"  # stands in for a key when a mapping is checked
PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\}")  # `:key` or `{key}` in a path


class RouteError(ValueError):
    """A route that cannot work; its message names the setting (`services.http.routes."x".request`)."""


@dataclass(frozen=True)
class Expression:
    """A compiled JSONata expression and the setting it came from."""

    text: str
    where: str
    compiled: Any

    @classmethod
    def of(cls, text: str | None, where: str) -> Expression | None:
        if text is None:
            return None
        import jsonata

        try:
            return cls(text, where, jsonata.Jsonata(text))
        except Exception as exc:  # noqa: BLE001 - the library raises its own JException
            raise RouteError(f"{where}: not a JSONata expression: {exc}") from None

    def apply(self, data: Any, command: str) -> Any:
        try:
            return self.compiled.evaluate(data)
        except Exception as exc:  # noqa: BLE001 - the library raises its own JException
            raise ContractError(f"{command}: the mapping {self.where} failed: {exc}") from None


@dataclass(frozen=True)
class Route:
    """One command's route, compiled: where it goes and how its payload and answer are mapped."""

    command: str
    method: str
    base_url: str
    api_mount: str
    version: int
    path: str  # as configured, `:name` or `{name}` for path parameters
    timeout: float
    request: Expression | None
    params: Expression | None
    answer: Expression | None
    where: str  # the route's setting, for messages

    @property
    def path_names(self) -> tuple[str, ...]:
        return tuple(a or b for a, b in PARAM.findall(self.path))

    @property
    def template(self) -> str:
        """The URL with `{name}` for each path parameter (as OpenAPI writes it)."""
        path = PARAM.sub(lambda m: "{" + (m.group(1) or m.group(2)) + "}", self.path.strip("/"))
        return f"{self.base_url}{self.api_mount}/v{self.version}/{path}"

    @property
    def shown(self) -> str:
        return f"{self.method} {self.template}"

    def url_and_query(self, params: dict[str, Any]) -> tuple[str, dict[str, str]]:
        names = set(self.path_names)
        missing = sorted(name for name in names if params.get(name) in (None, ""))
        if missing:
            raise ContractError(f"{self.command}: {self.where}.params gives no {', '.join(missing)} for {self.shown}")
        for name in names:
            value = params[name]
            if isinstance(value, bool) or not isinstance(value, str | int | float) or str(value) in (".", ".."):
                # `..` would climb to another endpoint; an object has no one spelling in a path
                raise ContractError(f"{self.command}: {self.where}.params gives {name} = {json.dumps(value)[:80]}, "
                                    "which is no path segment")  # fmt: skip
        url = PARAM.sub(lambda m: quote(str(params[m.group(1) or m.group(2)]), safe=""), self.path.strip("/"))
        query = {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items() if k not in names and v is not None
        }
        return f"{self.base_url}{self.api_mount}/v{self.version}/{url}", query

    def payload(self, request: dict[str, Any]) -> Any:
        return self.request.apply(request, self.command) if self.request else request

    def parameters(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.params is None:
            return {}
        found = self.params.apply(request, self.command)
        if not isinstance(found, dict):
            raise ContractError(f"{self.command}: {self.where}.params must give an object, not {type(found).__name__}")
        return found


def compile_routes(http: Any, commands: dict[str, Any], step_timeout: float) -> dict[str, Route]:
    """Every command's route from the settings (`services.http`), checked: a command without a
    route, a route to no command, an expression that does not parse, a timeout the activity
    would cut short, a mapping that drops the idempotency key: `RouteError` naming the key."""
    missing = sorted(set(commands) - set(http.routes))
    if missing:
        raise RouteError(
            f"services.http.routes has no route for {', '.join(missing)}: every command the workflows use needs one"
        )
    unknown = sorted(set(http.routes) - set(commands))
    if unknown:
        raise RouteError(f"services.http.routes.{unknown[0]!r}: no such service command (known: {', '.join(commands)})")
    routes = {}
    for command, route in http.routes.items():
        where = f'services.http.routes."{command}"'
        timeout = (route.timeout if route.timeout is not None else http.timeout).total_seconds()
        if not 0 < timeout < step_timeout:
            raise RouteError(
                f"{where}.timeout {timeout:g}s must be above 0 and below the activity's start-to-close timeout "
                f"({step_timeout:g}s), or the activity is cut short before the service answers"
            )
        compiled = Route(
            command=command,
            method=route.method,
            base_url=route.base_url or http.base_url,
            api_mount=_mount(route.api_mount if route.api_mount is not None else http.api_mount),
            version=route.version or http.version,
            path=route.path,
            timeout=timeout,
            request=Expression.of(route.request, f"{where}.request"),
            params=Expression.of(route.params, f"{where}.params"),
            answer=Expression.of(route.answer, f"{where}.answer"),
            where=where,
        )
        if not route.changes_nothing:
            _keeps_the_key(compiled, commands[command])
        routes[command] = compiled
    return routes


def _mount(mount: str) -> str:
    """`/api` as a URL's mount: one leading slash, none trailing; empty for none."""
    return "/" + mount.strip("/") if mount.strip("/") else ""


def _keeps_the_key(route: Route, command: Any) -> None:
    """Refuse a route whose request (payload, or path and query) loses the idempotency key: the
    service could not tell a retry from a new call, and a retried charge would charge twice.
    Tried on two requests: every field filled, and every optional one left out."""
    for sample in (_sample(command.request), _sample(command.request, optional=False)):
        try:
            sent = json.dumps([route.payload(sample), route.parameters(sample)], allow_nan=False)
        except ContractError as exc:
            raise RouteError(f"{exc} (tried on a sample request)") from None
        except (TypeError, ValueError) as exc:  # a function, a NaN: nothing JSON carries
            raise RouteError(f"{route.where}.request gives what JSON cannot carry ({exc})") from None
        if MARKER not in sent:
            raise RouteError(
                f"{route.where}.request drops idempotency_key: the service could not tell a retried call "
                'from a new one; pass it in the payload (e.g. "idempotencyKey": idempotency_key), or, for a '
                "command that only reads, say so with changes_nothing = true"
            )


def _sample(model: Any, *, optional: bool = True) -> dict[str, Any]:
    """A request of `model` with every field filled (the key with MARKER), or without its
    optional ones, to try mappings on."""
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        hint = str(field.annotation)
        if not optional and name != "idempotency_key" and not field.is_required():
            values[name] = None
        elif name == "idempotency_key":
            values[name] = MARKER
        elif "list" in hint:
            values[name] = [{"sku": "SKU-1", "quantity": 1}] if "Line" in hint else ["someone@example.com"]
        elif "int" in hint:
            values[name] = 1
        elif "bool" in hint:
            values[name] = True
        else:
            values[name] = f"sample-{name}"
    return values


class HttpBridge:
    """Calls PURISTA commands over one pooled HTTP client per worker."""

    def __init__(self, routes: dict[str, Route], *, token: str | None = None, ca_file: Path | None = None) -> None:
        self.routes = routes
        self._token = token
        self._verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:  # made in the worker's event loop, on the first call
            import httpx

            self._client = httpx.AsyncClient(verify=self._verify, follow_redirects=False)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def headers(self) -> dict[str, str]:
        headers = {"accept": "application/json, application/problem+json"}
        traced = _open_telemetry()
        if traced is not None:  # tracing is on: the call continues the activity's span
            headers["x-trace-id"], carried = traced
            headers.update(carried)
        elif (trace := trace_id()) is not None:
            headers["x-trace-id"] = trace
            headers["traceparent"] = f"00-{trace}-{secrets.token_hex(8)}-01"
        if self._token:
            headers["authorization"] = f"Bearer {self._token}"
        return headers

    async def call(self, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        import asyncio

        route = self.routes[command]
        # The mappings run beside the event loop: a slow expression holds up this call, not the worker.
        url, query, content = await asyncio.to_thread(_request, route, payload)
        headers = self.headers()
        if content is not None:
            headers["content-type"] = "application/json"
        try:
            # One deadline for the whole answer, body included (httpx times each read apart).
            status, response_headers, raw = await asyncio.wait_for(
                self._exchange(route, url, query, content, headers), route.timeout
            )
            return await asyncio.to_thread(self._answer, route, url, status, response_headers, raw)
        except TimeoutError:
            raise TransientError(f"{command}: {route.method} {url} gave no answer within {route.timeout:g}s") from None
        except (BusinessError, TransientError, ContractError) as exc:
            # The trace id the service gave, else the one sent: a failure can always be found in its log.
            exc.details["trace_id"] = exc.details.get("trace_id") or headers.get("x-trace-id")
            if self._token:  # a service that echoes the request's headers does not get the token into the history
                if isinstance(exc, BusinessError):
                    exc.message = exc.message.replace(self._token, "<token>")
                exc.args = tuple(a.replace(self._token, "<token>") if isinstance(a, str) else a for a in exc.args)
                said = json.dumps(exc.details, default=str)
                if self._token in said:
                    exc.details = json.loads(said.replace(self._token, "<token>"))
            raise

    async def _exchange(
        self, route: Route, url: str, query: dict[str, str], content: bytes | None, headers: dict[str, str]
    ) -> tuple[int, Any, bytes]:
        import httpx

        try:
            async with self.client.stream(
                route.method, url, params=query or None, content=content, headers=headers, timeout=route.timeout
            ) as response:
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_ANSWER:
                        raise ContractError(
                            f"{route.command}: {route.method} {url} answered more than {MAX_ANSWER >> 20} MiB",
                            details={"status": response.status_code},
                        )
                return response.status_code, response.headers, bytes(raw)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            raise TransientError(f"{route.command}: {route.method} {url} failed: {exc or type(exc).__name__}") from None

    def _answer(self, route: Route, url: str, status: int, headers: Any, raw: bytes) -> dict[str, Any]:
        command = route.command
        said = f"{route.method} {url} answered {status}"
        if status == 204:
            return self._mapped(route, {})
        if status == 202:
            raise ContractError(
                f"{command}: {said} Accepted, an asynchronous job and not the command's result: "
                f"expose the command at {route.where} synchronously (200 with its output)",
                details=_bounded({"status": status, "body": _body(raw, headers)}),
            )
        if 200 <= status < 300:
            answer = json_body(raw, headers)
            if not isinstance(answer, dict):
                what = "not JSON" if answer is _NOT_JSON else f"not a JSON object but {type(answer).__name__}"
                raise ContractError(f"{command}: {said} with a body that is {what}", details={"status": status})
            return self._mapped(route, answer)
        error = _error(status, headers, raw)
        if status in RETRIED or status >= 500:
            raise TransientError(
                f"{command}: {said}: {error['message']}", retry_after=_retry_after(headers), details=error
            )
        if 400 <= status < 500:
            raise BusinessError(error["code"], f"{command}: {error['message']}", details=error)
        raise ContractError(f"{command}: {said}, which is not an answer flowctl reads", details=error)

    def _mapped(self, route: Route, answer: dict[str, Any]) -> dict[str, Any]:
        mapped = route.answer.apply(answer, route.command) if route.answer else answer
        if not isinstance(mapped, dict):
            raise ContractError(
                f"{route.command}: the answer ({'mapped by ' + route.where + '.answer' if route.answer else 'as sent'}) "
                f"is not a JSON object but {type(mapped).__name__}",
                details={"answer": answer},
            )
        return mapped


def _request(route: Route, payload: dict[str, Any]) -> tuple[str, dict[str, str], bytes | None]:
    """The URL, query and body of a call: the route's mappings applied to flowctl's request."""
    url, query = route.url_and_query(route.parameters(payload))
    if route.method not in ("POST", "PUT", "PATCH"):
        return url, query, None
    body = route.payload(payload)
    try:
        return url, query, json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:  # a function, a NaN, a lone surrogate: nothing JSON carries
        raise ContractError(f"{route.command}: {route.where}.request gives what JSON cannot carry ({exc})") from None


_NOT_JSON = object()


def json_body(raw: bytes, headers: Any) -> Any:
    """The body read as JSON, in the charset it declares (UTF-8 unless it says); _NOT_JSON if it is not."""
    charset = _charset(headers)
    try:
        return json.loads(raw.decode(charset))
    except (ValueError, RecursionError, LookupError):  # not JSON, nested past reading, an unknown charset
        return _NOT_JSON


def _charset(headers: Any) -> str:
    found = re.search(r"charset=\"?([A-Za-z0-9._-]+)", headers.get("content-type", "") if headers else "")
    return found.group(1) if found else "utf-8"


def _body(raw: bytes, headers: Any) -> Any:
    answer = json_body(raw, headers)
    return answer if answer is not _NOT_JSON else raw.decode(_charset(headers), errors="replace")[:MAX_SAID]


def _bounded(details: dict[str, Any]) -> dict[str, Any]:
    """`details` as they may be kept in a failure (the workflow's history holds it): at most
    MAX_DETAILS bytes of JSON, else what does not fit is said to be left out."""
    try:
        size = len(json.dumps(details, default=str))
    except (TypeError, ValueError, RecursionError):
        size = MAX_DETAILS + 1
    if size <= MAX_DETAILS:
        return details
    kept = {k: v for k, v in details.items() if isinstance(v, str | int | float | bool) or v is None}
    return {**kept, "left_out": f"the service's details ({size} bytes) are longer than flowctl keeps"}


def _error(status: int, headers: Any, raw: bytes) -> dict[str, Any]:
    """What a refusal says, in either of PURISTA's styles: message, code, trace id, details."""
    body = _body(raw, headers)
    reason = f"HTTP {status}"
    error: dict[str, Any] = {"status": status, "trace_id": headers.get("x-trace-id")}
    if isinstance(body, dict):
        message = body.get("detail") or body.get("message") or body.get("title")  # v3 problem+json, then v2
        data: dict[str, Any] = body["data"] if isinstance(body.get("data"), dict) else {}
        error["message"] = str(message)[:MAX_SAID] if message else reason
        error["code"] = str(data.get("code") or body.get("code") or body.get("type") or status)[:200]
        error["trace_id"] = str(body.get("traceId") or error["trace_id"] or "")[:200] or None
        details = {k: body[k] for k in ("errors", "details", "data", "instance", "type", "title") if k in body}
        if details:
            error["details"] = details
    else:
        error["message"] = (body.strip()[:300] if isinstance(body, str) and body.strip() else None) or reason
        error["code"] = str(status)
    return _bounded(error)


def _retry_after(headers: Any) -> float | None:
    """The seconds `Retry-After` asks for (a number of seconds or an HTTP date), if it says; at most an hour."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP date is in GMT, said or not
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def _open_telemetry() -> tuple[str, dict[str, str]] | None:
    """(trace id, traceparent and the like) of the current OpenTelemetry span, when tracing is on."""
    if "opentelemetry" not in sys.modules:  # tracing is off: nothing of it was imported
        return None
    from opentelemetry import propagate, trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    carried: dict[str, str] = {}
    propagate.inject(carried)
    return format(context.trace_id, "032x"), carried


def trace_id() -> str | None:
    """Without tracing, the workflow's trace id: the same for every call of one workflow (made
    from its id), None outside an activity."""
    from temporalio import activity

    workflow_id = activity.info().workflow_id if activity.in_activity() else None
    return hashlib.sha256(workflow_id.encode()).hexdigest()[:32] if workflow_id else None


def token_from(env: str | None, file: Path | None, where: str = "services.http") -> str | None:
    """The bearer token the settings point at (a variable, or a file's first line), never printed."""
    if env and file is not None:
        raise RouteError(f"{where}.token_env and {where}.token_file are both set: give one")
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise RouteError(f"{where}.token_env names {env}, which is not set")
    elif file is not None:
        try:
            text = file.read_bytes()[:65536].decode()
        except OSError as exc:
            raise RouteError(f"{where}.token_file {file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise RouteError(f"{where}.token_file {file} is not UTF-8 text") from None
        value = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not value:
            raise RouteError(f"{where}.token_file {file} is empty")
    else:
        return None
    if not re.fullmatch(r"[\x21-\x7e]+", value):  # what an HTTP header carries, and a token is made of
        source = f"the variable {env}" if env else f"the file {file}"
        raise RouteError(f"the token in {source} holds spaces, control or non-ASCII characters: not a bearer token")
    return value
