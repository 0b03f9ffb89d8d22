"""`flowctl relay`: PURISTA events in, workflow signals (or updates) out.

A PURISTA subscription POSTs an event; the relay finds its mapping (`relay.events`, by event
name), the workflow (an id template over the event's data), the message and its payload (a
JSONata expression over the data), checks the payload against the kind's model as `flowctl
signal` does, and sends it. The sender learns what to do from the status: 2xx done (a
redelivery included: the event's id makes the signal, or the update, once), 4xx an event that
can never succeed (a JSON body says why), 503 try again (Temporal unreachable, or no worker
took an update in time).

Events come as CloudEvents 1.0, structured (`application/cloudevents+json`, what
`toCloudEvent` gives) or binary (`ce-*` headers, the body the data), or as a raw PURISTA
message (`eventName`, `id`, `payload`).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import string
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flowctl import catalog
from flowctl.errors import FlowctlError, UsageError

if TYPE_CHECKING:
    from aiohttp import web
    from temporalio.client import Client

    from flowctl.config import Relay as RelaySettings
    from flowctl_workflows.kinds import Kind

MAX_EVENT = 1 << 20  # bytes of one event; a PURISTA message is far smaller
CALL_TIMEOUT = timedelta(seconds=4)  # for one call to Temporal: under a sender's own timeout (PURISTA's is 5s)
EVENT_IDS = uuid.UUID("5d1c3a52-6a2e-4c55-9b53-0c1e7f2b9a11")  # the namespace of request ids made from event ids


class Refused(Exception):
    """An event answered with `status` and `reason` (4xx: it can never succeed; 503: try again)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Event:
    name: str
    id: str
    data: Any
    traceparent: str | None = None  # the W3C trace context it came with, if any
    trace_id: str | None = None  # PURISTA's trace id (`traceid`), if any


@dataclass(frozen=True)
class Mapping:
    """One event's mapping, compiled."""

    event: str
    kind: Kind
    workflow: str  # id template: `{field}` names a field of the event's data
    fields: tuple[str, ...]  # the fields it names, read from it once
    group: str  # signal or update
    message: str
    payload: Any  # compiled JSONata, or None: the data as it is
    start_input: Any  # compiled JSONata, or None: the workflow is not started by the event

    def workflow_id(self, data: Any) -> str:
        names = self.fields
        if not isinstance(data, dict):
            raise Refused(
                422, f"event {self.event!r}: its data is not a JSON object, so {self.workflow!r} names nothing"
            )
        missing = [name for name in names if data.get(name) in (None, "")]
        if missing:
            raise Refused(422, f"event {self.event!r}: its data has no {', '.join(missing)} for {self.workflow!r}")
        odd = [name for name in names if isinstance(data[name], bool) or not isinstance(data[name], str | int)]
        if odd:
            raise Refused(
                422, f"event {self.event!r}: {odd[0]} in its data is not text or a whole number, so names no workflow"
            )
        return self.workflow.format_map({name: data[name] for name in names})


def compile_events(relay: RelaySettings) -> dict[str, Mapping]:
    """Every event mapping, checked: a template that fits no kind, a message the kind does not
    have, an expression that does not parse: `UsageError` naming the key."""
    import jsonata

    mappings = {}
    for event, spec in relay.events.items():
        where = f'relay.events."{event}"'
        try:
            parsed = [(name, fmt, conversion) for _, name, fmt, conversion in string.Formatter().parse(spec.workflow)]
        except ValueError as exc:
            raise UsageError(f"{where}.workflow {spec.workflow!r} is not an id template: {exc}") from None
        names = tuple(name for name, _, _ in parsed if name is not None)
        plain = all(not fmt and not conversion for name, fmt, conversion in parsed if name is not None)
        if not plain or any(not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) for name in names):
            raise UsageError(f"{where}.workflow {spec.workflow!r}: each {{...}} names one field of the event's data")
        kind = catalog.kind_for_id(spec.workflow.split("{", 1)[0] or "-")
        if kind is None:
            prefixes = ", ".join(catalog.get(name).id_template.split("{", 1)[0] for name in catalog.names())
            raise UsageError(f"{where}.workflow {spec.workflow!r} fits no kind's ids (they begin {prefixes})")
        group, message = ("signal", spec.signal) if spec.signal else ("update", spec.update)
        assert message is not None
        try:
            catalog.message(kind, group, message)
        except FlowctlError as exc:
            raise UsageError(f"{where}.{group}: {exc}") from None
        compiled = {}
        for key in ("payload", "start_input"):
            text = getattr(spec, key)
            try:
                compiled[key] = jsonata.Jsonata(text) if text is not None else None
            except Exception as exc:  # noqa: BLE001 - the library raises its own JException
                raise UsageError(f"{where}.{key}: not a JSONata expression: {exc}") from None
        mappings[event] = Mapping(
            event, kind, spec.workflow, names, group, message, compiled["payload"], compiled["start_input"]
        )
    return mappings


