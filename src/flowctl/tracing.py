"""OpenTelemetry tracing, when `tracing.otlp_endpoint` is set; without it nothing of
OpenTelemetry is imported.

`flowctl start` opens the trace (its span is the parent of the SDK's StartWorkflow span), the
workflow and each activity continue it through Temporal's headers (the SDK's
TracingInterceptor, on the client and the worker), the http bridge carries it to the services
as `traceparent` (and its id as `x-trace-id`), and spans go to the OTLP/HTTP endpoint. A
process flushes its spans before it exits.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowctl.config import Settings

_provider: Any = None  # the process's tracer provider, once tracing is set up


def enabled(settings: Settings) -> bool:
    return settings.tracing.otlp_endpoint is not None


def interceptors(settings: Settings) -> list[Any]:
    """The client interceptors that carry the trace (none without tracing); sets tracing up once."""
    if not enabled(settings):
        return []
    _setup(settings)
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def _setup(settings: Settings) -> None:
    global _provider
    if _provider is not None:
        return
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401 - only to know it is there
    except ImportError:
        from flowctl.errors import UsageError

        raise UsageError(
            "tracing.otlp_endpoint is set, but OpenTelemetry is not installed here",
            hint="pip install 'flowctl[tracing]', or unset tracing.otlp_endpoint",
        ) from None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Spans are sent on the side: a collector that is down or slow costs a command at most the
    # flush's second, and its failures do not reach the command's stderr in the library's words.
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    exporter = OTLPSpanExporter(endpoint=settings.tracing.otlp_endpoint, timeout=2)
    provider = TracerProvider(resource=Resource.create({"service.name": settings.tracing.service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter, export_timeout_millis=2000))
    trace.set_tracer_provider(provider)
    _provider = provider


@contextlib.contextmanager
def span(settings: Settings, name: str, **attributes: str) -> Iterator[str | None]:
    """A span around what a command does, its trace id (32 hex digits) given; None without tracing."""
    if not enabled(settings):
        yield None
        return
    _setup(settings)
    from opentelemetry import trace

    with trace.get_tracer("flowctl").start_as_current_span(name, attributes=attributes) as current:
        yield format(current.get_span_context().trace_id, "032x")


def flush(timeout_millis: int = 1000) -> None:
    """Send the spans still buffered, waiting at most `timeout_millis` (a process that exits with
    os._exit runs no atexit hook, and a collector that is away must not hold the exit up)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=timeout_millis)
