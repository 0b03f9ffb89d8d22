"""The `flowctl` console script, and the global options known before anything heavy loads.

A Ctrl-C or SIGTERM while flowctl is still loading ends it as one later does.

Loading the command line (typer, rich, pydantic) takes a tenth of a second; Python's own
handlers would print a traceback for a SIGINT in that time, and end silently on a SIGTERM.
Until `flowctl.cli.run` takes over, these say so on one line (JSON under `-o json`) and
exit 130 or 143.
"""

# The signal module itself (not its wrapper, which loads enum first): built in, so there is
# nothing left to load before the handlers below are in place.
import _signal  # type: ignore[import-not-found]
import os
import sys

# The global options, accepted anywhere on the line (flowctl.cli moves them to the front): the
# ones taking a value, and the flags. The root command declares each (flowctl.cli.app).
OUTPUT = ("-o", "--output")
VALUED = frozenset({*OUTPUT, "--profile", "--config", "--address", "--namespace"})
FLAGS = frozenset({"--no-color", "--debug", "--version"})
NOTE = "Global options (-o, --address, --namespace, --profile, --config, --no-color, --debug) may go anywhere."


def output_format(args: list[str]) -> str:
    """The format `-o`/`--output` asks for among `args` (the last one given), else text."""
    chosen = "text"
    for i, arg in enumerate(args):
        if arg in OUTPUT and i + 1 < len(args):
            chosen = args[i + 1]
        elif arg.startswith("--output="):
            chosen = arg.split("=", 1)[1]
    return chosen if chosen in ("text", "json", "jsonl") else "text"


def _interrupted_early(signum: int, frame: object) -> None:
    code, said = (143, "terminated (SIGTERM)") if signum == _signal.SIGTERM else (130, "interrupted")
    if output_format(sys.argv[1:]) != "text":
        line = f'{{"error": {{"code": {code}, "type": "interrupted", "message": "{said}"}}}}\n'
    else:
        line = f"flowctl: error: {said}\n"
    os.write(2, line.encode())
    os._exit(code)


running = False  # this process is the `flowctl` command itself (not a test calling flowctl.cli.run)


def main() -> None:
    global running
    running = True
    _signal.signal(_signal.SIGINT, _interrupted_early)
    _signal.signal(_signal.SIGTERM, _interrupted_early)
    from flowctl.cli import main as run_command_line

    run_command_line()
