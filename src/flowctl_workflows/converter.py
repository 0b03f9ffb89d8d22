"""The payload converter of every flowctl process: pydantic's, reading JSON numbers as written.

Pydantic reads a JSON number into a float itself, so 4.9999999999999999999 arrives as 5.0, and
`{"a": 1, "a": 2}` as `{"a": 2}`: the CLI refuses both, but a workflow started by another client
(the temporal CLI, a service) was charged the rounded amount. This converter refuses them before
pydantic reads the payload; the workflow's task then fails, as for any input that does not
decode, and `flowctl describe` says so. It runs in the workflow sandbox too: the standard
library and the SDK only.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import CompositePayloadConverter, DefaultPayloadConverter, JSONPlainPayloadConverter


class UnfitPayloadError(ValueError):
    """JSON that pydantic would read as something else than what was written."""


def _exact(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")) or Decimal(text) != Decimal(repr(value)):
        raise UnfitPayloadError(f"the number {text[:40]} has more digits than a number here can hold")
    return value


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise UnfitPayloadError(f"the key {key[:40]!r} appears twice")
        seen.add(key)
    return dict(pairs)


def _not_json(name: str) -> Any:
    raise UnfitPayloadError(f"{name} is not a JSON number")


class ExactJSONPayloadConverter(PydanticJSONPlainPayloadConverter):
    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            json.loads(payload.data, parse_float=_exact, parse_constant=_not_json, object_pairs_hook=_once)
        except (json.JSONDecodeError, RecursionError):
            pass  # pydantic says what is wrong with it
        return super().from_payload(payload, type_hint)


class ExactPayloadConverter(CompositePayloadConverter):
    """Temporal's default converters, JSON replaced by ExactJSONPayloadConverter."""

    def __init__(self) -> None:
        exact = ExactJSONPayloadConverter()
        super().__init__(
            *(
                exact if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )
