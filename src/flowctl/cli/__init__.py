"""flowctl's command line: the entry point that maps every failure to one line and an exit code.

`main` ends the process with `os._exit` once output is flushed: a process that used a
Temporal client can abort while the interpreter tears down (sdk-python issue 300), and a
CI tool must exit with the code it meant, every time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from typing import Any

from flowctl.argv import FLAGS, VALUED, output_format
from flowctl.cli.stops import install_signal_handlers, signalled
from flowctl.errors import ExitCode, FlowctlError, UsageError
from flowctl.output import Output, Streams


def hoist_globals(argv: list[str], valued: frozenset[str] = frozenset()) -> list[str]:
    """Move global options to the front so `flowctl list -o json` means `flowctl -o json list`."""
    front, rest = split_globals(argv, valued)
    return front + rest


def split_globals(argv: list[str], valued: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(the global options, wherever they stood, and the rest of the line in order).

    `valued` names the command's own options that take a value: that value is kept as it is,
    even when it looks like a global option (`--reason -o`, `--comment --debug`).
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name = arg.split("=", 1)[0]
        if arg in valued and i + 1 < len(argv):
            rest += [arg, argv[i + 1]]
            i += 1
        elif arg in FLAGS:
            front.append(arg)
        elif name in VALUED and "=" in arg:
            front.append(arg)
        elif arg in VALUED and i + 1 < len(argv):
            front += [arg, argv[i + 1]]
            i += 1
        elif arg.startswith("-o") and not arg.startswith("--") and len(arg) > 2:
            front += ["-o", arg[2:]]
        else:
            rest.append(arg)
        i += 1
    return front, rest


def valued_options(command: Any, words: list[str]) -> frozenset[str]:
    """The value-taking options of the command `words` runs, and of the groups on its way."""
    found: set[str] = set()
    for word in [None, *words]:
        if word is not None:
            command = getattr(command, "commands", {}).get(word)
            if command is None:
                break
        for param in command.params:
            if param.param_type_name == "option" and not param.is_flag and not getattr(param, "count", False):
                found.update(param.opts)
    return frozenset(found - VALUED - FLAGS)


def _output_for(front: list[str], streams: Streams) -> Output:
    """The output settings the global options (`split_globals`) asked for, known even when parsing fails."""
    return Output(output_format(front), no_color="--no-color" in front, stdout=streams.stdout, stderr=streams.stderr)


# The module that defines each command. A command line imports only the one it runs: building
# every command's parser costs about 20 ms of each call. Help, completion and an unknown name
# import them all (flowctl.cli.commands, which sets the help order).
COMMAND_MODULES = {
    "config": "config_cmd", "cancel": "control", "terminate": "control", "update": "decisions",
    "approvals": "decisions", "approve": "decisions", "reject": "decisions", "demo": "demo",
    "result": "inspection", "describe": "inspection", "list": "inspection", "count": "inspection", "history": "inspection",
    "kinds": "kinds", "ledger": "ledger", "retry": "control", "reset": "control", "signal": "messages", "query": "messages",
    "server": "server", "codec-server": "codec_cmd", "codec-key": "codec_cmd", "start": "start",
    "watch": "watch", "worker": "worker_cmd", "workers": "workers_cmd", "services": "services_cmd", "relay": "relay_cmd", "wait": "wait_cmd",
    "schedule": "schedule_cmd",
}  # fmt: skip


def command_name(argv: list[str]) -> str:
    """The command a line runs, or "" (help, completion)."""
    return _command_of(split_globals(argv)[1])


def _command_of(rest: list[str]) -> str:
    """The command word of a line without its global options, or ""."""
    return rest[0] if rest and not rest[0].startswith("-") else ""


def register(name: str) -> None:
    """Register command `name` alone if flowctl has it, else every command."""
    import importlib

    if name in COMMAND_MODULES and "_FLOWCTL_COMPLETE" not in os.environ:
        importlib.import_module(f"flowctl.cli.{COMMAND_MODULES[name]}")
    else:
        importlib.import_module("flowctl.cli.commands")


def name_placeholders(command: Any) -> None:
    """Name what each argument and option of `command` and its subcommands takes, in help: flags nothing."""
    # typer labels values by Python type (`<str>`, `<list[str]>`) and flags, which take no
    # value, `<bool>`. A value option without a declared metavar is named after its parameter
    # (`--task-queue TASK_QUEUE`); choices keep their list of values.
    from typer._click import Context

    from flowctl.cli.app import HELP_OPTIONS

    help_option = command.get_help_option(Context(command, help_option_names=HELP_OPTIONS))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if param.metavar is not None:
            continue
        if param.param_type_name == "argument":  # `start KIND`, not `start kind <str>`
            param.metavar = param.name.upper()
            param.display_type_rich = lambda ctx: None  # its help says what it takes
        elif param.param_type_name != "option":
            continue
        elif param.is_flag:
            param.metavar = ""
        elif not param.type_descriptor.is_choice:
            param.metavar = param.name.upper()
    for sub in getattr(command, "commands", {}).values():
        name_placeholders(sub)


def _require_utf8(argv: list[str]) -> None:
    """Refuse an argument that is not UTF-8 (Python keeps its bytes as lone surrogates)."""
    from flowctl.files import is_text

    for position, arg in enumerate(argv, start=1):
        if not is_text(arg):
            shown = ascii(arg.encode("utf-8", "surrogateescape"))[2:-1]
            raise UsageError(
                f"argument {position} ({shown}) is not UTF-8 text", hint="pass ids, names and queries as UTF-8"
            )


def _interrupted(output: Output) -> int:
    terminated = signal.SIGTERM in signalled
    code = ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED
    output.error("interrupted", int(code), "terminated (SIGTERM)" if terminated else "interrupted")
    return int(code)


def run(argv: list[str], streams: Streams | None = None) -> int:
    """Run one command line and return its exit code; never raises. Output goes to `streams`
    when given (a test's buffers), else to the process's stdout and stderr."""
    import typer.main
    from typer._click.exceptions import ClickException, NoArgsIsHelpError  # typer vendors click
    from typer.exceptions import Abort, Exit

    from flowctl.cli.app import app

    streams = streams or Streams()
    front, rest = split_globals(argv)
    output = _output_for(front, streams)
    debug = "--debug" in front
    if argv[:1] == ["--show-completion"] or argv[:1] and argv[0].startswith("--show-completion="):
        return _show_completion(argv, output)
    try:
        install_signal_handlers()  # from here a signal is handled below (before, by flowctl.entry)
        register(_command_of(rest))
        _require_utf8(argv)
        command = typer.main.get_command(app)
        # Split again knowing the command's own options: a value of theirs is never a global.
        front, rest = split_globals(argv, valued_options(command, [w for w in rest if not w.startswith("-")][:2]))
        argv = front + rest
        output = _output_for(front, streams)
        debug = "--debug" in front
        name_placeholders(command)
        result = command.main(args=argv, prog_name="flowctl", standalone_mode=False, obj=streams)
        if result == ExitCode.INTERRUPTED or (result and signalled):  # typer returns a Ctrl-C outside a
            return _interrupted(output)  # server call as 130; no command of flowctl exits 130 itself
        return result if isinstance(result, int) else 0
    except FlowctlError as err:
        from flowctl.errors import InterruptedByUser

        if signalled and not isinstance(err, InterruptedByUser):  # it failed because it was stopped
            return _interrupted(output)
        output.error(err.slug, int(err.code), str(err))
        return int(err.code)
    except NoArgsIsHelpError as err:
        sys.stderr.write(err.format_message() + "\n")
        return int(ExitCode.USAGE)
    except ClickException as err:
        message = err.format_message()
        ctx = getattr(err, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        output.error("usage", int(ExitCode.USAGE), f"{message}{hint}")
        return int(ExitCode.USAGE) if err.exit_code == 2 else err.exit_code
    except Exit as exc:
        if exc.exit_code == ExitCode.INTERRUPTED:  # typer's word for a KeyboardInterrupt outside a server call
            return _interrupted(output)
        return exc.exit_code
    except (Abort, KeyboardInterrupt):
        return _interrupted(output)
    except BrokenPipeError:
        return int(ExitCode.CLOSED_PIPE)
    except SystemExit as exc:  # shell completion and a few library paths exit this way
        from typer._click.utils import PacifyFlushWrapper

        if isinstance(sys.stdout, PacifyFlushWrapper):  # how typer ends a command whose stdout closed
            return int(ExitCode.CLOSED_PIPE)
        if exc.code == 1 and isinstance(exc.__context__, BrokenPipeError):  # how rich does (help, say)
            return int(ExitCode.CLOSED_PIPE)
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: say it is a bug
        from flowctl import __version__

        if signalled:  # a stop that library code wrapped in its own error (pydantic-core's SchemaError)
            return _interrupted(output)
        if debug:
            traceback.print_exc()
        output.error(
            "internal",
            int(ExitCode.INTERNAL),
            f"internal error (a bug in flowctl {__version__}, please report it): {type(exc).__name__}: {exc}",
        )
        return int(ExitCode.INTERNAL)


SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _show_completion(argv: list[str], output: Output) -> int:
    """`--show-completion [SHELL]`: the script for the shell named, else for the one flowctl runs
    under (a parent process, then $SHELL). Typer's own flag ignores a name and only guesses from
    the parent processes, which fails where no shell is among them (a CI runner)."""
    from typer._completion_shared import _get_shell_name, get_completion_script

    named = argv[0].partition("=")[2] or (argv[1] if len(argv) > 1 else "")
    shell = named or _get_shell_name() or os.path.basename(os.environ.get("SHELL", ""))
    if shell not in SHELLS:
        said = f"shell {shell!r} is not one flowctl completes" if shell else "cannot tell which shell this is"
        output.error("usage", int(ExitCode.USAGE), f"--show-completion: {said}; name one of: {', '.join(SHELLS)}")
        return int(ExitCode.USAGE)
    output.write(get_completion_script(prog_name="flowctl", complete_var="_FLOWCTL_COMPLETE", shell=shell))
    return 0


def main() -> None:
    # flowctl uses no pydantic plugins; looking for them scans every installed package
    # (importlib.metadata) on the first model built, about 9 ms of each command's start-up.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        code = run(sys.argv[1:])
    except BaseException:  # noqa: BLE001 - nothing may reach the interpreter's exit, which can hang
        code = int(ExitCode.INTERNAL)  # run() handles all else: only a stop during its last words gets here
        if signalled:
            code = int(ExitCode.TERMINATED if signal.SIGTERM in signalled else ExitCode.INTERRUPTED)
    # From here a stop signal ends the process at once: what is left is flushing what was said.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if "flowctl.tracing" in sys.modules:  # spans still buffered go out before the exit (which runs no atexit)
        with contextlib.suppress(Exception):
            sys.modules["flowctl.tracing"].flush()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass
    os._exit(code)
