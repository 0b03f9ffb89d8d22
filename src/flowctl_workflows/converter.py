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
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import CompositePayloadConverter, DefaultPayloadConverter, JSONPlainPayloadConverter

from flowctl_workflows.numbers import exact_float, keys_once, not_a_number


class ExactJSONPayloadConverter(PydanticJSONPlainPayloadConverter):
    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            json.loads(payload.data, parse_float=exact_float, parse_constant=not_a_number, object_pairs_hook=keys_once)
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
