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
        timeout = (route.timeout or http.timeout).total_seconds()
        if not 0 < timeout < step_timeout:
            raise RouteError(
                f"{where}.timeout {timeout:g}s must be above 0 and below the activity's start-to-close timeout "
                f"({step_timeout:g}s), or the activity is cut short before the service answers"
            )
        compiled = Route(
            command=command,
            method=route.method,
            base_url=route.base_url or http.base_url,
            api_mount="/" + (route.api_mount if route.api_mount is not None else http.api_mount).strip("/"),
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


def _keeps_the_key(route: Route, command: Any) -> None:
    """Refuse a route whose request (payload, or path and query) loses the idempotency key: the
    service could not tell a retry from a new call, and a retried charge would charge twice."""
    sample = _sample(command.request)
    try:
        sent = json.dumps([route.payload(sample), route.parameters(sample)], default=str)
    except ContractError as exc:
        raise RouteError(f"{exc} (tried on a sample request)") from None
    if MARKER not in sent:
        raise RouteError(
            f"{route.where}.request drops idempotency_key: the service could not tell a retried call "
            'from a new one; pass it in the payload (e.g. "idempotencyKey": idempotency_key), or, for a command '
            "that only reads, say so with changes_nothing = true"
        )


def _sample(model: Any) -> dict[str, Any]:
    """A request of `model` with every field filled (the key with MARKER), to try mappings on."""
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        hint = str(field.annotation)
        if name == "idempotency_key":
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
        import httpx

        route = self.routes[command]
        url, query = route.url_and_query(route.parameters(payload))
        body = route.payload(payload)
        headers = self.headers()
        send_body = route.method in ("POST", "PUT", "PATCH")
        if send_body:
            headers["content-type"] = "application/json"
        try:
            response = await self.client.request(
                route.method,
                url,
                params=query or None,
                content=json.dumps(body, ensure_ascii=False).encode() if send_body else None,
                headers=headers,
                timeout=route.timeout,
            )
        except httpx.TimeoutException:
            raise TransientError(f"{command}: {route.method} {url} gave no answer within {route.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise TransientError(f"{command}: {route.method} {url} failed: {exc or type(exc).__name__}") from None
        return self._answer(route, url, response)

    def _answer(self, route: Route, url: str, response: httpx.Response) -> dict[str, Any]:
        status, command = response.status_code, route.command
        said = f"{route.method} {url} answered {status}"
        if status == 204:
            return self._mapped(route, {})
        if status == 202:
            raise ContractError(
                f"{command}: {said} Accepted, an asynchronous job and not the command's result: "
                f"expose the command at {route.where} synchronously (200 with its output)",
                details={"status": status, "body": _body(response)},
            )
        if 200 <= status < 300:
            try:
                answer = response.json()
            except ValueError:
                raise ContractError(
                    f"{command}: {said} with a body that is not JSON", details={"status": status}
                ) from None
            return self._mapped(route, answer)
        error = _error(response)
        if status in RETRIED or status >= 500:
            raise TransientError(
                f"{command}: {said}: {error['message']}", retry_after=_retry_after(response), details=error
            )
        if 400 <= status < 500:
            raise BusinessError(error["code"], f"{command}: {error['message']}", details=error)
        raise ContractError(f"{command}: {said}, which is not an answer flowctl reads", details=error)

    def _mapped(self, route: Route, answer: Any) -> dict[str, Any]:
        mapped = route.answer.apply(answer, route.command) if route.answer else answer
        if not isinstance(mapped, dict):
            raise ContractError(
                f"{route.command}: the answer ({'mapped by ' + route.where + '.answer' if route.answer else 'as sent'}) "
                f"is not a JSON object but {type(mapped).__name__}",
                details={"answer": answer},
            )
        return mapped


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]


def _error(response: httpx.Response) -> dict[str, Any]:
    """What a refusal says, in either of PURISTA's styles: message, code, trace id, details."""
    body = _body(response)
    error: dict[str, Any] = {"status": response.status_code, "trace_id": response.headers.get("x-trace-id")}
    if isinstance(body, dict):
        message = body.get("detail") or body.get("message") or body.get("title")  # v3 problem+json, then v2
        data: dict[str, Any] = body["data"] if isinstance(body.get("data"), dict) else {}
        error["message"] = str(message) if message else response.reason_phrase or f"HTTP {response.status_code}"
        error["code"] = str(data.get("code") or body.get("code") or body.get("type") or response.status_code)
        error["trace_id"] = body.get("traceId") or error["trace_id"]
        details = {k: body[k] for k in ("errors", "details", "data", "instance", "type", "title") if k in body}
        if details:
            error["details"] = details
    else:
        error["message"] = (body.strip()[:300] if isinstance(body, str) and body.strip() else None) or (
            response.reason_phrase or f"HTTP {response.status_code}"
        )
        error["code"] = str(response.status_code)
    return error


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds `Retry-After` asks for (a number of seconds or an HTTP date), if it says."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


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


def token_from(env: str | None, file: Path | None) -> str | None:
    """The bearer token the settings point at (a variable, or a file's first line), never printed."""
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise RouteError(f"services.http.token_env names {env}, which is not set")
        return value
    if file is not None:
        try:
            value = file.read_text().strip().splitlines()[0] if file.read_text().strip() else ""
        except OSError as exc:
            raise RouteError(f"services.http.token_file {file}: {exc.strerror}") from None
        if not value:
            raise RouteError(f"services.http.token_file {file} is empty")
        return value
    return None


@dataclass(frozen=True)
class Checked:
    """One route as `flowctl services check` shows it."""

    command: str
    method: str
    url: str
    state: str  # "ok", or what is wrong
    fix: str | None = None  # the setting that would put it right

    @property
    def ok(self) -> bool:
        return self.state == "ok"


async def check(bridge: HttpBridge, timeout: float = 5.0) -> list[Checked]:
    """Whether every route can work: its service answers `GET /healthz`, and the command is in
    the service's `{apiMountPath}/openapi.json` when the service serves one."""
    import httpx

    client = bridge.client
    health: dict[str, str | None] = {}  # base URL -> None when it answers, else why not
    served: dict[str, set[tuple[str, str]] | None] = {}  # OpenAPI URL -> (method, path) pairs, None: none served
    for route in bridge.routes.values():
        if route.base_url not in health:
            try:
                answer = await client.get(f"{route.base_url}/healthz", headers=bridge.headers(), timeout=timeout)
                health[route.base_url] = (
                    None if answer.status_code == 200 else f"/healthz answered {answer.status_code}"
                )
            except httpx.HTTPError as exc:
                health[route.base_url] = f"does not answer ({exc or type(exc).__name__})"
        spec = f"{route.base_url}{route.api_mount}/openapi.json"
        if spec not in served and health[route.base_url] is None:
            served[spec] = await _operations(client, spec, bridge.headers(), timeout)
    rows = []
    for route in bridge.routes.values():
        down = health[route.base_url]
        operations = served.get(f"{route.base_url}{route.api_mount}/openapi.json")
        if down is not None:
            rows.append(Checked(route.command, route.method, route.template, f"service down: {route.base_url} {down}",
                                f"{route.where}.base_url or services.http.base_url"))  # fmt: skip
        elif operations is not None and (route.method.lower(), _shape(route.template)) not in operations:
            rows.append(Checked(route.command, route.method, route.template, "not among the service's commands "
                                "(its OpenAPI)", f"{route.where}.path, .method, .version or .api_mount"))  # fmt: skip
        else:
            rows.append(Checked(route.command, route.method, route.template, "ok"))
    return rows


async def _operations(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], timeout: float
) -> set[tuple[str, str]] | None:
    """(method, path shape) of every operation the service's OpenAPI lists; None when it serves none."""
    from urllib.parse import urlsplit

    import httpx

    try:
        answer = await client.get(url, headers=headers, timeout=timeout)
        spec = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        return None
    base = urlsplit(url).path.rsplit("/", 1)[0]  # the api mount, which OpenAPI paths may leave out
    found = set()
    for path, operations in spec["paths"].items():
        for method in operations if isinstance(operations, dict) else ():
            for full in (path, f"{base}{path}" if not path.startswith(base + "/") else path):
                found.add((method.lower(), _shape(full)))
    return found


