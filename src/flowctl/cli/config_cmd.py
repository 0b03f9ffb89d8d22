"""`flowctl config init|show|path|set`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from flowctl.cli import render
from flowctl.cli.app import OPERATE, app, finishing, require_subcommand, state

config_app = typer.Typer(
    help="Read and write flowctl's config file.",
    epilog="Example: flowctl config init && flowctl config set services.local.transient_failure_rate 0.2",
    invoke_without_command=True,
)
config_app.callback()(require_subcommand)
app.add_typer(config_app, name="config", rich_help_panel=OPERATE)

# No address: with none set, flowctl dials the embedded server wherever [server] puts it.
STARTER = {
    "task_queue": "flowctl",
    "services": {"bridge": "local"},
    "profile": {"default": {"namespace": "default"}},
}


@config_app.command(epilog="Example: flowctl config init --force")
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a starter config file (see config.example.toml for every key)."""
    import tomli_w

    from flowctl.errors import ConflictError
    from flowctl.files import write_text

    app_ = state(ctx)
    path = app_.config_path()
    if path.exists() and not force:
        raise ConflictError(f"{path} already exists", hint="use --force to overwrite it")
    write_text(path, tomli_w.dumps(STARTER), "config")
    app_.output.data({"path": str(path), "written": True}, lambda out: out.print(f"wrote {path}", markup=False))


@config_app.command(epilog="Example: flowctl config path")
def path(ctx: typer.Context) -> None:
    """Print the path of the config file in use."""
    app_ = state(ctx)
    file = app_.config_path()
    if not file.exists():
        app_.output.info("(it does not exist yet: 'flowctl config init' writes a starter)")
    app_.output.data({"path": str(file), "exists": file.exists()}, lambda out: out.print(str(file), markup=False))


@config_app.command(epilog="Example: flowctl config show -o json")
def show(ctx: typer.Context) -> None:
    """Print the effective settings and connection; secrets are never shown."""
    from flowctl import __version__
    from flowctl.config import redact

    app_ = state(ctx)
    settings = app_.settings()
    data: dict[str, Any] = {
        "version": __version__,
        "config_file": str(app_.config_path()),
        "connection": app_.target().summary(),
        "settings": redact(settings.model_dump(mode="json")),
    }
    app_.output.data(data, lambda out: render.settings(out, data))


def _complete_key(incomplete: str) -> list[str]:
    from flowctl import config

    return [key for key in config.known_keys() if key.startswith(incomplete)]


@config_app.command(
    name="set",
    context_settings={"ignore_unknown_options": True},  # `config set KEY -1`: -1 is the value, not an option
    epilog="Examples: flowctl config set task_queue orders;  flowctl config set profile.prod.address prod.example:7233",
)
def set_(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="dotted key, e.g. services.bridge", autocompletion=_complete_key)],
    value: Annotated[str, typer.Argument(help="value; TOML syntax for numbers, booleans and lists")],
) -> None:
    """Set one key in the config file; the file is validated before it is written."""
    from flowctl import config

    app_ = state(ctx)
    file = app_.config_path()
    finishing()  # the write is whole or not done; a stop during it would leave its report half said
    config.set_key(file, key, value)
    parsed = config.parse_value(value)
    if config.is_secret(key.split(".")):
        shown = "<redacted>"
    elif isinstance(parsed, dict | list):  # a table or a list may hold secrets of its own
        shown = json.dumps(config.redact(parsed, tuple(key.split("."))), ensure_ascii=False)
    else:
        shown = value
    if key.startswith("server."):
        app_.output.info("the embedded server reads it when it starts: 'flowctl server stop' and 'server start'")
    else:
        app_.output.info("workers read the config when they start: restart running workers to apply it")
    app_.output.data(
        {"path": str(file), "key": key, "value": shown},
        lambda out: out.print(f"{key} = {shown} in {file}", markup=False),
    )
