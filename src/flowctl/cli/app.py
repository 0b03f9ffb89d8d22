"""The root Typer app, its global options and the application state commands share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from flowctl.argv import NOTE
from flowctl.output import Output, Streams

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.service import ServiceClient

    from flowctl.config import Settings
    from flowctl.connect import Target
    from flowctl.errors import ExitCode
    from flowctl.ops.rpc import Patience

T = TypeVar("T")
C = TypeVar("C")

HELP_OPTIONS = ["-h", "--help"]
# Help groups the commands by what they do, panels in this order (each command names its own).
RUN, INSPECT, SEND, DECIDE, OPERATE = "Run", "Inspect", "Send", "Decide", "Operate"

app = typer.Typer(
    name="flowctl",
    help="Operate business workflows (order, onboarding, approval) on Temporal.\n\n"
    "Example: flowctl server start; then flowctl worker in another terminal; then "
    'flowctl start order -i "$(flowctl kinds order -o json | jq .example)" --wait',
    epilog=NOTE,
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": HELP_OPTIONS},
    pretty_exceptions_enable=False,
)


@dataclass
class App:
    """What every command gets on `ctx.obj`: global options, settings and the way to the server."""

    output: Output
    config_file: Path | None = None
    profile: str | None = None
    address: str | None = None
    namespace: str | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _target: Target | None = field(default=None, repr=False)
    # What the command is doing, said if SIGINT or SIGTERM stops it: "waiting for X; ...".
    doing: str = "reading from the server; nothing was changed"

    def settings(self) -> Settings:
        if self._settings is None:
            from flowctl import config

            self._settings = config.load(self.config_file)
        return self._settings

    def config_path(self) -> Path:
        from flowctl import config

        return config.config_path(self.config_file)

    def target(self) -> Target:
        if self._target is None:
            from flowctl import connect

            self._target = connect.resolve(
                self.settings(),
                self.config_path(),
                profile=self.profile,
                address=self.address,
                namespace=self.namespace,
            )
        return self._target

    def patience(self) -> Patience:
        """How a waiting command rides out an unreachable server: warned on stderr, up to outage_limit."""
        from flowctl.ops.rpc import Patience

        return Patience(tell=self.output.warn, limit=self.settings().outage_limit)

    def ui_base(self) -> str:
        from flowctl.config import ui_base_url

        return ui_base_url(self.settings())

    def interceptors(self) -> list[Any]:
        """The client's interceptors: the tracing one when `tracing.otlp_endpoint` is set."""
        from flowctl import tracing

        return tracing.interceptors(self.settings())

    def run(self, action: Callable[[Client], Awaitable[T]]) -> T:
        """Connect, run `action` with the client, return its value."""
        from flowctl.connect import connect

        interceptors = self.interceptors()

        async def traced(target: Target, *, runtime: Any = None) -> Client:
            return await connect(target, runtime=runtime, interceptors=interceptors)

        return self._run(traced, action)

    def run_service(self, action: Callable[[ServiceClient], Awaitable[T]]) -> T:
        """Like `run`, with the bare connection instead of a `Client` (see `connect_service`)."""
        from flowctl.connect import connect_service

        return self._run(connect_service, action)

    def _run(self, connect: Callable[..., Awaitable[C]], action: Callable[[C], Awaitable[T]]) -> T:
        import asyncio  # here, not at the top: `--help` and completion need none of it

        from flowctl.cli.stops import stop_requested
        from flowctl.connect import quiet_runtime
        from flowctl.errors import InterruptedByUser, NotFoundError, Terminated

        target = self.target()

        async def main() -> T:
            client = await connect(target, runtime=None if self.debug else quiet_runtime())
            try:
                return await action(client)
            except NotFoundError as missing:
                from temporalio.client import Client

                if missing.workflow_id and isinstance(client, Client):  # not over the bare connection
                    from flowctl.ops.visibility import similar_ids

                    if found := await similar_ids(client, missing.workflow_id):
                        missing.hint = f"did you mean {' or '.join(map(repr, found))}?"
                raise

        try:
            if stop_requested():  # a stop that library code swallowed: nothing is sent after it
                raise KeyboardInterrupt
            return asyncio.run(main())
        except KeyboardInterrupt as stop:
            terminated = isinstance(stop, Terminated)
            raise InterruptedByUser(
                f"{'terminated (SIGTERM)' if terminated else 'interrupted'} while {self.doing}", terminated=terminated
            ) from None


def require_subcommand(ctx: typer.Context) -> None:
    """A command group run without a command: one line on stderr naming them, exit 2 (not help on stdout)."""
    from flowctl.errors import UsageError

    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        group = ctx.command
        names = ", ".join(getattr(group, "commands", {}))
        raise UsageError(f"'{ctx.command_path}' needs a command: {names}", hint=f"see '{ctx.command_path} --help'")


def state(ctx: typer.Context) -> App:
    obj = ctx.find_root().obj
    assert isinstance(obj, App)
    return obj


def _output_of(ctx: typer.Context, fmt: str = "text", no_color: bool = False) -> Output:
    """The command's output, on the streams `flowctl.cli.run` was given (its `obj`), if any."""
    given = ctx.find_root().obj
    streams = given if isinstance(given, Streams) else Streams()
    return Output(fmt, no_color=no_color, stdout=streams.stdout, stderr=streams.stderr)


def _print_version(ctx: typer.Context, wanted: bool) -> None:
    if wanted:
        from flowctl import __version__

        _output_of(ctx).write(f"flowctl {__version__}")
        raise typer.Exit()


def _output_choice(value: str) -> str:
    from flowctl.output import FORMATS

    if value not in FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(FORMATS)}")
    return value


@app.callback()
def root(
    ctx: typer.Context,
    output: Annotated[
        str,
        typer.Option("-o", "--output", metavar="text|json|jsonl", help="text, json or jsonl", callback=_output_choice),
    ] = "text",
    profile: Annotated[str | None, typer.Option(help="Temporal connection profile", envvar="TEMPORAL_PROFILE")] = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", metavar="FILE", help="config file (default: $FLOWCTL_CONFIG or the user config dir)"),
    ] = None,
    address: Annotated[str | None, typer.Option(metavar="HOST:PORT", help="Temporal frontend host:port")] = None,
    namespace: Annotated[str | None, typer.Option(help="Temporal namespace")] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="no colour in text output")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="tracebacks for internal errors")] = False,
    version: Annotated[
        bool, typer.Option("--version", help="print flowctl's version and exit", is_eager=True, callback=_print_version)
    ] = False,
) -> None:
    ctx.obj = App(
        output=_output_of(ctx, output, no_color),
        config_file=config_file,
        profile=profile,
        address=address,
        namespace=namespace,
        debug=debug,
    )


def finishing() -> None:
    """From here the command only reports what it did: a stop signal waits for the exit, which
    drops it, so the report is whole and the exit code says what happened (it happened).
    Only in flowctl's own process: a mask is inherited by every process started later."""
    import signal

    from flowctl import entry

    if entry.running:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def fail(code: ExitCode) -> None:
    """End the command with `code` (after its output is written)."""
    if code:
        raise typer.Exit(int(code))