def parse_event(headers: dict[str, str], body: bytes) -> Event:
    """The event a request carries, in any of the three forms; `Refused` 400 when it is none."""
    headers = {k.lower(): v for k, v in headers.items()}
    try:
        document = json.loads(body) if body.strip() else None
        # Text a workflow can hold: a lone surrogate (`"\ud800"`) is JSON, but no UTF-8.
        json.dumps([document, headers.get("ce-type"), headers.get("ce-id")], ensure_ascii=False).encode()
    except UnicodeEncodeError:  # before ValueError, which it is
        raise Refused(400, "the event holds text that is not UTF-8 (a lone surrogate, or bytes)") from None
    except (ValueError, RecursionError):
        raise Refused(400, "the body is not JSON") from None
    if "ce-type" in headers:  # CloudEvents binary mode: the attributes in headers, the body the data
        event_id = headers.get("ce-id")
        if not event_id or "ce-specversion" not in headers:
            raise Refused(400, "a CloudEvent needs ce-specversion, ce-type and ce-id")
        return Event(headers["ce-type"], event_id, document, headers.get("traceparent"), headers.get("ce-traceid"))
    if not isinstance(document, dict):
        raise Refused(400, "the body is not a JSON object: neither a CloudEvent nor a PURISTA message")
    if "specversion" in document:  # structured mode
        name, event_id = document.get("type"), document.get("id")
        if not isinstance(name, str) or not name or not isinstance(event_id, str) or not event_id:
            raise Refused(400, "a CloudEvent needs a type and an id")
        data = document.get("data")
        if data is None and isinstance(document.get("data_base64"), str):
            raise Refused(400, "a CloudEvent with data_base64 is not supported: send its data as JSON")
        traceparent = document.get("traceparent") or headers.get("traceparent")
        return Event(name, event_id, data, _text(traceparent), _text(document.get("traceid")))
    name, event_id = document.get("eventName"), document.get("id")  # a raw PURISTA message
    if not isinstance(name, str) or not name or not isinstance(event_id, str) or not event_id:
        raise Refused(400, "neither a CloudEvent (specversion, type, id) nor a PURISTA message (eventName, id)")
    return Event(
        name, event_id, document.get("payload"), _text(headers.get("traceparent")), _text(document.get("traceId"))
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def authorized(token: str | None, header: str | None) -> bool:
    """Whether the request carries the relay's bearer token (any request, when it has none)."""
    if token is None:
        return True
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:
        return hmac.compare_digest(given.strip().encode(), token.encode())
    except UnicodeEncodeError:  # bytes that are not text: not the token
        return False


class Relay:
    """Delivers events to workflows through one Temporal client."""

    def __init__(self, client: Client, mappings: dict[str, Mapping], *, task_queue: str, update_timeout: timedelta):
        self.client = client
        self.mappings = mappings
        self.task_queue = task_queue
        self.update_timeout = update_timeout

    async def deliver(self, event: Event) -> dict[str, Any]:
        with _linked_span(event):
            return await self._deliver(event)

    async def _deliver(self, event: Event) -> dict[str, Any]:
        mapping = self.mappings.get(event.name)
        if mapping is None:
            known = ", ".join(sorted(self.mappings)) or "none"
            raise Refused(422, f"no mapping for event {event.name!r} (relay.events has: {known})")
        workflow_id = mapping.workflow_id(event.data)
        payload = self._payload(mapping, event)
        request_id = str(uuid.uuid5(EVENT_IDS, f"{event.name}/{event.id}"))
        said = {"event": event.name, "id": event.id, "workflow_id": workflow_id, mapping.group: mapping.message}
        if mapping.group == "update":
            return {**said, "result": await self._update(mapping, workflow_id, payload, request_id)}
        started = await self._signal(mapping, event, workflow_id, payload, request_id)
        return {**said, **({"started": True} if started else {})}

    def _payload(self, mapping: Mapping, event: Event) -> Any:
        from flowctl.ops import messages

        raw = _evaluate(mapping.payload, event, "payload") if mapping.payload is not None else event.data
        try:
            return messages.payload_for(mapping.kind, mapping.group, mapping.message, raw, [])
        except UsageError as exc:
            raise Refused(422, f"event {event.name!r}: {exc}") from None

    async def _signal(self, mapping: Mapping, event: Event, workflow_id: str, payload: Any, request_id: str) -> bool:
        from temporalio.api.common.v1 import Payloads, WorkflowExecution
        from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest
        from temporalio.service import RPCError, RPCStatusCode

        encoded = Payloads(payloads=await self.client.data_converter.encode([payload] if payload is not None else []))
        request = SignalWorkflowExecutionRequest(
            namespace=self.client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            signal_name=mapping.message,
            input=encoded,
            identity=self.client.identity,
            request_id=request_id,  # the server records a signal once per request id: a redelivery is not a second one
        )
        try:
            with _temporal(workflow_id):
                # Not retried here: the sender retries on the 503, and is not kept waiting meanwhile.
                await self.client.workflow_service.signal_workflow_execution(request, retry=False, timeout=CALL_TIMEOUT)
            return False
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            closed = "already completed" in exc.message
            if mapping.start_input is None or closed:
                why = "has already ended" if closed else "does not exist"
                raise Refused(404 if not closed else 409, f"workflow {workflow_id!r} {why}") from None
        await self._signal_with_start(mapping, event, workflow_id, encoded, request_id)
        return True

    async def _signal_with_start(
        self, mapping: Mapping, event: Event, workflow_id: str, signal: Any, request_id: str
    ) -> None:
        from pydantic import ValidationError
        from temporalio.api.common.v1 import Payloads, WorkflowType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import SignalWithStartWorkflowExecutionRequest

        from flowctl.inputs import describe_validation_error

        raw = _evaluate(mapping.start_input, event, "start_input")
        try:
            start = mapping.kind.input_model.model_validate(raw)
        except ValidationError as exc:
            raise Refused(422, f"event {event.name!r}: {describe_validation_error(exc, 'start_input')}") from None
        if mapping.kind.workflow_id(start) != workflow_id:
            raise Refused(
                422, f"event {event.name!r}: start_input makes {mapping.kind.workflow_id(start)!r}, not {workflow_id!r}"
            )
        request = SignalWithStartWorkflowExecutionRequest(
            namespace=self.client.namespace,
            workflow_id=workflow_id,
            workflow_type=WorkflowType(name=mapping.kind.workflow_type),
            task_queue=TaskQueue(name=self.task_queue),
            input=Payloads(payloads=await self.client.data_converter.encode([start])),
            signal_name=mapping.message,
            signal_input=signal,
            identity=self.client.identity,
            request_id=request_id,
        )
        with _temporal(workflow_id):
            await self.client.workflow_service.signal_with_start_workflow_execution(
                request, retry=False, timeout=CALL_TIMEOUT
            )

    async def _update(self, mapping: Mapping, workflow_id: str, payload: Any, request_id: str) -> Any:
        from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
        from temporalio.exceptions import ApplicationError
        from temporalio.service import RPCError, RPCStatusCode

        handle = self.client.get_workflow_handle(workflow_id)
        try:
            with _temporal(workflow_id):
                return await handle.execute_update(
                    mapping.message, payload, id=request_id, rpc_timeout=self.update_timeout
                )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise Refused(422, f"update {mapping.message!r} refused by {workflow_id!r}: {message}") from None
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise Refused(503, f"no worker took update {mapping.message!r} on {workflow_id!r} in time") from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise Refused(404, f"workflow {workflow_id!r} does not exist or has ended") from None
            raise


@contextlib.contextmanager
def _linked_span(event: Event) -> Iterator[None]:
    """With tracing on, a span for the event, linked to the trace it came with (its traceparent),
    so the signal it becomes is found from the workflow's trace."""
    if "opentelemetry" not in sys.modules:
        yield
        return
    from opentelemetry import propagate, trace

    links = []
    if event.traceparent:
        remote = trace.get_current_span(propagate.extract({"traceparent": event.traceparent})).get_span_context()
        if remote.is_valid:
            links.append(trace.Link(remote))
    attributes = {
        "event.name": event.name,
        "event.id": event.id,
        **({"event.trace_id": event.trace_id} if event.trace_id else {}),
    }
    with trace.get_tracer("flowctl.relay").start_as_current_span(
        f"relay {event.name}", links=links, attributes=attributes
    ):
        yield


def _evaluate(expression: Any, event: Event, key: str) -> Any:
    try:
        return expression.evaluate(event.data)
    except Exception as exc:  # noqa: BLE001 - the library raises its own JException
        raise Refused(
            422, f'event {event.name!r}: relay.events."{event.name}".{key} failed on its data: {exc}'
        ) from None


@contextlib.contextmanager
def _temporal(workflow_id: str) -> Iterator[None]:
    """Temporal's answers as the sender should act on them: unreachable → 503, try again."""
    from flowctl.ops.rpc import is_outage, timed_out

    try:
        yield
    except Exception as exc:
        if is_outage(exc) or timed_out(exc):
            raise Refused(503, f"Temporal is unreachable; the event for {workflow_id!r} was not delivered") from None
        raise


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def relay_token(relay: RelaySettings) -> str | None:
    """The bearer token senders must give, from the variable or file the settings name; one is
    required when the relay listens beyond loopback."""
    from flowctl_workflows.services.http import RouteError, token_from

    try:
        token = token_from(relay.token_env, relay.token_file)
    except RouteError as exc:
        raise UsageError(str(exc).replace("services.http.", "relay.")) from None
    if token is None and relay.host not in LOOPBACK:
        raise UsageError(
            f"relay.host {relay.host} is beyond loopback: anyone who reaches it could signal workflows",
            hint="set relay.token_env (or relay.token_file) to a secret the senders give as a bearer token",
        )
    return token


def application(relay: Relay, token: str | None) -> Any:
    """The relay's HTTP application: POST an event to / (or /events); GET /healthz."""
    from aiohttp import web

    async def receive(request: web.Request) -> web.Response:
        if not authorized(token, request.headers.get("authorization")):
            return _json(401, {"error": "a bearer token is required, and this is not it"})
        try:
            body = await request.read()
            event = parse_event(dict(request.headers), body)
            done = await relay.deliver(event)
        except Refused as refused:
            headers = {"retry-after": "5"} if refused.status == 503 else None
            return _json(refused.status, {"error": refused.reason}, headers)
        except web.HTTPRequestEntityTooLarge:
            return _json(413, {"error": f"an event is at most {MAX_EVENT} bytes"})
        except Exception as exc:  # a bug: one line to the sender (who retries), the trace in the log
            logging.getLogger("flowctl.relay").exception("event not delivered")
            return _json(500, {"error": f"internal error (a bug in flowctl): {type(exc).__name__}: {exc}"})
        return _json(200, done)

    async def health(request: web.Request) -> web.Response:
        return _json(200, {"status": "ok", "events": sorted(relay.mappings)})

    app = web.Application(client_max_size=MAX_EVENT)
    app.router.add_post("/", receive)
    app.router.add_post("/events", receive)
    app.router.add_get("/healthz", health)
    return app


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    from aiohttp import web

    from flowctl.output import to_json

    return web.Response(status=status, text=to_json(body), content_type="application/json", headers=headers)


async def serve(relay: Relay, token: str | None, host: str, port: int, *, on_ready: Any, stop: Any) -> None:
    """Serve until `stop` is set, then finish the requests in flight and close."""
    from aiohttp import web

    from flowctl.health import quiet_logger

    runner = web.AppRunner(application(relay, token), access_log=None, logger=quiet_logger("flowctl.relay"))
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise UsageError(
                f"relay: cannot listen on {host}:{port}: {exc.strerror}",
                hint="check relay.host (--host) and relay.port (--port)",
            ) from None
        server: Any = site._server  # the listening socket: the port bound when 0 asked for any
        on_ready(int(server.sockets[0].getsockname()[1]) if server is not None and server.sockets else port)
        await stop.wait()
    finally:
        await runner.cleanup()
