"""The `flowctl` console script: a Ctrl-C or SIGTERM while flowctl is still loading ends it as one later does.

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


def _interrupted_early(signum: int, frame: object) -> None:
    from flowctl.argv import output_format  # not before: nothing loads ahead of these handlers

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
    # A standard stream the shell closed (`<&-`, `>&-`) is None in Python: reads then find
    # nothing and writes go nowhere, as with /dev/null, instead of failing as flowctl's bug.
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))  # noqa: SIM115 - for the process's life
    from flowctl.cli import main as run_command_line

    run_command_line()
