"""`flowctl services check|routes`: the bridge's route table, checked against its services, or a first one
written from a service's OpenAPI document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli import render
from flowctl.cli.app import OPERATE, app, fail, require_subcommand, state

if TYPE_CHECKING:
    from flowctl.output import Output

services_app = typer.Typer(help="The business services the workflows' steps call.", no_args_is_help=True)
services_app.callback()(require_subcommand)
app.add_typer(services_app, name="services", rich_help_panel=OPERATE)


@services_app.command(
    epilog="Examples: flowctl services check;  flowctl services check -o json\n\n"
    "Exit codes: 0 every route can work; 2 a route is wrong (no route for a command, a bad mapping, "
    "a path the service does not serve); 5 a service does not answer."
)
def check(ctx: typer.Context) -> None:
    """Check what `flowctl worker` checks at start: every command has a route, its service answers and serves it."""
    import asyncio

    from flowctl import worker
    from flowctl.config import ledger_path
    from flowctl.errors import ExitCode

    app_ = state(ctx)
    settings = app_.settings()
    if settings.services.bridge == "local":
        info = {"bridge": "local", "ledger": str(ledger_path(settings)), "routes": []}
        app_.output.data(info, lambda out: out.print(f"bridge local: the reference services, ledger {info['ledger']}"))
        return
    bridge = worker.http_bridge(settings)  # a route that cannot work is refused here, naming its key

    async def checked() -> list[Any]:
        try:
            return await worker.check_services(bridge)
        finally:
            await bridge.close()

    app_.doing = "checking the services' routes; nothing was changed"
    rows = [vars(row) | {"ok": row.ok} for row in asyncio.run(checked())]
    app_.output.data({"bridge": "http", "routes": rows}, lambda out: render.routes(out, rows))
    down = any(row["state"].startswith("service down") for row in rows)
    fail(ExitCode.UNREACHABLE if down else ExitCode.USAGE if not all(row["ok"] for row in rows) else ExitCode.OK)


@services_app.command(
    epilog="Example: flowctl services routes --from http://127.0.0.1:8090 > routes.toml\n\n"
    "Each flowctl service command is paired with the operation whose name and path share most words "
    "with it; the fields whose names agree are mapped, the rest left as null /* ... */ to finish by "
    "hand. Then 'flowctl services check' says what is still wrong."
)
def routes(
    ctx: typer.Context,
    source: Annotated[str, typer.Option("--from", metavar="URL", help="the service's base URL", show_default=False)],
    api_mount: Annotated[str, typer.Option("--api-mount", help="PURISTA's apiMountPath")] = "/api",
) -> None:
    """Write a starting route table from a running service's OpenAPI document ({URL}{api-mount}/openapi.json)."""
    import asyncio
    import re

    import httpx
    import tomli_w

    from flowctl.config import service_url
    from flowctl.errors import UnreachableError, UsageError
    from flowctl.inputs import without_credentials
    from flowctl_workflows.services import openapi
    from flowctl_workflows.services.commands import COMMANDS

    app_ = state(ctx)
    try:
        base = service_url(source)
    except ValueError as exc:
        raise UsageError(f"--from {without_credentials(source)!r}: {exc}") from None
    if not re.fullmatch(r"/?[A-Za-z0-9._~/-]*", api_mount) or ".." in api_mount:
        raise UsageError(f"--api-mount {api_mount!r} is not a path", hint="e.g. --api-mount /api")
    url = f"{base}/{api_mount.strip('/')}/openapi.json".replace("//openapi", "/openapi")

    async def fetch() -> tuple[int, Any]:
        async with httpx.AsyncClient() as client:
            return await openapi.document(client, url, {}, 10.0)

    app_.doing = f"reading {url}; nothing was changed"
    try:
        status, spec = asyncio.run(fetch())
    except (httpx.HTTPError, TimeoutError) as exc:
        raise UnreachableError(f"{url} does not answer ({exc or type(exc).__name__})") from None
    hint = "check --from and --api-mount (PURISTA serves {apiMountPath}/openapi.json)"
    if status != 200 or not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        raise UsageError(f"{url} answered {status}, not an OpenAPI document", hint=hint)
    try:
        found = openapi.starting_table(spec, COMMANDS, base)
    except (RecursionError, ValueError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"{url} is not an OpenAPI document flowctl can read ({type(exc).__name__})", hint=hint
        ) from None

    def text(out: Output) -> None:
        notes = [f"# A starting route table from {url}: check every route, finish each null /* ... */."]
        if found["unmatched"]:
            notes.append(f"# No operation was clearly theirs: {', '.join(found['unmatched'])} (add their routes).")
        notes += [f"# Not used: {op}" for op in found["operations_left"]]
        table = tomli_w.dumps(found["table"])
        nicer = _literal_strings(table)
        out.write("\n".join(notes) + "\n\n" + (nicer if _is_toml(nicer) else table))

    app_.output.data(found, text)


def _is_toml(text: str) -> bool:
    import tomllib

    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return True


def _literal_strings(toml: str) -> str:
    """The TOML with each one-line string holding a double quote (a JSONata expression) written
    as a literal string ('{"a": b}' rather than "{\\"a\\": b}"), where it holds no single quote."""
    import json
    import re

    def literal(match: re.Match[str]) -> str:
        value = json.loads(f'"{match.group(2)}"')
        return f"{match.group(1)} = '{value}'" if "'" not in value and '"' in value else match.group(0)

    return re.sub(r'^([A-Za-z_]+) = "((?:[^"\\]|\\.)*)"$', literal, toml, flags=re.M)