def _shape(url_or_path: str) -> str:
    """A path with its parameters blanked (`/api/v1/x/{}/y`), to compare routes with OpenAPI's."""
    from urllib.parse import urlsplit

    path = urlsplit(url_or_path).path if "://" in url_or_path else url_or_path
    return PARAM.sub("{}", path).rstrip("/")


# Words that name the same thing in a command's name and a service's operation.
_SAME = {"notify": "notification", "notifications": "notification", "shipping": "shipment", "shipments": "shipment",
         "accounts": "account", "approvals": "approval", "screen": "screening", "screenings": "screening",
         "send": "send", "emails": "email", "workspaces": "workspace", "roles": "role", "charges": "charge",
         "refunds": "refund", "reservations": "reservation", "reserve": "reservation"}  # fmt: skip


def _words(text: str) -> set[str]:
    parts = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", text.replace("_", " ").replace(".", " "))
    return {_SAME.get(word.lower(), word.lower()) for word in parts}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def starting_table(spec: dict[str, Any], commands: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A first route table from a service's OpenAPI document: for each service command, the
    operation whose name and path share most words with it, and mappings of the fields whose
    names agree (camelCase to snake_case); fields it cannot pair are `null /* ... */` in the
    expressions, for a person to finish. `flowctl services check` then says what is left."""
    operations = []
    for path, methods in (spec.get("paths") or {}).items():
        for method, operation in (methods or {}).items() if isinstance(methods, dict) else ():
            if not isinstance(operation, dict) or method.lower() not in ("get", "post", "put", "patch", "delete"):
                continue
            found = re.match(r"^(?P<mount>.*?)/v(?P<version>\d+)/(?P<rest>.+)$", path)
            if found is None:
                continue
            name = str(operation.get("operationId") or "")
            operations.append({"method": method.upper(), "path": path, "name": name, "match": found,
                               "words": _words(name) | _words(found["rest"].replace("/", " ")), "op": operation})  # fmt: skip
    routes: dict[str, Any] = {}
    unmatched: list[str] = []
    taken: set[int] = set()
    for command, contract in commands.items():
        scored = sorted(((_score(command, op), i) for i, op in enumerate(operations) if i not in taken), reverse=True)
        if not scored or scored[0][0] < 2 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
            unmatched.append(command)
            continue
        index = scored[0][1]
        taken.add(index)
        routes[command] = _route(operations[index], contract)
    mounts = {op["match"]["mount"] for op in operations}
    versions = {int(op["match"]["version"]) for op in operations}
    table: dict[str, Any] = {"services": {"bridge": "http", "http": {"base_url": base_url, "routes": routes}}}
    if len(mounts) == 1:
        table["services"]["http"]["api_mount"] = mounts.pop() or "/"
    if len(versions) == 1:
        table["services"]["http"]["version"] = versions.pop()
    left = [f"{op['method']} {op['path']} ({op['name']})" for i, op in enumerate(operations) if i not in taken]
    return {"table": table, "unmatched": unmatched, "operations_left": left}


def _score(command: str, operation: dict[str, Any]) -> float:
    """Words a command and an operation share, those of its action twice; an operation named for
    the action first (`chargeCard` for payment.charge) wins a tie."""
    action = command.split(".", 1)[1]
    first = re.match(r"[a-z]+", operation["name"])
    leads = first is not None and first.group() == action.split("_", 1)[0]
    words = operation["words"]
    return len(_words(command) & words) + len(_words(action) & words) + (0.5 if leads else 0)


def _route(operation: dict[str, Any], contract: Any) -> dict[str, Any]:
    found = operation["match"]
    path = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", r":\1", found["rest"])
    request_fields = set(contract.request.model_fields)
    body = (((operation["op"].get("requestBody") or {}).get("content") or {}).get("application/json") or {}).get(
        "schema"
    )
    route: dict[str, Any] = {"method": operation["method"], "path": path}
    properties = (body or {}).get("properties") if isinstance(body, dict) else None
    if isinstance(properties, dict):
        pairs = []
        for name in properties:
            mine = _snake(name)
            pairs.append(f'"{name}": {mine}' if mine in request_fields else f'"{name}": null /* flowctl has: '
                         f'{", ".join(sorted(request_fields))} */')  # fmt: skip
        route["request"] = "{" + ", ".join(pairs) + "}"
    names = re.findall(r":([A-Za-z_][A-Za-z0-9_]*)", path)
    if names:
        route["params"] = (
            "{"
            + ", ".join(
                f'"{n}": {_snake(n)}' if _snake(n) in request_fields else f'"{n}": null /* which field? */'
                for n in names
            )
            + "}"
        )
    answer = _success_schema(operation["op"])
    if isinstance(answer, dict) and isinstance(answer.get("properties"), dict):
        theirs = {_snake(name): name for name in answer["properties"]}
        pairs = []
        for field in contract.answer.model_fields:
            if field == "note" and "note" not in theirs:
                continue
            source = theirs.get(field) or next(
                (theirs[k] for k in theirs if k.endswith(field) or field.endswith(k)), None
            )
            pairs.append(f'"{field}": {source}' if source else f'"{field}": null /* the service answers: '
                         f'{", ".join(answer["properties"])} */')  # fmt: skip
        route["answer"] = "{" + ", ".join(pairs) + "}"
    if "idempotency_key" not in route.get("request", "") and "idempotency_key" not in route.get("params", ""):
        route["changes_nothing"] = True  # it takes no key: say so only if it really changes nothing
    return route


def _success_schema(operation: dict[str, Any]) -> Any:
    for status in ("200", "201"):
        content = ((operation.get("responses") or {}).get(status) or {}).get("content") or {}
        for kind in ("application/json", "application/problem+json"):
            if kind in content:
                return content[kind].get("schema")
    return None
