"""What a service's OpenAPI document tells the http bridge: whether each route can work (the
checks `flowctl worker` and `flowctl services check` run at start), and a first route table
for a service flowctl has no routes for yet (`flowctl services routes --from URL`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .http import MAX_ANSWER, PARAM, HttpBridge, json_body

if TYPE_CHECKING:
    import httpx


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
    import asyncio

    import httpx

    client = bridge.client
    health: dict[str, str | None] = {}  # base URL -> None when it answers, else why not
    served: dict[str, set[tuple[str, str]] | None] = {}  # OpenAPI URL -> (method, path) pairs, None: none served
    for route in bridge.routes.values():
        if route.base_url not in health:
            try:
                answer = await asyncio.wait_for(
                    client.get(f"{route.base_url}/healthz", headers=bridge.headers(), timeout=timeout), timeout
                )
                health[route.base_url] = (
                    None if answer.status_code == 200 else f"/healthz answered {answer.status_code}"
                )
            except (httpx.HTTPError, TimeoutError) as exc:
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


async def document(client: httpx.AsyncClient, url: str, headers: dict[str, str], timeout: float) -> tuple[int, Any]:
    """(status, the JSON document) at `url`, read whole within `timeout` and at most 4 x MAX_ANSWER
    bytes (a larger one is None): what a service says of its commands cannot exhaust the reader."""
    import asyncio

    async def fetch() -> tuple[int, Any]:
        async with client.stream("GET", url, headers=headers, timeout=timeout) as answer:
            raw = bytearray()
            async for chunk in answer.aiter_bytes():
                raw += chunk
                if len(raw) > MAX_ANSWER * 4:
                    return answer.status_code, None
            return answer.status_code, json_body(bytes(raw), answer.headers)

    return await asyncio.wait_for(fetch(), timeout)


async def _operations(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], timeout: float
) -> set[tuple[str, str]] | None:
    """(method, path shape) of every operation the service's OpenAPI lists; None when it serves none."""
    from urllib.parse import urlsplit

    import httpx

    try:
        status, spec = await document(client, url, headers, timeout)
    except (httpx.HTTPError, TimeoutError):
        return None
    if status != 200 or not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
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
            shape = r"^(?P<mount>[A-Za-z0-9._~/-]*?)/v(?P<version>\d{1,9})/(?P<rest>[A-Za-z0-9._~/:{}-]+)$"
            found = re.match(shape, path) if isinstance(path, str) else None
            if found is None:  # not a PURISTA command's path (or one no route could be written for)
                continue
            name = re.sub(r"[^A-Za-z0-9_.-]", "", str(operation.get("operationId") or ""))[:100]
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


NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a field name JSONata reads without quoting


def _route(operation: dict[str, Any], contract: Any) -> dict[str, Any]:
    """One route: the operation's method and path, and mappings of the fields whose names agree.
    Names that are not plain identifiers are left out (a person adds them); no route is said
    to change nothing: a missing key is for `services check` to refuse, not for this to waive."""
    found = operation["match"]
    path = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", r":\1", found["rest"])
    request_fields = set(contract.request.model_fields)
    route: dict[str, Any] = {"method": operation["method"], "path": path}
    properties = _properties(_dig(operation["op"], "requestBody", "content", "application/json", "schema"))
    if properties:
        have = ", ".join(sorted(request_fields))
        pairs = [f'"{n}": {_snake(n)}' if _snake(n) in request_fields else f'"{n}": null /* flowctl has: {have} */'
                 for n in properties]  # fmt: skip
        route["request"] = "{" + ", ".join(pairs) + "}"
    names = re.findall(r":([A-Za-z_][A-Za-z0-9_]*)", path)
    if names:
        pairs = [f'"{n}": {_snake(n)}' if _snake(n) in request_fields else f'"{n}": null /* which field? */'
                 for n in names]  # fmt: skip
        route["params"] = "{" + ", ".join(pairs) + "}"
    answered = _properties(_success_schema(operation["op"]))
    if answered:
        theirs = {_snake(name): name for name in answered}
        pairs = []
        for field in contract.answer.model_fields:
            if field == "note" and "note" not in theirs:
                continue
            source = theirs.get(field) or next(
                (theirs[k] for k in theirs if k.endswith(field) or field.endswith(k)), None
            )
            pairs.append(f'"{field}": {source}' if source else f'"{field}": null /* the service answers: '
                         f'{", ".join(answered)} */')  # fmt: skip
        route["answer"] = "{" + ", ".join(pairs) + "}"
    return route


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _properties(schema: Any) -> list[str]:
    """A schema's property names that JSONata reads unquoted (the others are left to a person)."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return (
        [name for name in properties if isinstance(name, str) and NAME.fullmatch(name)]
        if isinstance(properties, dict)
        else []
    )


def _success_schema(operation: dict[str, Any]) -> Any:
    for status in ("200", "201"):
        for kind in ("application/json", "application/problem+json"):
            schema = _dig(operation, "responses", status, "content", kind, "schema")
            if schema is not None:
                return schema
    return None
