"""The value types models and settings share, as pydantic fields: durations and money."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

from flowctl_workflows import durations
from flowctl_workflows.money import as_written_amount, whole_cents

Duration = Annotated[
    timedelta,
    BeforeValidator(durations.parse),
    PlainSerializer(durations.format, return_type=str),
    WithJsonSchema({"type": "string", "description": "a duration like 30s, 5m, 24h, 7d", "examples": ["7d"]}),
]
Money = Annotated[float, BeforeValidator(as_written_amount), AfterValidator(whole_cents)]
