"""flowctl's search attributes on a cluster: which are missing, and registering them.

Workflows upsert these attributes; on a namespace that lacks one, the workflow task fails
and retries forever, so the worker checks first and `flowctl server setup` registers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowctl.errors import NotFoundError
from flowctl_workflows.attributes import TYPES as SEARCH_ATTRIBUTES

if TYPE_CHECKING:
    from temporalio.client import Client


async def missing(client: Client) -> list[str] | None:
    """The attributes the namespace lacks, or None if the server will not say (no permission)."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.service import RPCError

    try:
        found = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError:
        return None
    return sorted(set(SEARCH_ATTRIBUTES) - set(found.custom_attributes))


async def require(client: Client) -> None:
    """Refuse to go on where workflows would hang on a missing attribute."""
    lacking = await missing(client)
    if lacking:
        raise NotFoundError(
            f"namespace {client.namespace!r} lacks flowctl's search attributes: {', '.join(lacking)}",
            hint="register them with 'flowctl server setup' (or 'temporal operator search-attribute create')",
        )


async def register(client: Client) -> list[str]:
    """Register the missing attributes; returns the names added (none when all exist).

    Where the server cannot list them (the time-skipping test server), all are added.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.service import RPCError, RPCStatusCode

    lacking = await missing(client)
    names = sorted(SEARCH_ATTRIBUTES) if lacking is None else lacking
    if not names:
        return []
    types = {name: IndexedValueType.Value(_enum_name(SEARCH_ATTRIBUTES[name])) for name in names}
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=types)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            return []
        raise
    return names


def _enum_name(kind: str) -> str:
    """`KeywordList` → `INDEXED_VALUE_TYPE_KEYWORD_LIST`, the operator API's spelling."""
    import re

    return "INDEXED_VALUE_TYPE_" + re.sub(r"(?<!^)(?=[A-Z])", "_", kind).upper()
